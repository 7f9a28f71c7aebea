"""``python -m ganlab train|generate|classify``: command-line front ends.

Heavy imports (torch) happen inside the handlers so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import dataclasses
import json
import signal
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

TRAIN_CONFIG_HELP = """\
The config is a JSON object with the fields of ganlab.train.TrainConfig. Minimal:
  {"domain_x": ["data/train/benign"], "domain_y": ["data/train/malignant"],
   "preset": "resnet50-cyclegan", "semi_supervised": true,
   "image_size": 256, "n_epochs": 100, "n_epochs_decay": 100}
Relative paths are relative to the config file. "model" may override preset fields,
e.g. {"encoder_weights": "random"} or {"weights_paths": {"resnet50": "/w/resnet50-0676ba61.pth"}}.
Presets: cyclegan, resnet50-cyclegan, vgg16-cyclegan, efficientnet-lite0-cyclegan, demo.
Paper names: G_A = G: X->Y, G_B = F: Y->X, D_A = D_Y, D_B = D_X.
Ctrl-C stops after the current iteration and leaves a resumable checkpoint."""

CLASSIFY_CONFIG_HELP = """\
The config is a JSON object with the fields of ganlab.train.ClassifierConfig, e.g.
  {"real": {"benign": ["data/train/benign"], "malignant": ["data/train/malignant"]},
   "synthetic": {"malignant": ["generated/AtoB"]},
   "encoder": "efficientnet_lite0", "image_size": 224, "epochs": 10}
Leave "synthetic" out to train on real images only. Relative paths are relative to the file."""


@contextlib.contextmanager
def _stop_on_interrupt() -> Iterator[threading.Event]:
    """An event set by the first Ctrl-C (training then checkpoints and stops); a second one aborts.

    The previous SIGINT handler is restored on exit.
    """
    event = threading.Event()

    def handler(signum: int, frame: Any) -> None:
        if event.is_set():
            raise KeyboardInterrupt
        print("\nstopping after this iteration (Ctrl-C again to abort)...", file=sys.stderr)
        event.set()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield event
    finally:
        signal.signal(signal.SIGINT, previous)


def _progress_bar(unit: str) -> tuple[Any, Any]:
    from tqdm import tqdm

    bar = tqdm(unit=unit, dynamic_ncols=True)

    def on_progress(progress: Any) -> None:
        bar.total = progress.total_steps
        bar.n = progress.global_step
        bar.set_description(f"epoch {progress.epoch}/{progress.total_epochs}")
        bar.set_postfix(
            {k: f"{v:.3f}" for k, v in progress.losses.items()}
            | {"img/s": f"{progress.images_per_s:.1f}"}
        )

    return bar, on_progress


def _run_train(args: argparse.Namespace) -> int:
    from ganlab.train import TrainConfig, train

    config = TrainConfig.from_json_file(args.config)
    if args.device:
        config = dataclasses.replace(config, device=args.device)
    bar, on_progress = _progress_bar("it")
    with bar, _stop_on_interrupt() as stop_event:
        result = train(
            config,
            out_dir=args.out,
            on_progress=on_progress,
            resume=not args.no_resume,
            stop_event=stop_event,
        )
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _run_generate(args: argparse.Namespace) -> int:
    from ganlab.train import generate
    from ganlab.train.generation import GenerationSettings
    from ganlab.train.runtime import select_device

    settings = GenerationSettings.for_device(select_device(args.device))
    changes = {
        "amp": args.amp,
        "channels_last": args.channels_last or None,
        "compile": args.compile_mode is not None or None,
        "compile_mode": args.compile_mode,
        "num_workers": args.workers,
        "writer_threads": args.writers,
    }
    settings = dataclasses.replace(settings, **{k: v for k, v in changes.items() if v is not None})
    records = generate(
        args.checkpoint,
        args.sources,
        out_dir=args.out,
        direction=args.direction,
        batch_size=args.batch_size,
        reconstructions=args.reconstructions,
        image_size=args.image_size,
        device=args.device,
        settings=settings,
    )
    print(f"wrote {len(records)} images and manifest.json to {args.out}")
    return 0


def _run_classify_train(args: argparse.Namespace) -> int:
    from ganlab.train import ClassifierConfig, train_classifier

    config = ClassifierConfig.from_json_file(args.config)
    if args.device:
        config = dataclasses.replace(config, device=args.device)
    bar, on_progress = _progress_bar("batch")
    with bar, _stop_on_interrupt() as stop_event:
        result = train_classifier(
            config, out_dir=args.out, on_progress=on_progress, stop_event=stop_event
        )
    print(json.dumps(result.to_dict(), indent=2))
    return 0


def _run_classify_predict(args: argparse.Namespace) -> int:
    from ganlab.data.dataset import expand_sources
    from ganlab.train import predict

    paths = expand_sources(args.images, what="images")
    probabilities = predict(args.checkpoint, paths, batch_size=args.batch_size, device=args.device)
    out = open(args.csv, "w", newline="") if args.csv else sys.stdout  # noqa: SIM115 - stdout is not closed
    try:
        writer = csv.writer(out)
        writer.writerow(["path", "p_malignant", "prediction"])
        for path, p in zip(paths, probabilities, strict=True):
            writer.writerow([str(path), f"{p:.6f}", "malignant" if p >= 0.5 else "benign"])
    finally:
        if args.csv:
            out.close()
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add ``train``, ``generate`` and ``classify`` to ``python -m ganlab``."""
    fmt = argparse.RawDescriptionHelpFormatter
    devices = ("auto", "cpu", "cuda", "mps")

    train = subparsers.add_parser(
        "train",
        help="train or resume a CycleGAN-family model",
        description="Train a CycleGAN, ResNet-50/VGG-16/EfficientNet-Lite0 transfer-learning CycleGAN, "
        "optionally semi-supervised, with checkpoints in OUT.\n\n" + TRAIN_CONFIG_HELP,
        formatter_class=fmt,
    )
    train.add_argument("--config", type=Path, required=True, help="JSON TrainConfig file")
    train.add_argument(
        "--out", type=Path, required=True, help="run folder for latest.pt and epoch_NNNN.pt"
    )
    train.add_argument(
        "--no-resume", action="store_true", help="start over even if OUT/latest.pt exists"
    )
    train.add_argument("--device", choices=devices, help="override the config's device")
    train.set_defaults(func=_run_train)

    generate = subparsers.add_parser(
        "generate",
        help="translate images with a trained checkpoint",
        description="Translate images (files or folders) with G_A (AtoB, G: X->Y) or G_B (BtoA, F: Y->X). "
        "Writes PNGs and OUT/manifest.json recording source, direction, checkpoint sha256 and config.",
    )
    generate.add_argument(
        "sources", nargs="+", type=Path, help="image files or folders (searched recursively)"
    )
    generate.add_argument(
        "--checkpoint", type=Path, required=True, help="latest.pt or epoch_NNNN.pt of a run"
    )
    generate.add_argument("--out", type=Path, required=True, help="output folder")
    generate.add_argument(
        "--direction", choices=("AtoB", "BtoA"), default="AtoB", help="default: AtoB (X->Y)"
    )
    generate.add_argument(
        "--batch-size", type=int, default=8, help="images per forward pass (default 8)"
    )
    generate.add_argument(
        "--reconstructions", action="store_true", help="also write cycle reconstructions"
    )
    generate.add_argument(
        "--image-size", type=int, help="square side to resize to (default: training size)"
    )
    generate.add_argument(
        "--device", choices=devices, default="auto", help="default: auto (cuda, mps, cpu)"
    )
    speed = generate.add_argument_group(
        "speed",
        "defaults: one thread on a CPU; on CUDA fp32 with decoding and PNG writing overlapped",
    )
    speed.add_argument(
        "--amp", choices=("off", "bf16"), help="bf16 autocast (CUDA; may change pixels by one step)"
    )
    speed.add_argument("--channels-last", action="store_true", help="NHWC layout")
    speed.add_argument(
        "--compile-mode",
        help="torch.compile the networks in this mode: default, reduce-overhead, max-autotune, ...",
    )
    speed.add_argument("--workers", type=int, help="DataLoader processes decoding the sources")
    speed.add_argument("--writers", type=int, help="threads encoding and writing PNGs")
    generate.set_defaults(func=_run_generate)

    classify = subparsers.add_parser(
        "classify",
        help="train a benign/malignant classifier or predict with one",
        description="Standalone transfer-learning classifier (real or real+synthetic images), and "
        "P(malignant) predictions from it or from a semi-supervised CycleGAN checkpoint.",
    )
    actions = classify.add_subparsers(dest="classify_command", required=True, metavar="ACTION")
    fit = actions.add_parser(
        "train",
        help="train a classifier",
        description="Fine-tune an ImageNet encoder with a linear head.\n\n" + CLASSIFY_CONFIG_HELP,
        formatter_class=fmt,
    )
    fit.add_argument("--config", type=Path, required=True, help="JSON ClassifierConfig file")
    fit.add_argument("--out", type=Path, required=True, help="folder for classifier.pt")
    fit.add_argument("--device", choices=devices, help="override the config's device")
    fit.set_defaults(func=_run_classify_train)
    pred = actions.add_parser(
        "predict",
        help="P(malignant) per image",
        description="Print (or write to --csv) path, P(malignant) and the predicted class for each image.",
    )
    pred.add_argument("images", nargs="+", type=Path, help="image files or folders")
    pred.add_argument(
        "--checkpoint",
        type=Path,
        required=True,
        help="classifier.pt or a semi-supervised CycleGAN checkpoint",
    )
    pred.add_argument("--csv", type=Path, help="write the table here instead of stdout")
    pred.add_argument("--batch-size", type=int, default=16, help="default 16")
    pred.add_argument("--device", choices=devices, default="auto", help="default: auto")
    pred.set_defaults(func=_run_classify_predict)
