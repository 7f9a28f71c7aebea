"""The founding study's four tables, reproduced, beside the deck's published numbers.

Reads a run (:mod:`ratingstudy.results.founding`) and returns plain data: each table has
columns (metric, label, number format) and rows (model, method, our values, the deck's);
:func:`founding_csv_rows` and :func:`founding_markdown` write the same data as CSV and
Markdown. The deck (shared/FOUNDING_STUDY.txt) prints classification, FCN and rating
tables with numbers; its SSIM, PSNR and MSE appear only as charts, so those cells have no
published value. Rating figures are read through
:func:`ratingstudy.results.selectors.study_results`, as the results page shows them.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from ratingstudy.catalog.models import ImageSet
from ratingstudy.jobs.models import Comparison, Job
from ratingstudy.results.founding_selectors import (
    classify_job,
    founding_models,
    founding_real_set_name,
    founding_settings_of,
    founding_status,
    generate_job,
    latest_job,
)
from ratingstudy.results.reports import model_section
from ratingstudy.results.selectors import REAL, study_results

#: The deck's published numbers (shared/FOUNDING_STUDY.txt, "Results"), by table, row, metric.
DECK: dict[str, dict[str, dict[str, float]]] = {
    "classification": {
        "VGG-16 CycleGAN": {"accuracy": 0.5000, "precision": 0.5000, "recall": 1.0000, "f1": 0.67},
        "ResNet-50 CycleGAN": {"accuracy": 0.9500, "precision": 0.9036, "recall": 1.0, "f1": 0.95},
        "Simple CycleGAN": {"accuracy": 0.70, "precision": 1.0, "recall": 0.400, "f1": 0.57},
    },
    "fcn": {
        "Simple CycleGAN": {"iou": 0.3091, "pixel_accuracy": 0.9426, "class_accuracy": 0.4653},
        "VGG-16 CycleGAN": {"iou": 0.6787, "pixel_accuracy": 0.9547, "class_accuracy": 0.8374},
        "ResNet-50 CycleGAN": {"iou": 0.2603, "pixel_accuracy": 0.8962, "class_accuracy": 0.4578},
    },
    "quality": {},  # charts only in the deck
    "rating": {
        "Simple CycleGAN": {"quality": 3.51, "judged_real": 0.80},
        "VGG-16 CycleGAN": {"quality": 4.2, "judged_real": 0.95},
        "ResNet-50 CycleGAN": {"quality": 2.85, "judged_real": 0.50},
        "Real images": {"quality": 3.9, "judged_real": 0.90},
    },
    "cost": {},  # the deck asks about compute cost but reports none
}
NOTES = (
    "The deck does not say how its classification figures were obtained. Here each model has "
    "a classifier (EfficientNet-Lite0 by default) trained on the real training images plus that "
    "model's translations of the training split's benign images, and the semi-supervised models "
    "also have their discriminators' class head; both are scored on the real test images "
    "(malignant is the positive class).",
    "The deck's ResNet-50 row cannot come from 10 + 10 test images: accuracy 0.95 with recall "
    "1.0 means 10 true positives and 1 false positive, so precision 10/11 = 0.909, not 0.9036.",
    "FCN-score: a small segmenter trained on real training images labels nuclei, stroma and "
    "background (by colour deconvolution); its segmentation of G(x) is scored against the labels "
    "of x. The 'real test images' row runs it on the sources themselves: the upper bound.",
    "SSIM, PSNR and MSE compare each test image x with its translation G(x) (content "
    "preservation; unpaired data has no ground truth). The deck shows them only as charts.",
    "Rating: mean quality (1-5) and the share of answers 'real', over the rating study's "
    "analysed answers (practice and attention checks left out, excluded raters left out), as on "
    "the results page. Generated images of both classes are rated; real test images are shown "
    "resized to the models' square input, as the generators saw them.",
)


TABLE_NOTES = {
    "quality": "The deck shows SSIM, PSNR and MSE as charts without numbers.",
    "cost": "The deck's second research question; it publishes no figures. Peak memory is "
    "measured on GPUs only.",
}


@dataclass(frozen=True)
class Column:
    metric: str
    label: str
    digits: int  # decimals; 0 for counts


TABLES: dict[str, tuple[str, tuple[Column, ...]]] = {
    "classification": (
        "Classification (real test images)",
        (Column("accuracy", "Accuracy", 4), Column("precision", "Precision", 4),
         Column("recall", "Recall", 4), Column("f1", "F1 score", 4)),
    ),
    "fcn": (
        "FCN-score",
        (Column("iou", "IoU", 4), Column("pixel_accuracy", "Per-pixel accuracy", 4),
         Column("class_accuracy", "Per-class accuracy", 4)),
    ),
    "quality": (
        "Image quality, x vs G(x) (mean over test images)",
        (Column("ssim", "SSIM", 4), Column("psnr", "PSNR (dB)", 2), Column("mse", "MSE", 1),
         Column("kid", "KID", 4), Column("fid", "FID", 1)),
    ),
    "rating": (
        "Rating and real/fake judgment",
        (Column("quality", "Average image quality", 2), Column("judged_real", "Judged real", 2),
         Column("responses", "Answers", 0)),
    ),
    "cost": (
        "Compute cost of each model",
        (Column("parameters", "Parameters", 0), Column("train_minutes", "Training time (min)", 1),
         Column("images_per_s", "Images/s", 1), Column("peak_memory_gib", "Peak GPU memory (GiB)", 2)),
    ),
}  # fmt: skip


def _row(table: str, model: str, method: str, values: Mapping[str, Any], deck_name: str | None = None) -> dict:
    deck = DECK[table].get(deck_name or model, {}) if deck_name != "" else {}
    return {"model": model, "method": method, "values": dict(values), "deck": dict(deck)}


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _summary_mean(section: Mapping[str, Any], *path: str) -> float | None:
    for key in path:
        section = section.get(key) if isinstance(section, Mapping) else None
    if isinstance(section, Mapping):
        return _number(section.get("mean"))
    return _number(section)


def _fcn(scores: Mapping[str, Any] | None) -> dict[str, float | None]:
    scores = scores or {}
    return {
        "iou": _number(scores.get("mean_iou")),
        "pixel_accuracy": _number(scores.get("pixel_accuracy")),
        "class_accuracy": _number(scores.get("mean_class_accuracy")),
    }


def _classification(scores: Mapping[str, Any] | None) -> dict[str, float | None]:
    scores = scores or {}
    return {k: _number(scores.get(k)) for k in ("accuracy", "precision", "recall", "f1")}


def _cost(train: Job | None) -> dict[str, Any]:
    result = (train.result or {}) if train is not None else {}
    peak = _number(result.get("peak_gpu_mem_bytes"))
    seconds = _number(result.get("train_seconds"))
    return {
        "parameters": sum(result.get("parameter_counts", {}).values()) or None,
        "train_minutes": seconds / 60 if seconds is not None else None,
        "images_per_s": _number(result.get("images_per_s")),
        "peak_memory_gib": peak / 1024**3 if peak else None,  # 0 on a CPU: not measured
        "device": result.get("device") or (train.device if train is not None else ""),
    }


def founding_report(*, comparison: Comparison) -> dict:
    """The run's settings, progress, the five tables (the deck's four and compute cost) and notes."""
    settings = founding_settings_of(comparison)
    status = founding_status(comparison=comparison)
    real = ImageSet.objects.filter(name=founding_real_set_name(settings.name)).first()
    rows: dict[str, list[dict]] = {key: [] for key in TABLES}
    names: dict[str, str] = {}  # results group (the generated sets' model name) -> deck label
    sources: dict[str, float | None] | None = None  # the same FCN, trained alike, in every report
    for model, experiment, train in founding_models(comparison):
        label = model.label
        names[experiment.name] = label
        deck = label if model.in_deck else ""
        chained = generate_job(train, direction="AtoB", split="test") if train else None
        evaluate = (
            latest_job(chained.children.filter(kind=Job.Kind.EVALUATE)) if chained else None
        )
        stored = evaluate.metric_report if evaluate is not None else None
        section = model_section(stored.report, stored.model_name) if stored else {}
        augment = generate_job(train, direction="AtoB", split="train") if train else None
        classifier = (
            classify_job(real, augment.output_image_set)
            if real is not None and augment is not None and augment.output_image_set
            else None
        )
        rows["classification"].append(
            _row("classification", label, "classifier, real + this model's synthetic training images",
                 _classification((classifier.result or {}).get("test") if classifier else None), deck)
        )  # fmt: skip
        if model.semi_supervised:
            head = (stored.report.get("classifiers") or {}).get(stored.model_name) if stored else None
            rows["classification"].append(
                _row("classification", label, "discriminator class head (semi-supervised)",
                     _classification(head), deck)
            )  # fmt: skip
        fcn = (section.get("fcn_score") or {}) if section else {}
        rows["fcn"].append(_row("fcn", label, "FCN on G(x) vs labels of x", _fcn(fcn.get("generated")), deck))
        rows["quality"].append(
            _row("quality", label, "x vs G(x)", {
                "ssim": _summary_mean(section, "translation", "ssim"),
                "psnr": _summary_mean(section, "translation", "psnr"),
                "mse": _summary_mean(section, "translation", "mse"),
                "kid": _summary_mean(section, "kid"),
                "fid": _number(section.get("fid")) if section else None,
            }, deck)
        )  # fmt: skip
        cost = _cost(train)
        rows["cost"].append(_row("cost", label, f"trained on {cost['device'] or '?'}", cost, ""))
        if sources is None and fcn.get("sources"):
            sources = _fcn(fcn["sources"])
    if sources is not None:
        rows["fcn"].append(_row("fcn", "Real test images", "FCN on x (upper bound)", sources, ""))
    baseline = classify_job(real, None) if real is not None else None
    rows["classification"].append(
        _row("classification", "Real images only", "classifier, real training images (baseline)",
             _classification((baseline.result or {}).get("test") if baseline else None), "")
    )  # fmt: skip
    rows["rating"] = _rating_rows(status.study, names)
    return {
        "run": comparison,
        "settings": settings,
        "status": status,
        "tables": [
            {"key": key, "title": title, "columns": columns, "rows": rows[key],
             "published": bool(DECK[key]), "note": TABLE_NOTES.get(key, "")}
            for key, (title, columns) in TABLES.items()
        ],  # fmt: skip
        "notes": NOTES,
    }


def _rating_rows(study, names: Mapping[str, str]) -> list[dict]:
    if study is None:
        return [_row("rating", label, "rating study not created yet", {}) for label in names.values()]
    results = study_results(study=study)
    rows = []
    for group in results["models"]:
        label = "Real images" if group["name"] == REAL else names.get(group["name"], group["name"])
        values = {
            "quality": group["mos"]["value"],
            "judged_real": group["judged_real"]["value"],
            "responses": group["n_responses"],
        }
        rows.append(_row("rating", label, f"{group['n_raters']} rater(s)", values))
    order = [*names.values(), "Real images"]
    return sorted(rows, key=lambda r: order.index(r["model"]) if r["model"] in order else len(order))


def format_value(value: float | None, digits: int) -> str:
    if value is None:
        return "—"
    return f"{value:,.0f}" if digits == 0 else f"{value:.{digits}f}"


def founding_csv_rows(report: dict) -> Iterator[list[str]]:
    """``table, model, method, metric, ours, published`` per cell (empty when there is none)."""
    yield ["table", "model", "method", "metric", "ours", "published"]
    for table in report["tables"]:
        for row in table["rows"]:
            for column in table["columns"]:
                ours, deck = row["values"].get(column.metric), row["deck"].get(column.metric)
                yield [
                    table["key"],
                    row["model"],
                    row["method"],
                    column.metric,
                    "" if ours is None else repr(float(ours)),
                    "" if deck is None else repr(float(deck)),
                ]


def founding_cells(table: dict) -> list[dict]:
    """A table's rows as text: ``{"model", "method", "cells": [(ours, published or None)]}``."""
    return [
        {
            "model": row["model"],
            "method": row["method"],
            "cells": [
                (
                    format_value(row["values"].get(c.metric), c.digits),
                    None
                    if row["deck"].get(c.metric) is None
                    else format_value(row["deck"][c.metric], c.digits),
                )
                for c in table["columns"]
            ],
        }
        for row in table["rows"]
    ]


def founding_markdown(report: dict) -> str:
    """The tables as Markdown: each cell ``ours (published)``, with the run's settings and the notes."""
    settings = report["settings"]
    lines = [
        f"# Founding study reproduction: {report['run'].name}",
        "",
        f"{report['status'].message}",
        "",
        f"BreakHis 400X, {settings.train_per_class}+{settings.train_per_class} training and "
        f"{settings.test_per_class}+{settings.test_per_class} test images by patient (seed "
        f"{settings.seed}); {settings.epochs} epoch(s) at {settings.image_size} px, batch "
        f"{settings.batch_size}, encoders {settings.encoder_weights}. Cells: ours (published).",
    ]
    for table in report["tables"]:
        lines += ["", f"## {table['title']}", ""]
        header = ["Model", "Method", *(c.label for c in table["columns"])]
        lines.append("| " + " | ".join(header) + " |")
        lines.append("|" + "---|" * len(header))
        for row in founding_cells(table):
            cells = [ours if deck is None else f"{ours} ({deck})" for ours, deck in row["cells"]]
            lines.append("| " + " | ".join([row["model"], row["method"], *cells]) + " |")
    lines += ["", "## Notes", ""] + [f"- {note}" for note in report["notes"]]
    return "\n".join(lines) + "\n"
