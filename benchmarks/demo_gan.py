"""What the first-run demo GAN reaches in its time budget, measured against the untrained one.

Trains the ``demo`` recipe (``ganlab.recipes.DEMO``) on the 64x64 demo tiles exactly as
the lab's demo job does, then translates held-out benign tiles with the untrained
generator (same seed, same initialisation) and with the trained one, and compares both
with held-out real malignant tiles by KID and FID (the lab's always-available
EfficientNet-Lite0 features unless ``--extractor`` says otherwise). It also runs the
demo's evaluation (FCN-score, SSIM/PSNR, FID/KID as the evaluate job does) so that the
whole chain's time is known, and draws the before/after picture for the README.

Run it alone on the machine, under the shared CPU lock, with two threads::

    OMP_NUM_THREADS=2 flock /tmp/ganlab-cpu.lock \\
        .venv/bin/python benchmarks/demo_gan.py --json benchmarks/results/demo-gan.json \\
        --picture docs/demo_gan.png

``--minutes 0.1`` is a smoke run. The load average before and after is part of the
JSON: figures taken on a busy machine are not comparable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._env import machine  # noqa: E402

#: Held-out tiles per class: sources (benign) and the FID/KID reference (malignant).
TEST_PER_CLASS = 64
#: Examples in the picture.
PICTURE_COLUMNS = 6
PICTURE_SCALE = 3


def _translate(network, paths: list[Path], image_size: int) -> list:
    """``G(x)`` of each image as uint8 (H, W, 3), with the network in eval mode."""
    import torch

    from ganlab.data.dataset import ImageDataset, to_pixels

    network.eval()
    outputs = []
    with torch.inference_mode():
        for index in range(len(paths)):
            image = ImageDataset(paths, image_size=image_size).load(index)
            outputs.append(to_pixels(network(image[None]))[0])
    return outputs


def _picture(rows: list[tuple[str, list]], path: Path) -> None:
    """A grid: one labelled row per (caption, images), each image scaled up (nearest)."""
    from PIL import Image, ImageDraw

    tile = rows[0][1][0].shape[0] * PICTURE_SCALE
    caption, gap = 150, 4
    width = caption + PICTURE_COLUMNS * (tile + gap)
    canvas = Image.new("RGB", (width, len(rows) * (tile + gap)), "white")
    draw = ImageDraw.Draw(canvas)
    for r, (text, images) in enumerate(rows):
        top = r * (tile + gap)
        draw.multiline_text((6, top + tile // 2 - 14), text, fill="black")
        for c, pixels in enumerate(images[:PICTURE_COLUMNS]):
            image = Image.fromarray(pixels).resize((tile, tile), Image.Resampling.NEAREST)
            canvas.paste(image, (caption + c * (tile + gap), top))
    path.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours keep the picture small enough for the repository, visibly unchanged
    canvas.quantize(256, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE).save(
        path, optimize=True
    )


def run(args: argparse.Namespace) -> dict:
    import torch

    torch.set_num_threads(args.threads)
    from ganlab.data.demo import write_demo_tree
    from ganlab.data.imageio import load_rgb
    from ganlab.metrics.fid import (
        extract_features,
        fid_from_features,
        get_feature_extractor,
        kid_from_features,
    )
    from ganlab.metrics.report import evaluate
    from ganlab.recipes import DEMO
    from ganlab.train import TrainConfig, generate, train
    from ganlab.train.runtime import seed_everything
    from ganlab.train.trainer import CycleGANTrainer

    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="demo-gan-") as tmp:
        tmp = Path(tmp)
        tiles = tmp / "tiles"
        # the lab's demo tiles: the same training tiles, more held-out ones
        write_demo_tree(
            tiles,
            per_class_train=DEMO.train_per_class,
            per_class_test=args.test_per_class,
            size=DEMO.image_size,
            seed=0,
        )
        config = TrainConfig.from_dict(
            {
                "domain_x": [str(tiles / "train" / "benign")],
                "domain_y": [str(tiles / "train" / "malignant")],
                **DEMO.train_settings(args.minutes),
                "model": DEMO.model,
                "device": "cpu",
            }
        )
        sources = sorted((tiles / "test" / "benign").glob("*.png"))
        targets = sorted((tiles / "test" / "malignant").glob("*.png"))

        seed_everything(config.seed, deterministic=config.deterministic)  # as train() does
        untrained = _translate(
            CycleGANTrainer(config, torch.device("cpu")).model.G_A, sources, DEMO.image_size
        )

        started = time.perf_counter()
        result = train(config, out_dir=tmp / "run")
        train_wall = time.perf_counter() - started
        started = time.perf_counter()
        generate(
            result.checkpoint,
            [tiles / "test" / "benign"],
            out_dir=tmp / "generated",
            reconstructions=True,
            device="cpu",
        )
        generate_wall = time.perf_counter() - started
        trained = [load_rgb(p) for p in sorted((tmp / "generated").glob("*_fake_B.png"))]

        started = time.perf_counter()
        evaluate(
            output=tmp / "report.json",
            models={"demo": {"manifest": tmp / "generated" / "manifest.json",
                             "reference": tiles / "test" / "malignant"}},
            real_images=tiles / "train",
            fcn_steps=DEMO.fcn_steps,
            feature_extractor=args.extractor,
            device="cpu",
        )
        evaluate_wall = time.perf_counter() - started

        extractor = get_feature_extractor(args.extractor)
        reference = extract_features(extractor, (load_rgb(p) for p in targets))
        sets = {
            "untrained G(x)": extract_features(extractor, untrained),
            "trained G(x)": extract_features(extractor, trained),
            "real benign x (no translation)": extract_features(
                extractor, (load_rgb(p) for p in sources)
            ),
        }
        scores = {
            name: {
                "fid": fid_from_features(reference, features),
                "kid": kid_from_features(
                    reference, features, subsets=100, subset_size=len(targets) // 2, seed=0
                ),
            }
            for name, features in sets.items()
        }
        if args.picture:
            _picture(
                [
                    ("benign source x\n(held out)", [load_rgb(p) for p in sources]),
                    ("untrained G(x)", untrained),
                    (f"G(x) after\n{train_wall / 60:.1f} min", trained),
                    ("real malignant\n(for reference)", [load_rgb(p) for p in targets]),
                ],
                Path(args.picture),
            )
    return {
        "benchmark": "demo_gan",
        "machine": machine(),
        "threads": args.threads,
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "minutes_asked": args.minutes if args.minutes is not None else DEMO.minutes,
        "epochs": result.epochs_done,
        "train_seconds": train_wall,
        "generate_seconds": generate_wall,
        "evaluate_seconds": evaluate_wall,
        "chain_seconds": train_wall + generate_wall + evaluate_wall,
        "pairs_per_s": result.images_per_s,
        "parameters": sum(result.parameter_counts.values()),
        "extractor": extractor.name,
        "n_sources": len(sources),
        "n_reference": len(targets),
        "scores": scores,
        "final_losses": result.final_losses,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, help="training minutes (default: the recipe's)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (default 2)")
    parser.add_argument("--test-per-class", type=int, default=TEST_PER_CLASS)
    parser.add_argument("--extractor", default="efficientnet_lite0", help="FID/KID features")
    parser.add_argument("--picture", help="write the before/after PNG here")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    figures = run(args)
    text = json.dumps(figures, indent=2)
    print(text)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
