"""Writes of the results app: storing automatic-metric reports."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from django.db import transaction

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.results.models import ImageMetric, MetricReport
from ratingstudy.results.reports import json_safe, report_extractor, report_per_image

#: Allowed cost fields and their types.
COST_FIELDS: dict[str, type | tuple[type, ...]] = {
    "parameters": int,
    "train_seconds": (int, float),
    "images_per_s": (int, float),
    "peak_gpu_mem_bytes": int,
    "device": str,
}
#: Unmatched per-image keys kept as examples in ``MetricReport.mapping``.
UNMATCHED_EXAMPLES = 20


def _validate_cost(cost: Mapping[str, Any]) -> dict[str, Any]:
    unknown = sorted(set(cost) - set(COST_FIELDS))
    if unknown:
        raise ApplicationError(
            f"unknown cost field(s) {', '.join(unknown)}; allowed: {', '.join(COST_FIELDS)}", extra={"fields": unknown}
        )
    clean: dict[str, Any] = {}
    for key, value in cost.items():
        if value is None:
            clean[key] = None
            continue
        expected = COST_FIELDS[key]
        if isinstance(value, bool) or not isinstance(value, expected):
            raise ApplicationError(f"cost field {key} must be {_type_name(expected)}, got {value!r}")
        if isinstance(value, int | float) and (not math.isfinite(value) or value < 0):
            raise ApplicationError(f"cost field {key} must be a finite number >= 0, got {value!r}")
        clean[key] = value
    return clean


def _type_name(expected: type | tuple[type, ...]) -> str:
    types = expected if isinstance(expected, tuple) else (expected,)
    return " or ".join({"int": "an integer", "float": "a number", "str": "a string"}[t.__name__] for t in types)


def _normalise(key: str) -> str:
    key = key.replace("\\", "/").strip()
    while key.startswith("./"):
        key = key[2:]
    return key


class _ImageIndex:
    """Finds the catalogue image a report's per-image key refers to.

    Tried in order, for each identity key of a record (``path``, then ``source``...):
    1. the key equals an image's ``source_path`` in the set;
    2. the key equals the ``source_path`` of a generated image's *source image*
       (reports of unpaired translation name each pair by its input);
    3. the key's file name, then its file name without extension, equals that of exactly
       one image (by its own path, then by its source image's path).
    Ambiguous names (two images with the same file name) never match by rule 3.
    """

    def __init__(self, images: Iterable[tuple[int, str, str | None]]) -> None:
        self.exact: dict[str, int] = {}
        self.by_source: dict[str, int] = {}
        self.loose: dict[str, int | None] = {}
        for image_id, path, source_path in images:
            self.exact[_normalise(path)] = image_id
            if source_path:
                self.by_source.setdefault(_normalise(source_path), image_id)
            for candidate in (path, source_path):
                if candidate:
                    for name in self._loose_names(candidate):
                        self.loose[name] = None if self.loose.get(name, image_id) != image_id else image_id

    @staticmethod
    def _loose_names(path: str) -> tuple[str, str]:
        pure = PurePosixPath(_normalise(path))
        return (f"name:{pure.name}", f"stem:{pure.stem}")

    def find(self, keys: Iterable[str]) -> int | None:
        keys = [_normalise(k) for k in keys]
        for key in keys:
            if key in self.exact:
                return self.exact[key]
            if key in self.by_source:
                return self.by_source[key]
        for key in keys:
            for name in self._loose_names(key):
                if self.loose.get(name) is not None:
                    return self.loose[name]
        return None


@transaction.atomic
def metric_report_store(
    *, image_set: ImageSet, report: dict, cost: dict | None = None, job_id: int | None = None
) -> MetricReport:
    """Store a ``ganlab`` evaluation report for ``image_set`` and map its per-image values
    onto the set's catalogue images (see :class:`_ImageIndex` for the matching rules and
    :mod:`ratingstudy.results.reports` for what is read).

    ``model_name`` is the set's ``model_name`` (its name when blank), or ``"real"`` for a
    real set. Idempotent per ``(image_set, job_id)``: a retried evaluation job replaces its
    earlier report and per-image rows instead of adding a second one. Keys that match no
    image are counted, with examples, in ``MetricReport.mapping``; a report whose per-image
    values match no image at all is an error (wrong set, or paths in an unknown layout).
    """
    if not isinstance(report, Mapping):
        raise ApplicationError(f"a metric report must be a JSON object, got {type(report).__name__}")
    clean_cost = _validate_cost(cost or {})
    model_name = "real" if image_set.kind == ImageSet.Kind.REAL else (image_set.model_name or image_set.name)
    safe_report = json_safe(report)

    index = _ImageIndex(
        Image.objects.filter(image_set=image_set).values_list("id", "source_path", "source_image__source_path")
    )
    values: dict[tuple[int, str], float] = {}
    records = matched = 0
    unmatched: list[str] = []
    for keys, metrics in report_per_image(safe_report, model_name):
        records += 1
        image_id = index.find(keys)
        if image_id is None:
            if len(unmatched) < UNMATCHED_EXAMPLES:
                unmatched.append(" | ".join(keys) or "<record without a path>")
            continue
        matched += 1
        for name, value in metrics.items():
            values[(image_id, name[:100])] = value
    if records and not matched:
        raise ApplicationError(
            f"none of the {records} per-image records of the report matches an image of {image_set.name} "
            f"(by source_path, source image path or file name); first keys: {', '.join(unmatched[:3])}"
        )

    fields = {
        "model_name": model_name[:100],
        "extractor": report_extractor(safe_report)[:100],
        "report": safe_report,
        "cost": clean_cost,
        "mapping": {"records": records, "matched": matched, "unmatched": records - matched, "unmatched_examples": unmatched},
    }
    existing = (
        MetricReport.objects.select_for_update().filter(image_set=image_set, job_id=job_id).first()
        if job_id is not None
        else None
    )
    if existing:
        for name, value in fields.items():
            setattr(existing, name, value)
        existing.save()
        existing.image_metrics.all().delete()
        stored = existing
    else:
        stored = MetricReport.objects.create(image_set=image_set, job_id=job_id, **fields)
    ImageMetric.objects.bulk_create(
        (ImageMetric(report=stored, image_id=image_id, name=name, value=value) for (image_id, name), value in values.items()),
        batch_size=1000,
    )
    return stored
