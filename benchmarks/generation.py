"""Generation throughput: the per-image loop vs our batched path, same network, same run.

Times the ResNet-9 generator ``G_A`` (G: X->Y) of the plain CycleGAN on random
images in inference mode (what ``ganlab.train.generate`` runs per batch; PNG encoding
excluded). Rows: batch 1 fp32 (the per-image loop), batched fp32, and on CUDA batch 1
and 64 with bf16 autocast + channels_last. Prints images/s and the ratio to the loop.

    python benchmarks/generation.py                 # CPU 128x128, CUDA 256x256
    python benchmarks/generation.py --json out.json
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._env import machine  # noqa: E402
from ganlab.models.cyclegan import build_generator, preset_config  # noqa: E402


def rows_for(device: torch.device) -> list[tuple[str, int, bool]]:
    """(name, batch size, bf16 + channels_last) per row; the per-image loop first."""
    if device.type == "cuda":
        return [
            ("per-image loop: fp32 batch 1", 1, False),
            ("bf16 + channels_last batch 1", 1, True),
            ("batched fp32 batch 64", 64, False),
            ("batched: bf16 + channels_last batch 64", 64, True),
        ]
    return [("per-image loop: fp32 batch 1", 1, False), ("batched fp32 batch 16", 16, False)]


def measure(net: torch.nn.Module, device: torch.device, size: int, batch: int, fast: bool, images: int) -> float:
    """Images per second over at least ``images`` images after a warm-up."""
    memory = torch.channels_last if fast else torch.contiguous_format
    net = net.to(memory_format=memory)
    x = torch.rand(batch, 3, size, size, device=device).mul(2).sub(1).to(memory_format=memory)
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if fast else contextlib.nullcontext()
    steps = max(images // batch, 3)
    with torch.inference_mode(), autocast:
        for _ in range(3):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        for _ in range(steps):
            net(x)
        if device.type == "cuda":
            torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, help="image side (default 256 on CUDA, 128 on CPU)")
    parser.add_argument("--images", type=int, help="images timed per row (default 1024 CUDA, 32 CPU)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    device = torch.device(args.device)
    size = args.size or (256 if device.type == "cuda" else 128)
    images = args.images or (1024 if device.type == "cuda" else 32)
    torch.manual_seed(0)
    net = build_generator(preset_config("cyclegan"), load_weights=False).to(device).eval()
    rows = []
    for name, batch, fast in rows_for(device):
        rows.append({"name": name, "batch_size": batch, "images_per_s": measure(net, device, size, batch, fast, images)})
    base = rows[0]["images_per_s"]
    for row in rows:
        row["ratio"] = row["images_per_s"] / base
    result = {"benchmark": "generation", "machine": machine(), "device": str(device), "size": size, "rows": rows}
    print(f"machine: {result['machine']}  device: {device}  {size}x{size}")
    print(f"{'row':<42}{'images/s':>12}{'x loop':>9}")
    for row in rows:
        print(f"{row['name']:<42}{row['images_per_s']:>12.1f}{row['ratio']:>9.2f}")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
