"""``python -m ganlab demo OUT``: write the deterministic demo tile tree."""

from __future__ import annotations

import argparse
from pathlib import Path


def _run_demo(args: argparse.Namespace) -> int:
    from ganlab.data.demo import write_demo_tree

    records = write_demo_tree(
        args.out,
        per_class_train=args.train_per_class,
        per_class_test=args.test_per_class,
        size=args.size,
        seed=args.seed,
    )
    print(f"wrote {len(records)} tiles and manifest.json under {args.out}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo",
        help="write deterministic H&E-like demo tiles",
        description="Write OUT/{train,test}/{benign,malignant}/*.png and OUT/manifest.json. "
        "The same arguments always give byte-identical files.",
    )
    parser.add_argument("out", type=Path, help="output folder")
    parser.add_argument("--train-per-class", type=int, default=64, help="training tiles per class")
    parser.add_argument("--test-per-class", type=int, default=16, help="test tiles per class")
    parser.add_argument("--size", type=int, default=128, help="tile side in pixels (>= 32)")
    parser.add_argument("--seed", type=int, default=0, help="generator seed")
    parser.set_defaults(func=_run_demo)
