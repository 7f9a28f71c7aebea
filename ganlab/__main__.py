"""Command line: ``python -m ganlab {train,generate,classify,evaluate,demo} ...``.

Each sub-command lives beside the code it drives and exposes ``register(subparsers)``;
the module is imported only when needed so ``--help`` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# module that registers each group of sub-commands
_COMMAND_MODULES = (
    "ganlab.data.cli",  # demo
    "ganlab.train.cli",  # train, generate, classify
    "ganlab.metrics.cli",  # evaluate
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m ganlab",
        description="Train CycleGAN variants, generate images and evaluate them.",
    )
    parser.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch CPU threads (default: OMP_NUM_THREADS, else one per core). Two CPU runs on one machine "
        "should split the cores: oversubscribed OpenMP threads spin and a step can take 15x longer",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module_name in _COMMAND_MODULES:
        importlib.import_module(module_name).register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.threads is not None:
        if args.threads < 1:
            parser.error(f"--threads must be at least 1, got {args.threads}")
        import torch

        torch.set_num_threads(args.threads)
    return int(args.func(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
