"""Time one CycleGAN training iteration: the reference recipe against our fast paths.

The reference recipe is what junyanz/pytorch-CycleGAN-and-pix2pix runs by default:
fp32, eager, batch 1, a plain Adam. Every row times
:meth:`ganlab.train.trainer.CycleGANTrainer.step` (the code ``train`` runs) on random
batches, so data loading is excluded, and reports ms per iteration, images/s (domain-A
images per second, i.e. batch / time), the speed-up over the reference row, achieved
TFLOP/s (forward + backward FLOPs of the step counted with ``torch.utils.flop_counter``
on an eager step, divided by the time) and, on a GPU whose bf16 dense peak is known
(:data:`PEAK_BF16_DENSE_TFLOPS`), that as a percentage of the peak.

CPU (default 128x128): reference vs batch-4 fp32 with fused Adam.
CUDA (default 256x256): reference; the previous fast path (bf16 + channels_last +
compile, batch 8); bf16 + channels_last + fused Adam with autotuned cuDNN at batch 8
to 64; then torch.compile's default and max-autotune (CUDA graphs) modes at batch 32.
Each row runs in the order given, the JSON is rewritten after every row (a run cut
short keeps what it measured), and the reference row always comes first.

    python benchmarks/train_step.py                          # auto device, every row
    python benchmarks/train_step.py --rows b16,b32 --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

# run as a script from anywhere: make the repository's ganlab importable
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._env import rows_chosen  # noqa: E402
from ganlab.train.config import TrainConfig  # noqa: E402
from ganlab.train.runtime import seed_everything, select_device  # noqa: E402
from ganlab.train.trainer import CycleGANTrainer  # noqa: E402

#: bf16 dense tensor-core peak (TFLOP/s, no sparsity) by device-name fragment, most
#: specific first; from NVIDIA's datasheets (their sparse figure halved). A device not
#: listed gets TFLOP/s without a percentage.
PEAK_BF16_DENSE_TFLOPS = (
    ("H100 PCIe", 756.0),
    ("H100 NVL", 835.0),
    ("H100", 989.4),  # SXM5 ("NVIDIA H100 80GB HBM3")
    ("H200", 989.4),
    ("GH200", 989.4),
    ("A100", 312.0),
    ("L40S", 362.1),
)


def peak_bf16_tflops(name: str) -> float | None:
    """The bf16 dense peak of the device called ``name``, or None when unknown."""
    for fragment, peak in PEAK_BF16_DENSE_TFLOPS:
        if fragment in name:
            return peak
    return None


@dataclass(frozen=True)
class Setup:
    """One benchmark row: a key for ``--rows``, a name and the TrainConfig fields it changes."""

    key: str
    name: str
    batch_size: int = 1
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    fused_adam: bool = True
    deterministic: bool = True


@dataclass
class Row:
    name: str
    batch_size: int
    ms_per_iter: float
    images_per_s: float
    speedup: float
    tflops: float
    percent_of_peak: float | None
    setup: dict[str, Any]


REFERENCE = Setup("ref", "reference: fp32 eager batch 1, plain Adam", fused_adam=False)


def _fast(key: str, batch: int, **changes: Any) -> Setup:
    compiled = changes.get("compile_mode") if changes.get("compile") else None
    what = f"compile {compiled}" if compiled else "eager"
    return Setup(
        key,
        f"bf16 + channels_last + fused Adam, {what}, batch {batch}",
        batch_size=batch,
        amp="bf16",
        channels_last=True,
        deterministic=False,
        **changes,
    )


def setups(device: torch.device) -> list[Setup]:
    """The rows measured on this kind of device, reference first."""
    if device.type == "cuda":
        return [
            REFERENCE,
            Setup(
                "prev",
                "previous fast path: bf16 + channels_last + compile batch 8, plain Adam",
                batch_size=8,
                amp="bf16",
                channels_last=True,
                compile=True,
                fused_adam=False,
                deterministic=False,
            ),
            _fast("b8", 8),
            _fast("b16", 16),
            _fast("b32", 32),
            _fast("b64", 64),
            _fast("compile32", 32, compile=True, compile_mode="default"),
            _fast("autotune32", 32, compile=True, compile_mode="max-autotune"),
        ]
    # on CPU bf16 autocast and channels_last measured slower than fp32 NCHW; batching helps
    return [REFERENCE, Setup("b4", "fast path: fp32 batch 4, fused Adam", batch_size=4)]


def make_trainer(setup: Setup, args: argparse.Namespace, device: torch.device) -> CycleGANTrainer:
    config = TrainConfig.from_dict(
        {
            "domain_x": ["<random>"],
            "domain_y": ["<random>"],
            "preset": args.preset,
            "semi_supervised": args.semi_supervised,
            "image_size": args.size,
            "load_size": args.size,
            "device": str(device),
            **{k: v for k, v in asdict(setup).items() if k not in ("key", "name")},
        }
    )
    seed_everything(0, deterministic=setup.deterministic)
    return CycleGANTrainer(config, device, load_weights=False)


def random_batch(batch_size: int, size: int) -> dict[str, torch.Tensor]:
    shape = (batch_size, 3, size, size)
    return {
        "A": torch.rand(shape) * 2 - 1,
        "B": torch.rand(shape) * 2 - 1,
        "A_label": torch.zeros(batch_size, dtype=torch.long),
        "B_label": torch.ones(batch_size, dtype=torch.long),
    }


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure(setup: Setup, args: argparse.Namespace, device: torch.device) -> tuple[float, float]:
    """(seconds per iteration, FLOPs per iteration) of one setup.

    FLOPs (forward + backward) are counted during the first, untimed warm-up iteration
    of eager rows (0 for compiled ones: compiled graphs are not traced op by op).
    """
    if setup.compile:  # a fresh cache: no dynamic-shape graphs carried over from another row
        torch._dynamo.reset()
    trainer = make_trainer(setup, args, device)
    batch = random_batch(setup.batch_size, args.size)
    counter = FlopCounterMode(display=False)
    with counter if not setup.compile else contextlib.nullcontext():
        trainer.step(batch)
    for _ in range(args.warmup - 1):
        trainer.step(batch)
    synchronize(device)
    start = time.perf_counter()
    for _ in range(args.iters):
        trainer.step(batch)
    synchronize(device)
    return (time.perf_counter() - start) / args.iters, float(counter.get_total_flops())


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def write_report(
    path: Path, rows: list[Row], args: argparse.Namespace, device: torch.device
) -> str:
    """Write the JSON report of the rows so far; returns its title."""
    name = device_name(device)
    title = (
        f"{args.preset} training step, {args.size}x{args.size}, {name}, torch {torch.__version__}"
    )
    if path:
        report = {
            "title": title,
            "device": name,
            "peak_bf16_dense_tflops": peak_bf16_tflops(name) if device.type == "cuda" else None,
            "torch": str(torch.__version__),
            "image_size": args.size,
            "preset": args.preset,
            "warmup": args.warmup,
            "iters": args.iters,
            "rows": [asdict(r) for r in rows],
        }
        path.write_text(json.dumps(report, indent=2))
    return title


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | mps (default auto)")
    parser.add_argument("--size", type=int, help="image side (default 128 on CPU, 256 on CUDA)")
    parser.add_argument(
        "--preset", default="cyclegan", help="model preset (default cyclegan, the reference)"
    )
    parser.add_argument("--semi-supervised", action="store_true", help="with the class head")
    parser.add_argument(
        "--warmup", type=int, help="untimed iterations (default 1 on CPU, 5 on CUDA)"
    )
    parser.add_argument("--iters", type=int, help="timed iterations (default 1 on CPU, 20 on CUDA)")
    parser.add_argument(
        "--rows", help="comma-separated row keys to measure after the reference (default: all)"
    )
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    args.size = args.size or (256 if cuda else 128)
    args.warmup = max(1, args.warmup or (5 if cuda else 1))
    args.iters = args.iters or (20 if cuda else 1)
    chosen = rows_chosen(parser, setups(device), args.rows, device=device.type)
    peak = peak_bf16_tflops(device_name(device)) if cuda else None

    rows: list[Row] = []
    flops_per_image = 0.0
    for setup in chosen:
        try:
            seconds, flops = measure(setup, args, device)
        except Exception as exc:  # report the row as failed, keep measuring the others
            print(f"FAILED {setup.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            if cuda:
                torch.cuda.empty_cache()
            continue
        if not setup.compile:  # compiled graphs hide their ops from the counter
            flops_per_image = flops / setup.batch_size
        images_per_s = setup.batch_size / seconds
        tflops = flops_per_image * setup.batch_size / seconds / 1e12
        rows.append(
            Row(
                name=setup.name,
                batch_size=setup.batch_size,
                ms_per_iter=seconds * 1e3,
                images_per_s=images_per_s,
                speedup=images_per_s / rows[0].images_per_s if rows else 1.0,
                tflops=tflops,
                percent_of_peak=100 * tflops / peak if peak else None,
                setup=asdict(setup),
            )
        )
        write_report(args.json, rows, args, device)
        print(f"measured {setup.name}: {tflops:.1f} TFLOP/s", file=sys.stderr)
        if cuda:
            torch.cuda.empty_cache()

    title = write_report(args.json, rows, args, device)
    print(title + (f" (bf16 dense peak {peak:g} TFLOP/s)" if peak else ""))
    print(
        f"{'setup':<66} {'batch':>5} {'ms/iter':>9} {'img/s':>8} {'x ref':>6} {'TFLOP/s':>8} {'% peak':>7}"
    )
    for r in rows:
        percent = f"{r.percent_of_peak:.1f}" if r.percent_of_peak is not None else "-"
        print(
            f"{r.name:<66} {r.batch_size:>5} {r.ms_per_iter:>9.1f} {r.images_per_s:>8.2f} "
            f"{r.speedup:>6.2f} {r.tflops:>8.3f} {percent:>7}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
