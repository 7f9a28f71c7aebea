"""SSIM + PSNR + MSE over image pairs: ganlab's batched torch code vs a scikit-image loop.

Usage::

    .venv/bin/python benchmarks/metrics.py                    # 1,000 pairs of 256x256 RGB
    .venv/bin/python benchmarks/metrics.py --pairs 200 --json bench.json --threads 1

Both sides get the same uint8 pairs (random images and noisy copies of them, so SSIM
is spread over (0, 1)) in the same process. The scikit-image side is the usual loop::

    structural_similarity(x, y, data_range=255, gaussian_weights=True, sigma=1.5,
                          use_sample_covariance=False, channel_axis=-1)
    peak_signal_noise_ratio(x, y, data_range=255); mean_squared_error(x, y)

Ours is :func:`ganlab.metrics.image_quality.image_quality` on the whole ``(N, 3, H, W)``
batch (chunked internally), on CPU in float32 and float64 and, when CUDA is present,
on the GPU (data starting on the host, so transfers are included, and already on the
device). Each row gives seconds, pairs per second, the speed-up over scikit-image and
the largest absolute difference from it for each metric, and the load average before
it started (with a warning when the machine is busy: run it alone, e.g.
``OMP_NUM_THREADS=2 flock /tmp/ganlab-cpu.lock .venv/bin/python benchmarks/metrics.py``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._env import load_before  # noqa: E402
from ganlab.metrics.image_quality import image_quality  # noqa: E402

METRICS = ("ssim", "psnr", "mse")


def make_pairs(n: int, size: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    first = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    noise = rng.integers(-60, 61, (n, size, size, 3), dtype=np.int16)
    second = np.clip(first.astype(np.int16) + noise, 0, 255).astype(np.uint8)
    return first, second


def skimage_loop(first: np.ndarray, second: np.ndarray) -> dict[str, np.ndarray]:
    values = {name: np.empty(len(first)) for name in METRICS}
    for i, (x, y) in enumerate(zip(first, second, strict=True)):
        values["ssim"][i] = structural_similarity(
            x,
            y,
            data_range=255,
            gaussian_weights=True,
            sigma=1.5,
            use_sample_covariance=False,
            channel_axis=-1,
        )
        values["psnr"][i] = peak_signal_noise_ratio(x, y, data_range=255)
        values["mse"][i] = mean_squared_error(x, y)
    return values


def timed(function, repeats: int, synchronize: bool = False) -> tuple[float, dict]:
    """Best wall time of ``repeats`` calls (after one warm-up call on a small input is done by the caller)."""
    best, result = float("inf"), {}
    for _ in range(repeats):
        if synchronize:
            torch.cuda.synchronize()
        start = time.perf_counter()
        result = function()
        if synchronize:
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best, result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--pairs", type=int, default=1000, help="number of image pairs (default 1000)"
    )
    parser.add_argument("--size", type=int, default=256, help="image side in pixels (default 256)")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument(
        "--repeats", type=int, default=1, help="runs of each torch variant; the best counts"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    first, second = make_pairs(args.pairs, args.size, args.seed)
    preds = torch.from_numpy(first).permute(0, 3, 1, 2)  # (N, 3, H, W) views, no copy
    target = torch.from_numpy(second).permute(0, 3, 1, 2)

    reference_name = "scikit-image loop (float64)"
    reference_load = load_before(reference_name)
    start = time.perf_counter()
    reference = skimage_loop(first, second)
    reference_seconds = time.perf_counter() - start
    rows = [
        {
            "name": reference_name,
            "seconds": reference_seconds,
            "max_abs_diff": dict.fromkeys(METRICS, 0.0),
            "load_before": reference_load,
        }
    ]

    variants = [
        ("ganlab torch CPU float32", "cpu", torch.float32, None),
        ("ganlab torch CPU float64", "cpu", torch.float64, None),
    ]
    if torch.cuda.is_available():
        variants += [
            ("ganlab torch CUDA float32 (from host)", "cuda", torch.float32, None),
            ("ganlab torch CUDA float32 (on device)", "cuda", torch.float32, "device"),
        ]
    for name, device, dtype, placement in variants:
        x, y = (preds.to(device), target.to(device)) if placement == "device" else (preds, target)
        image_quality(x[:2], y[:2], data_range=255, device=device, compute_dtype=dtype)  # warm-up
        load = load_before(name)
        seconds, ours = timed(
            lambda x=x, y=y, device=device, dtype=dtype: image_quality(
                x, y, data_range=255, device=device, compute_dtype=dtype
            ),
            args.repeats,
            synchronize=device == "cuda",
        )
        rows.append(
            {
                "name": name,
                "seconds": seconds,
                "max_abs_diff": {
                    key: float(np.abs(ours[key].numpy() - reference[key]).max()) for key in METRICS
                },
                "load_before": load,
            }
        )
    for row in rows:
        row["pairs_per_second"] = args.pairs / row["seconds"]
        row["speedup_vs_skimage"] = reference_seconds / row["seconds"]

    print(f"SSIM+PSNR+MSE, {args.pairs} pairs of {args.size}x{args.size} RGB uint8, data_range 255")
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} CPU thread(s); {platform.processor() or platform.machine()}"
    )
    print(f"baseline: {rows[0]['name']}, {reference_seconds:.2f} s")
    header = (
        f"{'variant':40s} {'seconds':>9s} {'pairs/s':>9s} {'x skimage':>9s} {'|dSSIM|':>9s} "
        f"{'|dPSNR|':>9s} {'|dMSE|':>9s} {'load before':>12s}"
    )
    print(header)
    print("-" * len(header))
    for row in rows:
        diff, load = row["max_abs_diff"], row["load_before"]
        load_text = f"{load['load_1m']:.2f}" + (" BUSY" if load["busy"] else "")
        print(
            f"{row['name']:40s} {row['seconds']:9.3f} {row['pairs_per_second']:9.1f} {row['speedup_vs_skimage']:9.2f} "
            f"{diff['ssim']:9.1e} {diff['psnr']:9.1e} {diff['mse']:9.1e} {load_text:>12s}"
        )
    if args.json is not None:
        results = {
            "pairs": args.pairs,
            "size": args.size,
            "torch": torch.__version__,
            "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
            "rows": rows,
        }
        args.json.write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
