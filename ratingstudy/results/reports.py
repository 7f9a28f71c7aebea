"""Reading a ``ganlab`` evaluation report as plain JSON (the web process never imports
``ganlab.metrics``: it needs torch).

What is read, and how tolerant it is:

* **aggregates**: every numeric leaf under ``report["aggregates"]`` (or under the
  model's entry in ``report["models"]``), flattened to dotted names
  (``{"translation": {"ssim": {"mean": 0.61, "std": ...}}}`` -> ``translation.ssim``).
  A leaf that is a summary (a dict with a ``mean``) gives its mean. Classification,
  FCN-score, FID and KID sections are aggregates like any other.
* **per-image values**: ``report["per_image"]`` (or the model entry's), either a list of
  records ``{"path": ..., "source": ..., "ssim": 0.7, ...}`` or a mapping
  ``{path: {"ssim": 0.7, ...}}``; numeric fields are flattened to dotted names like the
  aggregates.
* **extractor**: the first ``extractor`` key found anywhere under ``settings``
  (a string, or a dict with a ``name``).

Non-finite numbers (NaN, inf) are dropped: they are stored as ``null`` in the report.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from typing import Any

#: Keys of a per-image record that identify the image rather than measure it.
IDENTITY_KEYS = ("path", "image", "image_path", "source_path", "file", "name", "source", "source_image", "id")

#: Order of metric families in the founding study's tables; anything else follows.
METRIC_ORDER = (
    "ssim",
    "psnr",
    "mse",
    "iou",
    "mean_iou",
    "per_pixel_accuracy",
    "pixel_accuracy",
    "per_class_accuracy",
    "mean_class_accuracy",
    "class_accuracy",
    "accuracy",
    "precision",
    "recall",
    "f1",
    "specificity",
    "roc_auc",
    "fid",
    "kid",
)


def json_safe(value: Any) -> Any:
    """``value`` with every NaN/inf float replaced by ``None`` (PostgreSQL's jsonb and
    strict JSON parsers refuse them) and tuples turned into lists."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Mapping):
        return {str(k): json_safe(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    return value


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


#: Numeric leaves that are counts, settings or spreads, not metrics (kept in the stored
#: report, left out of tables): confusion-matrix cells, sample sizes, KID subset sizes...
NOT_METRIC_LEAVES = frozenset(
    {"n", "tp", "fp", "tn", "fn", "threshold", "subsets", "subset_size", "seed", "num_features", "input_size",
     "count", "std", "median", "min", "max", "data_range", "window", "sigma", "k1", "k2"}
)  # fmt: skip
#: Sections that are breakdowns or settings, not headline metrics.
NOT_METRIC_SECTIONS = ("settings", "confusion_matrix", "per_class_")


def _is_metric(key: str) -> bool:
    return key not in NOT_METRIC_LEAVES and not key.startswith("n_")


def flatten_numbers(data: Any, prefix: str = "") -> Iterator[tuple[str, float]]:
    """Dotted names and values of the numeric leaves of ``data``; a summary dict (one
    with a ``mean``) counts as its mean; lists are not descended (confusion matrices);
    counts and settings (:data:`NOT_METRIC_LEAVES`, ``n_*``) and breakdown sections
    (:data:`NOT_METRIC_SECTIONS`) are skipped."""
    if isinstance(data, Mapping):
        if "mean" in data and _number(data["mean"]) is not None:
            yield prefix, float(data["mean"])
            return
        for key, value in data.items():
            key = str(key)
            if key.startswith(NOT_METRIC_SECTIONS) or (not isinstance(value, Mapping) and not _is_metric(key)):
                continue
            name = f"{prefix}.{key}" if prefix else key
            yield from flatten_numbers(value, name)
        return
    number = _number(data)
    if number is not None and prefix:
        yield prefix, number


def model_section(report: Mapping[str, Any], model_name: str) -> Mapping[str, Any]:
    """The part of ``report`` about ``model_name``: its entry in ``report["models"]``
    when there is one (or the only entry), otherwise the report itself."""
    models = report.get("models")
    if isinstance(models, Mapping) and models:
        if model_name in models and isinstance(models[model_name], Mapping):
            return models[model_name]
        if len(models) == 1:
            only = next(iter(models.values()))
            if isinstance(only, Mapping):
                return only
    return report


def report_aggregates(report: Mapping[str, Any], model_name: str = "") -> dict[str, float]:
    """Dotted metric name -> value for the model's aggregates (see module docstring)."""
    section = model_section(report, model_name)
    aggregates = section.get("aggregates", report.get("aggregates", {}))
    return dict(flatten_numbers(aggregates))


def report_per_image(report: Mapping[str, Any], model_name: str = "") -> Iterator[tuple[list[str], dict[str, float]]]:
    """``(identity keys, {metric: value})`` per image: the identity keys are the record's
    path-like fields in :data:`IDENTITY_KEYS` order (or the mapping key)."""
    section = model_section(report, model_name)
    per_image = section.get("per_image", report.get("per_image", []))
    if isinstance(per_image, Mapping):
        for key, values in per_image.items():
            yield [str(key)], dict(flatten_numbers(values))
        return
    if not isinstance(per_image, list):
        return
    for record in per_image:
        if not isinstance(record, Mapping):
            continue
        keys = [str(record[k]) for k in IDENTITY_KEYS if isinstance(record.get(k), str | int) and not isinstance(record.get(k), bool)]
        values = {k: v for k, v in record.items() if k not in IDENTITY_KEYS}
        yield keys, dict(flatten_numbers(values))


def report_extractor(report: Mapping[str, Any]) -> str:
    """Name of the FID/KID feature extractor, or "" when the report names none."""
    return _find_extractor(report.get("settings", {})) or _find_extractor(report) or ""


def _find_extractor(data: Any) -> str | None:
    if isinstance(data, Mapping):
        value = data.get("extractor")
        if isinstance(value, str) and value:
            return value
        if isinstance(value, Mapping) and isinstance(value.get("name"), str):
            return value["name"]
        for child in data.values():
            found = _find_extractor(child)
            if found:
                return found
    return None


def metric_sort_key(name: str) -> tuple[int, str]:
    """Founding-study order by the last dotted part of ``name``, then alphabetical."""
    last = name.rsplit(".", 1)[-1].lower()
    return (METRIC_ORDER.index(last) if last in METRIC_ORDER else len(METRIC_ORDER), name)
