"""``python -m ganlab evaluate``: run :func:`ganlab.metrics.report.evaluate` from the shell.

Example::

    python -m ganlab evaluate --output report.json --real-images demo/train \\
        --model cyclegan_b2m=gen/b2m/manifest.csv --reference cyclegan_b2m=demo/test/malignant \\
        --classifier resnet50=preds/test.csv --device cuda
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _named_path(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=PATH, got {text!r}")
    return name, Path(path)


def _number(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _run_evaluate(args: argparse.Namespace) -> int:
    from ganlab.metrics.report import evaluate

    models = {name: {"manifest": path} for name, path in args.model}
    for name, path in args.reference:
        if name not in models:
            print(f"error: --reference {name}={path} names no --model", file=sys.stderr)
            return 2
        models[name]["reference"] = path
    try:
        report = evaluate(
            output=args.output,
            models=models,
            real_images=args.real_images,
            classifiers=dict(args.classifier),
            fcn_model=args.fcn_model,
            save_fcn_model=args.save_fcn,
            fcn_steps=args.fcn_steps,
            feature_extractor=args.extractor,
            kid_subsets=args.kid_subsets,
            kid_subset_size=args.kid_subset_size,
            classification_threshold=args.threshold,
            seed=args.seed,
            device=args.device,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, result in report["models"].items():
        kid = result["kid"]
        print(
            f"{name}: n={result['n_images']} SSIM(x, G(x))={_number(result['translation']['ssim']['mean'])} "
            f"PSNR={_number(result['translation']['psnr']['mean'])} dB "
            f"FCN mIoU={_number(result['fcn_score']['generated']['mean_iou'])} "
            f"KID={_number(kid['mean'], 5)}±{_number(kid['std'], 5)} FID={_number(result['fid'], 2)}"
        )
    for name, result in report["classifiers"].items():
        print(
            f"{name}: n={result['n']} accuracy={_number(result['accuracy'])} F1={_number(result['f1'])} "
            f"ROC-AUC={_number(result['roc_auc'])}"
        )
    extractor = report["settings"]["feature_extractor"]
    if extractor is not None:
        print(f"features: {extractor['name']} (FID/KID comparable only with the same extractor)")
    print(f"report written to {args.output}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="SSIM/PSNR/MSE, FCN-score, FID/KID and classification metrics as a JSON report",
        description="Evaluate generated images (generation manifest.json or generated,source[,reconstruction] CSV) "
        "and classifier predictions (image,label,prob_malignant CSV); write one JSON report.",
    )
    parser.add_argument("--output", type=Path, required=True, help="report file to write (JSON)")
    parser.add_argument(
        "--model",
        type=_named_path,
        action="append",
        default=[],
        metavar="NAME=MANIFEST",
        help="a model's manifest: generation's manifest.json or a generated,source[,reconstruction] CSV (repeatable)",
    )
    parser.add_argument(
        "--reference",
        type=_named_path,
        action="append",
        default=[],
        metavar="NAME=FOLDER",
        help="real target-domain images for that model's FID/KID (default: --real-images)",
    )
    parser.add_argument(
        "--real-images", type=Path, help="real images: FCN training set and default reference"
    )
    parser.add_argument(
        "--classifier",
        type=_named_path,
        action="append",
        default=[],
        metavar="NAME=CSV",
        help="a classifier's test-split predictions (repeatable)",
    )
    parser.add_argument(
        "--fcn-model", type=Path, help="trained FCN-score checkpoint (default: train one)"
    )
    parser.add_argument("--save-fcn", type=Path, help="where to save the FCN used, for later runs")
    parser.add_argument(
        "--fcn-steps", type=int, default=300, help="FCN training steps (default 300)"
    )
    parser.add_argument(
        "--extractor",
        default="auto",
        help="FID/KID features: auto, inception_v3_fid, "
        "inception_v3_torchvision or efficientnet_lite0 (default auto)",
    )
    parser.add_argument("--kid-subsets", type=int, default=100)
    parser.add_argument("--kid-subset-size", type=int, default=1000)
    parser.add_argument(
        "--threshold", type=float, default=0.5, help="malignant if prob >= threshold"
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", help="torch device, e.g. cpu or cuda")
    parser.set_defaults(func=_run_evaluate)
