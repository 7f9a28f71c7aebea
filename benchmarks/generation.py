"""Generation throughput: the network alone, and ``generate()`` from PNG files to PNG files.

Network rows time the ResNet-9 generator ``G_A`` (G: X->Y) of the plain CycleGAN on
random images in inference mode (what ``ganlab.train.generate`` runs per batch; no
decoding, no PNG): the per-image loop (fp32, batch 1) first, then batched rows; on
CUDA bf16 + channels_last at batch 64 to 256 and with ``torch.compile`` (default mode,
and max-autotune, which replays CUDA graphs). Each row's ratio is against the loop.

End-to-end rows run :func:`ganlab.train.generate` over real PNG files (demo tiles) with
an untrained checkpoint of ``--e2e-preset``: everything in one thread (decode, compute,
encode, write, one after the other) against decoding in DataLoader worker processes and
PNG writing in threads, overlapping the compute; on CUDA also with bf16 + channels_last
at a large batch. The overlapped outputs are checked to be the same files.

    python benchmarks/generation.py                  # CPU: G_A 128x128, demo model 64x64
    python benchmarks/generation.py --json out.json
    python benchmarks/generation.py --rows b128,compile128 --no-e2e
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._env import machine, rows_chosen  # noqa: E402
from ganlab.models.cyclegan import build_generator, preset_config  # noqa: E402


@dataclass(frozen=True)
class NetworkRow:
    key: str
    name: str
    batch_size: int
    fast: bool = False  # bf16 autocast + channels_last
    compile_mode: str | None = None


LOOP = NetworkRow("loop", "per-image loop: fp32 batch 1", 1)


def network_rows(device: torch.device) -> list[NetworkRow]:
    """The network rows on this kind of device; the per-image loop first."""
    if device.type == "cuda":
        return [
            LOOP,
            NetworkRow("b64fp32", "batched fp32 batch 64", 64),
            NetworkRow("b64", "bf16 + channels_last batch 64", 64, fast=True),
            NetworkRow("b128", "bf16 + channels_last batch 128", 128, fast=True),
            NetworkRow("b256", "bf16 + channels_last batch 256", 256, fast=True),
            NetworkRow(
                "compile128", "bf16 + channels_last + compile, batch 128", 128, True, "default"
            ),
            NetworkRow(
                "autotune128",
                "bf16 + channels_last + compile max-autotune (CUDA graphs), batch 128",
                128,
                True,
                "max-autotune",
            ),
        ]
    return [LOOP, NetworkRow("b16", "batched fp32 batch 16", 16)]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def measure_network(
    net: torch.nn.Module, device: torch.device, size: int, row: NetworkRow, images: int
) -> float:
    """Images per second over at least ``images`` images after a warm-up."""
    memory = torch.channels_last if row.fast else torch.contiguous_format
    net = net.to(memory_format=memory)
    if row.compile_mode:
        torch._dynamo.reset()
        net = torch.compile(net, mode=row.compile_mode)
    x = torch.rand(row.batch_size, 3, size, size, device=device).mul(2).sub(1)
    x = x.contiguous(memory_format=memory)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if row.fast else contextlib.nullcontext()
    )
    steps = max(images // row.batch_size, 3)
    with torch.inference_mode(), autocast:
        for _ in range(3):
            net(x)
        synchronize(device)
        start = time.perf_counter()
        for _ in range(steps):
            if row.compile_mode == "max-autotune":
                torch.compiler.cudagraph_mark_step_begin()
            net(x)
        synchronize(device)
    return steps * row.batch_size / (time.perf_counter() - start)


def end_to_end(args: argparse.Namespace, device: torch.device) -> dict[str, Any]:
    """``generate()`` over ``--e2e-images`` PNG tiles: one thread vs overlapped stages."""
    from ganlab.data.demo import write_demo_tree
    from ganlab.train import TrainConfig
    from ganlab.train.generation import GenerationSettings, generate
    from ganlab.train.runtime import save_atomic
    from ganlab.train.trainer import CycleGANTrainer

    cuda = device.type == "cuda"
    workers = args.workers if args.workers is not None else (4 if cuda else 1)
    writers = args.writers if args.writers is not None else (10 if cuda else 1)
    variants = [
        ("one thread: decode, compute, encode in turn", GenerationSettings(), args.e2e_batch),
        (
            f"overlapped: {workers} decode worker(s), {writers} PNG writer thread(s)",
            GenerationSettings(num_workers=workers, writer_threads=writers),
            args.e2e_batch,
        ),
    ]
    if cuda:
        variants.append(
            (
                f"overlapped + bf16 + channels_last, batch {4 * args.e2e_batch}",
                GenerationSettings(
                    amp="bf16", channels_last=True, num_workers=workers, writer_threads=writers
                ),
                4 * args.e2e_batch,
            )
        )
    with tempfile.TemporaryDirectory(prefix="generation-bench-") as tmp:
        tmp = Path(tmp)
        per_class = args.e2e_images // 2
        write_demo_tree(
            tmp / "tiles",
            per_class_train=per_class,
            per_class_test=per_class,
            size=args.e2e_size,
            seed=0,
        )
        sources = [tmp / "tiles" / split / "benign" for split in ("train", "test")]
        config = TrainConfig.from_dict(
            {
                "domain_x": ["<none>"],
                "domain_y": ["<none>"],
                "preset": args.e2e_preset,
                "image_size": args.e2e_size,
                "load_size": args.e2e_size,
            }
        )
        torch.manual_seed(0)
        trainer = CycleGANTrainer(config, torch.device("cpu"), load_weights=False)
        checkpoint = tmp / "untrained.pt"
        save_atomic(
            {"kind": "cyclegan", "config": config.to_dict(), "epoch": 0, **trainer.state_dict()},
            checkpoint,
        )
        warm_up = sorted((tmp / "tiles" / "train" / "benign").glob("*.png"))[: 2 * args.e2e_batch]
        rows, first_files = [], None
        for name, settings, batch in variants:
            out = tmp / f"out{len(rows)}"
            generate(
                checkpoint,
                warm_up,
                out_dir=tmp / "warm-up",
                batch_size=batch,
                device=str(device),
                settings=settings,
            )
            start = time.perf_counter()
            records = generate(
                checkpoint,
                sources,
                out_dir=out,
                batch_size=batch,
                device=str(device),
                settings=settings,
            )
            seconds = time.perf_counter() - start
            files = [Path(r["output"]).read_bytes() for r in records]
            first_files = first_files or files
            rows.append(
                {
                    "name": name,
                    "batch_size": batch,
                    "settings": dataclasses.asdict(settings),
                    "images": len(records),
                    "seconds": seconds,
                    "images_per_s": len(records) / seconds,
                    "same_files_as_one_thread": files == first_files
                    if settings.amp == "off"
                    else None,
                }
            )
            print(f"measured generate(): {name}", file=sys.stderr)
    for row in rows:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
    return {"preset": args.e2e_preset, "size": args.e2e_size, "rows": rows}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--size", type=int, help="network rows' side (default 256 CUDA, 128 CPU)")
    parser.add_argument(
        "--images", type=int, help="images per network row (default 2048 CUDA, 32 CPU)"
    )
    parser.add_argument(
        "--rows", help="comma-separated network row keys after the loop (default all)"
    )
    parser.add_argument("--no-e2e", dest="e2e", action="store_false", help="skip generate() rows")
    parser.add_argument(
        "--e2e-preset", help="model of the generate() rows (default cyclegan CUDA, demo CPU)"
    )
    parser.add_argument("--e2e-size", type=int, help="tile side (default 256 CUDA, 64 CPU)")
    parser.add_argument("--e2e-images", type=int, help="source tiles (default 2048 CUDA, 256 CPU)")
    parser.add_argument("--e2e-batch", type=int, help="batch size (default 64 CUDA, 16 CPU)")
    parser.add_argument("--workers", type=int, help="decode workers of the overlapped row")
    parser.add_argument("--writers", type=int, help="PNG writer threads of the overlapped row")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args(argv)
    device = torch.device(args.device)
    cuda = device.type == "cuda"
    size = args.size or (256 if cuda else 128)
    images = args.images or (2048 if cuda else 32)
    args.e2e_preset = args.e2e_preset or ("cyclegan" if cuda else "demo")
    args.e2e_size = args.e2e_size or (256 if cuda else 64)
    args.e2e_images = args.e2e_images or (2048 if cuda else 256)
    args.e2e_batch = args.e2e_batch or (64 if cuda else 16)
    chosen = rows_chosen(parser, network_rows(device), args.rows, device=device.type)

    result: dict[str, Any] = {
        "benchmark": "generation",
        "machine": machine(),
        "device": str(device),
        "size": size,
        "load_before": os.getloadavg(),
        "rows": [],
    }

    def save() -> None:
        if args.json:
            Path(args.json).write_text(json.dumps(result, indent=2))

    torch.manual_seed(0)
    net = build_generator(preset_config("cyclegan"), load_weights=False).to(device).eval()
    for row in chosen:
        try:
            rate = measure_network(net, device, size, row, images)
        except Exception as exc:  # report the row as failed, keep measuring the others
            print(f"FAILED {row.name}: {type(exc).__name__}: {exc}", file=sys.stderr)
            continue
        base = result["rows"][0]["images_per_s"] if result["rows"] else rate
        result["rows"].append(
            {
                "name": row.name,
                "batch_size": row.batch_size,
                "images_per_s": rate,
                "ratio": rate / base,
            }
        )
        print(f"measured {row.name}: {rate:.1f} img/s", file=sys.stderr)
        save()
    if args.e2e:
        result["end_to_end"] = end_to_end(args, device)
    result["load_after"] = os.getloadavg()
    save()

    print(f"machine: {result['machine']}  device: {device}  load {result['load_before'][0]:.2f}")
    print(f"G_A network, {size}x{size}")
    print(f"{'row':<72}{'images/s':>12}{'x loop':>9}")
    for row in result["rows"]:
        print(f"{row['name']:<72}{row['images_per_s']:>12.1f}{row['ratio']:>9.2f}")
    if args.e2e:
        e2e = result["end_to_end"]
        print(f"generate(), PNG to PNG, {e2e['preset']} model, {e2e['size']}x{e2e['size']}")
        for row in e2e["rows"]:
            same = {True: "same files", False: "FILES DIFFER", None: "bf16"}[
                row["same_files_as_one_thread"]
            ]
            print(f"{row['name']:<72}{row['images_per_s']:>12.1f}{row['ratio']:>9.2f}  {same}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
