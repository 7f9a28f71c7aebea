"""Reads for the results exports: tidy responses, per-image aggregates, per-model summary, marks.

Every export streams: rows come from ``QuerySet.iterator(chunk_size=...)`` (or an in-memory
table of at most one row per image or model) and are written by
:mod:`ratingstudy.results.exports`. Rater-level rows name raters only by their pseudonym, and
the rater's free text goes through :func:`spreadsheet_safe`.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import numpy as np
from django.db.models import QuerySet

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.results import stats
from ratingstudy.results.checks import (
    check_failures,
    rater_exclusions,
    study_check_outcomes,
    study_response_rows,
)
from ratingstudy.results.reports import metric_sort_key
from ratingstudy.results.selectors import (
    REAL,
    ResultFilters,
    group_name,
    image_metric_values,
    latest_reports,
    rater_pseudonym,
    study_groups,
)
from ratingstudy.studies.models import Response, Study

#: Tidy response columns: name -> pandas dtype (what ``pandas.read_csv(dtype=...)`` should use).
RESPONSE_COLUMNS: dict[str, str] = {
    "study_id": "int64",
    "design_version": "int64",
    "rater_id": "string",
    "rater_role": "string",
    "rater_years_experience": "Int64",
    "rater_specialty": "string",
    "rater_failed_checks": "boolean",
    "rater_excluded": "boolean",
    "exclusion_reason": "string",
    "task": "string",
    "session_id": "int64",
    "trial_index": "int64",
    "image_id": "int64",
    "image_kind": "string",
    "model": "string",
    "image_set": "string",
    "label": "string",
    "is_practice": "boolean",
    "is_qualification": "boolean",
    "attention_check": "string",
    "repeat_of_index": "Int64",
    "variant": "string",
    "exposure_ms": "Int64",
    "staircase_level": "Int64",
    "pair_image_id": "Int64",
    "real_side": "string",
    "judged_real": "boolean",
    "quality": "Int64",
    "confidence": "Int64",
    "choice": "string",
    "chose_real": "boolean",
    "diagnosis": "string",
    "subtype": "string",
    "marks": "string",
    "client_ms": "Int64",
    "server_ms": "int64",
    "onscreen_ms": "Int64",
    "paint_ms": "Int64",
    "zoom_max": "float64",
    "zoomed_ms": "Int64",
    "shown_at": "datetime",
    "answered_at": "datetime",
}

_EXPORT_FIELDS = (
    "trial__session__rater_id",
    "trial__session__rater__role",
    "trial__session__rater__years_experience",
    "trial__session__rater__specialty",
    "trial__session_id",
    "trial__index",
    "trial__image_id",
    "trial__image__image_set__kind",
    "trial__image__image_set__model_name",
    "trial__image__image_set__name",
    "trial__image__label",
    "trial__is_practice",
    "trial__is_qualification",
    "trial__attention_check",
    "trial__repeat_of__index",
    "trial__variant",
    "trial__exposure_ms",
    "trial__staircase_level",
    "trial__pair_image_id",
    "trial__real_side",
    "judged_real",
    "quality",
    "confidence",
    "choice",
    "diagnosis",
    "subtype",
    "marks",
    "client_ms",
    "server_ms",
    "onscreen_ms",
    "paint_ms",
    "zoom_max",
    "zoomed_ms",
    "trial__shown_at",
    "created_at",
)


def response_export_queryset(*, study: Study) -> QuerySet:
    """The rows of the tidy export, as ``values_list`` tuples in session and trial order."""
    return (
        Response.objects.filter(trial__session__study=study)
        .order_by("trial__session_id", "trial__index")
        .values_list(*_EXPORT_FIELDS)
    )



#: First characters that make a spreadsheet evaluate a cell as a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(text: str) -> str:
    """``text`` with a leading ``'`` when a spreadsheet would run it as a formula; used on
    free text typed by raters (their specialty), never on numbers."""
    return "'" + text if text.startswith(FORMULA_START) else text


def response_export_rows(*, study: Study, chunk_size: int = 5000) -> Iterator[tuple]:
    """Tidy rows in :data:`RESPONSE_COLUMNS` order, streamed from the database in chunks
    of ``chunk_size`` (constant memory: nothing is collected). The rater's specialty,
    free text, goes through :func:`spreadsheet_safe`."""
    failed, exclusions = study_check_outcomes(study=study)
    study_id, version, task, exposure = study.pk, study.design_version, study.task, study.exposure_ms
    for (
        rater_id, role, years, specialty, session_id, index, image_id, kind, model_name, set_name,
        label, is_practice, is_qualification, check, repeat_index, variant, trial_exposure, level, pair_id, real_side,
        judged_real, quality, confidence, choice, diagnosis, subtype, marks, client_ms, server_ms,
        onscreen_ms, paint_ms, zoom_max, zoomed_ms, shown_at, answered_at,
    ) in response_export_queryset(study=study).iterator(chunk_size=chunk_size):  # fmt: skip
        yield (
            study_id, version, rater_pseudonym(rater_id), role, years, spreadsheet_safe(specialty), rater_id in failed,
            rater_id in exclusions, exclusions.get(rater_id, ""), task, session_id, index,
            image_id, kind, REAL if kind == ImageSet.Kind.REAL else (model_name or set_name), set_name, label,
            is_practice, is_qualification, check, repeat_index, variant, trial_exposure or exposure, level, pair_id,
            real_side, judged_real, quality, confidence, choice, (choice == real_side) if choice else None, diagnosis,
            subtype, json.dumps(marks) if marks else "", client_ms, server_ms,
            onscreen_ms, paint_ms, zoom_max, zoomed_ms, shown_at, answered_at,
        )  # fmt: skip


def image_aggregate_rows(*, study: Study, filters: ResultFilters | None = None) -> tuple[list[str], Iterator[tuple]]:
    """Per-image aggregates (analysed responses, see :class:`ResultFilters`) of every
    image in the study's sets, rated or not, with the image's automatic metrics."""
    filters = filters or ResultFilters()
    rows = study_response_rows(study=study)
    checks = check_failures(rows=rows)
    excluded = set() if filters.include_failed_checks else set(rater_exclusions(study=study, checks=checks))
    sums: dict[int, list[float]] = defaultdict(lambda: [0, 0.0, 0.0, 0, 0.0])  # n, sum q, sum q^2, n judged, n real
    raters_of: dict[int, set[int]] = defaultdict(set)
    for r in rows:
        if r[5] or r[13] or (r[4] and not filters.include_practice) or r[1] in excluded:
            continue
        acc = sums[r[7]]
        raters_of[r[7]].add(r[1])
        if r[12] is not None:
            acc[0] += 1
            acc[1] += r[12]
            acc[2] += r[12] * r[12]
        if r[11] is not None:
            acc[3] += 1
            acc[4] += bool(r[11])
    _, sets = study_groups(study=study)
    reports = latest_reports(sets=sets)
    metrics = image_metric_values(reports=reports.values())
    metric_names = sorted(metrics, key=metric_sort_key)
    header = [
        "image_id", "image_set", "image_kind", "model", "label", "source_path", "source_image_id",
        "n_raters", "n_quality", "mean_quality", "sd_quality", "n_judged", "share_judged_real",
    ] + [f"metric:{name}" for name in metric_names]  # fmt: skip

    def generate() -> Iterator[tuple]:
        images = (
            Image.objects.filter(image_set__in=[s for group in sets.values() for s in group])
            .order_by("image_set__name", "source_path")
            .values_list("id", "image_set__name", "image_set__kind", "image_set__model_name", "label", "source_path", "source_image_id")
        )
        for image_id, set_name, kind, model_name, label, source_path, source_id in images.iterator(chunk_size=2000):
            n_q, s_q, ss_q, n_j, n_real = sums.get(image_id, (0, 0.0, 0.0, 0, 0))
            mean = s_q / n_q if n_q else None
            sd = float(np.sqrt(max(ss_q - n_q * mean * mean, 0.0) / (n_q - 1))) if n_q > 1 else None
            yield (
                image_id, set_name, kind, group_name(kind=kind, model_name=model_name, set_name=set_name), label,
                source_path, source_id, len(raters_of.get(image_id, ())), n_q, mean, sd, n_j,
                n_real / n_j if n_j else None,
            ) + tuple(metrics[name].get(image_id) for name in metric_names)  # fmt: skip

    return header, generate()


def model_summary_rows(*, results: dict) -> tuple[list[str], list[tuple]]:
    """One flat row per model (and real images) from :func:`study_results` output."""
    estimate_columns = (
        ("mos", "mos"), ("mos_bootstrap", "mos_boot"), ("judged_real", "judged_real"), ("judged_real_bootstrap", "judged_real_boot"),
    )  # fmt: skip
    hype_columns = ("fake_error", "real_error", "overall")
    cost_columns = ("parameters", "train_seconds", "images_per_s", "peak_gpu_mem_bytes", "device")
    header = ["model", "is_real", "n_images", "n_images_rated", "n_raters", "n_responses"]
    for _, prefix in estimate_columns:
        header += [prefix, f"{prefix}_low", f"{prefix}_high"]
    header += [f"hype_{c}" for c in hype_columns] + [f"quality_{level}" for level in stats.QUALITY_LEVELS]
    header += [f"metric:{m}" for m in results["metric_columns"]] + ["extractor"] + [f"cost_{c}" for c in cost_columns]
    table = []
    for row in results["models"]:
        values: list[Any] = [row["name"], row["is_real"], row["n_images"], row["n_images_rated"], row["n_raters"], row["n_responses"]]
        for key, _ in estimate_columns:
            values += [row[key]["value"], row[key]["low"], row[key]["high"]]
        values += [row["hype"][c]["value"] for c in hype_columns] + list(row["quality_distribution"])
        values += [row["metrics"].get(m) for m in results["metric_columns"]] + [row["extractor"]]
        values += [row["cost"].get(c) for c in cost_columns]
        table.append(tuple(values))
    return header, table



def marks_export_rows(*, study: Study) -> Iterator[tuple]:
    """Every mark of the study, one row each (attention checks and qualification included, flagged)."""
    rows = (
        Response.objects.filter(trial__session__study=study)
        .exclude(marks=[])
        .order_by("trial__session_id", "trial__index")
        .values_list(
            "trial__session__rater_id", "trial__index", "trial__image_id", "trial__image__image_set__kind",
            "trial__image__image_set__model_name", "trial__image__image_set__name", "trial__is_practice",
            "trial__attention_check", "marks",
        )
    )  # fmt: skip
    for rater, index, image, kind, model, set_name, practice, check, marks in rows.iterator(chunk_size=2000):
        group = group_name(kind=kind, model_name=model, set_name=set_name)
        for number, mark in enumerate(marks):
            yield (
                rater_pseudonym(rater), index, image, group, practice, check, number, mark["type"], mark["x"], mark["y"],
                mark.get("w"), mark.get("h"),
            )  # fmt: skip


MARK_COLUMNS = [
    "rater_id", "trial_index", "image_id", "model", "is_practice", "attention_check", "mark", "type", "x", "y", "w", "h",
]  # fmt: skip
