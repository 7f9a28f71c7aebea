"""Time one CycleGAN training iteration: the reference recipe against our fast path.

The reference recipe is what junyanz/pytorch-CycleGAN-and-pix2pix runs by default:
fp32, eager, batch 1. Every row times :meth:`ganlab.train.trainer.CycleGANTrainer.step`
(the code ``train`` runs) on random batches, so data loading is excluded, and reports
ms per iteration, images/s (domain-A images per second, i.e. batch / time), the
speed-up over the reference row, and achieved TFLOP/s (forward + backward FLOPs of the
step counted with ``torch.utils.flop_counter``, divided by the time).

CPU (default 128x128): reference vs batch-4 fp32.
CUDA (default 256x256): reference, then bf16 autocast, + channels_last, + torch.compile,
and the fast path (all three, batch 8, autotuned cuDNN).

    python benchmarks/train_step.py                 # auto device
    python benchmarks/train_step.py --json out.json
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

from ganlab.train.config import TrainConfig  # noqa: E402
from ganlab.train.runtime import seed_everything, select_device  # noqa: E402
from ganlab.train.trainer import CycleGANTrainer  # noqa: E402


@dataclass(frozen=True)
class Setup:
    """One benchmark row: a name and the TrainConfig fields it changes."""

    name: str
    batch_size: int = 1
    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    deterministic: bool = True


@dataclass
class Row:
    name: str
    batch_size: int
    ms_per_iter: float
    images_per_s: float
    speedup: float
    tflops: float
    setup: dict[str, Any]


REFERENCE = Setup("reference: fp32 eager batch 1")


def setups(device: torch.device) -> list[Setup]:
    """The rows measured on this kind of device, reference first."""
    if device.type == "cuda":
        return [
            REFERENCE,
            Setup("bf16 autocast batch 1", amp="bf16"),
            Setup("bf16 + channels_last batch 1", amp="bf16", channels_last=True),
            Setup(
                "bf16 + channels_last + compile batch 1",
                amp="bf16",
                channels_last=True,
                compile=True,
            ),
            Setup(
                "fast path: bf16 + channels_last + compile batch 8",
                batch_size=8,
                amp="bf16",
                channels_last=True,
                compile=True,
                deterministic=False,
            ),
        ]
    # on CPU bf16 autocast and channels_last measured slower than fp32 NCHW; batching helps
    return [REFERENCE, Setup("fast path: fp32 batch 4", batch_size=4)]


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
            **{k: v for k, v in asdict(setup).items() if k != "name"},
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
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    args = parser.parse_args(argv)
    device = select_device(args.device)
    cuda = device.type == "cuda"
    args.size = args.size or (256 if cuda else 128)
    args.warmup = max(1, args.warmup or (5 if cuda else 1))
    args.iters = args.iters or (20 if cuda else 1)

    rows: list[Row] = []
    flops_per_image = 0.0
    for setup in setups(device):
        try:
            seconds, flops = measure(setup, args, device)
        except Exception as exc:  # report the row as failed, keep measuring the others
            print(f"FAILED {setup.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        if not setup.compile:  # compiled graphs hide their ops from the counter
            flops_per_image = flops / setup.batch_size
        images_per_s = setup.batch_size / seconds
        rows.append(
            Row(
                name=setup.name,
                batch_size=setup.batch_size,
                ms_per_iter=seconds * 1e3,
                images_per_s=images_per_s,
                speedup=images_per_s / rows[0].images_per_s if rows else 1.0,
                tflops=flops_per_image * setup.batch_size / seconds / 1e12,
                setup=asdict(setup),
            )
        )
        print(f"measured {setup.name}", file=sys.stderr)

    title = f"{args.preset} training step, {args.size}x{args.size}, {device_name(device)}, torch {torch.__version__}"
    print(title)
    print(f"{'setup':<52} {'batch':>5} {'ms/iter':>9} {'img/s':>8} {'x ref':>6} {'TFLOP/s':>8}")
    for r in rows:
        print(
            f"{r.name:<52} {r.batch_size:>5} {r.ms_per_iter:>9.1f} {r.images_per_s:>8.2f} "
            f"{r.speedup:>6.2f} {r.tflops:>8.3f}"
        )
    if args.json:
        report = {
            "title": title,
            "device": device_name(device),
            "torch": str(torch.__version__),
            "image_size": args.size,
            "preset": args.preset,
            "warmup": args.warmup,
            "iters": args.iters,
            "rows": [asdict(r) for r in rows],
        }
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
