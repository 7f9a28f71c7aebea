"""Reads of the results app: a study's analysis, joined with metric reports, as tables.

``study_results`` is what the results page and its JSON endpoint show. Rows are
*groups*: one per generated model (``ImageSet.model_name``, or the set's name when
blank) and one for real images, ``"real"``, in the founding study's shape (average
quality and share judged real per model, real images as their own row) plus
intervals, error rates, agreement, automatic metrics and cost.

What is analysed (:class:`ResultFilters`):

* trials that are attention checks (corrupted or repeated images) are never analysed:
  they are not study data;
* practice trials are excluded unless ``include_practice``;
* raters excluded by the study's rule are left out unless ``include_failed_checks``; the
  rules and the reasons given are in :mod:`ratingstudy.results.checks`.

The other reads of the app: the tidy and aggregate exports in
:mod:`ratingstudy.results.export_selectors`, the reproducibility manifest in
:mod:`ratingstudy.results.manifest_selectors`. The page shows a stored
:class:`~ratingstudy.results.models.ResultsSnapshot` of ``study_results`` (written by
:func:`ratingstudy.results.services.results_snapshot_refresh`) with its freshness
(:func:`snapshot_freshness`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.db.models import Count, Max, Q, QuerySet

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.results import stats
from ratingstudy.results.analyses import protocol_sections
from ratingstudy.results.checks import (
    check_failures,
    exclusion_rule,
    rater_exclusions,
    study_response_rows,
)
from ratingstudy.results.models import ImageMetric, MetricReport, ResultsSnapshot
from ratingstudy.results.reports import metric_sort_key, report_aggregates
from ratingstudy.studies.models import Rater, Response, Study

REAL = "real"
#: Experience groups (years), as ``(label, lowest, highest)`` inclusive.
EXPERIENCE_GROUPS: tuple[tuple[str, int, int], ...] = (
    ("< 5 years", 0, 4),
    ("5-9 years", 5, 9),
    ("10-19 years", 10, 19),
    (">= 20 years", 20, 200),
)
NO_EXPERIENCE = "not given"


@dataclass(frozen=True)
class ResultFilters:
    """What the results include, and the interval widths the sample-size estimate aims at."""

    include_practice: bool = False
    include_failed_checks: bool = False
    mos_width: float = 0.5
    share_width: float = 0.1
    n_boot: int = 1000

    def as_dict(self) -> dict:
        return {
            "include_practice": self.include_practice,
            "include_failed_checks": self.include_failed_checks,
            "mos_width": self.mos_width,
            "share_width": self.share_width,
            "n_boot": self.n_boot,
        }


def group_name(*, kind: str, model_name: str, set_name: str) -> str:
    """The results row of an image: ``"real"`` or the model that generated it."""
    return REAL if kind == ImageSet.Kind.REAL else (model_name or set_name)


def rater_pseudonym(rater_id: int) -> str:
    """The name a rater has in results and exports: never the token or the staff note."""
    return f"R{rater_id:04d}"


def experience_group(years: int | None) -> str:
    if years is None:
        return NO_EXPERIENCE
    for label, low, high in EXPERIENCE_GROUPS:
        if low <= years <= high:
            return label
    return NO_EXPERIENCE


@dataclass
class _Responses:
    """Analysed responses as parallel arrays (one entry per response)."""

    rater: np.ndarray  # int
    image: np.ndarray  # int
    group: np.ndarray  # str (object)
    is_real: np.ndarray  # bool
    judged_real: np.ndarray  # float: 1 real, 0 fake, nan not asked
    quality: np.ndarray  # float: 1-5, nan not asked

    @classmethod
    def from_rows(cls, rows: Sequence[tuple]) -> _Responses:
        return cls(
            rater=np.array([r[0] for r in rows], dtype=np.int64),
            image=np.array([r[1] for r in rows], dtype=np.int64),
            group=np.array([r[2] for r in rows], dtype=object),
            is_real=np.array([r[2] == REAL for r in rows], dtype=bool),
            judged_real=np.array([np.nan if r[3] is None else float(r[3]) for r in rows], dtype=float),
            quality=np.array([np.nan if r[4] is None else float(r[4]) for r in rows], dtype=float),
        )

    def where(self, mask: np.ndarray) -> _Responses:
        return _Responses(self.rater[mask], self.image[mask], self.group[mask], self.is_real[mask], self.judged_real[mask], self.quality[mask])

    def __len__(self) -> int:
        return int(self.rater.size)


# ------------------------------------------------------------------ the study page


def _estimate_pair(values: np.ndarray, raters: np.ndarray, images: np.ndarray, *, seed: int, n_boot: int) -> dict:
    """Independent-ratings interval and two-way cluster bootstrap interval of a mean."""
    return {
        "t": stats.mean_t_interval(values=values),
        "bootstrap": stats.cluster_bootstrap_mean(values=values, raters=raters, images=images, seed=seed, n_boot=n_boot),
    }


def _seed(study: Study, *parts: str) -> int:
    digest = hashlib.sha256(f"{study.seed}:{':'.join(parts)}".encode()).digest()
    return int.from_bytes(digest[:4], "big")


def study_groups(*, study: Study) -> tuple[list[str], dict[str, list[ImageSet]]]:
    """Every group of the study (generated models by name, then real), with its sets."""
    sets: dict[str, list[ImageSet]] = defaultdict(list)
    for image_set in list(study.generated_image_sets.all()) + list(study.real_image_sets.all()):
        sets[group_name(kind=image_set.kind, model_name=image_set.model_name, set_name=image_set.name)].append(image_set)
    names = sorted(name for name in sets if name != REAL) + ([REAL] if REAL in sets else [])
    return names, sets


def latest_reports(*, sets: dict[str, list[ImageSet]]) -> dict[str, MetricReport]:
    """The newest metric report of each group's sets."""
    set_ids = {s.pk: name for name, group in sets.items() for s in group}
    latest: dict[str, MetricReport] = {}
    for report in MetricReport.objects.filter(image_set_id__in=set_ids).order_by("-created_at", "-id"):
        latest.setdefault(set_ids[report.image_set_id], report)
    return latest


def _distribution(quality: np.ndarray) -> list[int]:
    return [int(np.sum(quality == level)) for level in stats.QUALITY_LEVELS]


def _group_row(name: str, data: _Responses, *, study: Study, filters: ResultFilters, n_images: int) -> dict:
    has_q = ~np.isnan(data.quality)
    has_j = ~np.isnan(data.judged_real)
    quality = _estimate_pair(
        data.quality[has_q], data.rater[has_q], data.image[has_q], seed=_seed(study, name, "quality"), n_boot=filters.n_boot
    )
    judged = data.judged_real[has_j]
    share = {
        "wilson": stats.wilson_interval(successes=int(judged.sum()), trials=int(judged.size)),
        "bootstrap": stats.cluster_bootstrap_mean(
            values=judged, raters=data.rater[has_j], images=data.image[has_j], seed=_seed(study, name, "real"), n_boot=filters.n_boot
        ),
    }
    q_values = data.quality[has_q]
    sample_size = {
        "quality": stats.ratings_needed_for_mean(
            sd=float(q_values.std(ddof=1)) if q_values.size > 1 else None,
            current=int(q_values.size),
            width=filters.mos_width,
            design_effect=stats.design_effect(clustered=quality["bootstrap"], independent=quality["t"]),
        ).as_dict(),
        "judged_real": stats.ratings_needed_for_proportion(
            p=share["wilson"].value,
            current=int(judged.size),
            width=filters.share_width,
            design_effect=stats.design_effect(clustered=share["bootstrap"], independent=share["wilson"]),
        ).as_dict(),
    }
    return {
        "name": name,
        "is_real": name == REAL,
        "n_images": n_images,
        "n_images_rated": int(np.unique(data.image).size),
        "n_responses": len(data),
        "n_raters": int(np.unique(data.rater).size),
        "mos": quality["t"].as_dict(),
        "mos_bootstrap": quality["bootstrap"].as_dict(),
        "judged_real": share["wilson"].as_dict(),
        "judged_real_bootstrap": share["bootstrap"].as_dict(),
        "quality_distribution": _distribution(q_values),
        "sample_size": sample_size,
    }


def _hype(data: _Responses, group: str) -> dict:
    """Error rates of ``group``'s images against the study's real images."""
    has_j = ~np.isnan(data.judged_real)
    mask = has_j & ((data.group == group) | data.is_real)
    return stats.hype_error_rates(judged_real=data.judged_real[mask] == 1, is_real=data.is_real[mask]).as_dict()


def _agreement(data: _Responses, label: str) -> dict:
    raters, r_codes = np.unique(data.rater, return_inverse=True)
    images, i_codes = np.unique(data.image, return_inverse=True)
    quality = np.full((raters.size, images.size), np.nan)
    has_q = ~np.isnan(data.quality)
    quality[r_codes[has_q], i_codes[has_q]] = data.quality[has_q]
    has_j = ~np.isnan(data.judged_real)
    said_real = np.bincount(i_codes[has_j], weights=data.judged_real[has_j], minlength=images.size)
    answered = np.bincount(i_codes[has_j], minlength=images.size)
    return {
        "name": label,
        "fleiss_kappa": stats.fleiss_kappa(counts=np.column_stack([said_real, answered - said_real])).as_dict(),
        "krippendorff_alpha": stats.krippendorff_alpha_ordinal(ratings=quality).as_dict(),
        "icc": stats.intraclass_correlation(ratings=quality.T).as_dict(),
    }


def _pairwise_agreement(data: _Responses) -> dict:
    """Share of shared images on which two raters gave the same real/fake answer
    (quality within one point when the study does not ask real/fake), for every pair.

    With one-hot answer matrices ``A_c`` (raters x images, 1 where the rater answered
    ``c``), the count of shared images answered ``c`` by one rater and ``d`` by the other
    is ``A_c A_d^T``; agreeing pairs of answers are summed over the agreeing ``(c, d)``.
    """
    use_judged = bool(np.any(~np.isnan(data.judged_real)))
    values = data.judged_real if use_judged else data.quality
    keep = ~np.isnan(values)
    raters = np.unique(data.rater)
    images, i_codes = np.unique(data.image[keep], return_inverse=True)
    r_codes = np.searchsorted(raters, data.rater[keep])
    levels = (0.0, 1.0) if use_judged else tuple(float(q) for q in stats.QUALITY_LEVELS)
    one_hot = {}
    for level in levels:
        matrix = np.zeros((raters.size, images.size))
        hit = values[keep] == level
        matrix[r_codes[hit], i_codes[hit]] = 1.0
        one_hot[level] = matrix
    answered = sum(one_hot.values())
    shared = answered @ answered.T if raters.size else np.zeros((0, 0))
    agree = np.zeros_like(shared)
    for c in levels:
        for d in levels:
            if c == d or (not use_judged and abs(c - d) <= 1):
                agree += one_hot[c] @ one_hot[d].T
    cells = [[float(agree[a, b] / shared[a, b]) if shared[a, b] else None for b in range(raters.size)] for a in range(raters.size)]
    return {
        "raters": [rater_pseudonym(int(r)) for r in raters],
        "matrix": cells,
        "shared": shared.astype(int).tolist(),
        "measure": "same real/fake answer" if use_judged else "quality within one point",
    }


def _rater_rows(
    data: _Responses,
    raters: dict[int, Rater],
    checks: dict[int, dict[str, Any]],
    excluded: set[int],
    exclusions: dict[int, str],
) -> list[dict]:
    rows = []
    for rater_id, rater in raters.items():
        mine = data.where(data.rater == rater_id)
        has_j = ~np.isnan(mine.judged_real)
        detection = stats.detection_rates(judged_real=mine.judged_real[has_j] == 1, is_real=mine.is_real[has_j])
        q = mine.quality[~np.isnan(mine.quality)]
        outcome = checks.get(rater_id, {"passed": 0, "failed": 0, "failures": []})
        rows.append(
            {
                "rater": rater_pseudonym(rater_id),
                "role": rater.get_role_display() if rater.role else "",
                "years_experience": rater.years_experience,
                "experience_group": experience_group(rater.years_experience),
                "specialty": rater.specialty,
                "n_responses": len(mine),
                "mean_quality": stats.mean_t_interval(values=q).as_dict(),
                "judged_real": stats.wilson_interval(successes=int(mine.judged_real[has_j].sum()), trials=int(has_j.sum())).as_dict(),
                "detection": detection.as_dict(),
                "checks_passed": outcome["passed"],
                "checks_failed": outcome["failed"],
                "excluded": rater_id in excluded,
                "exclusion_reason": exclusions.get(rater_id, ""),
                "check_failures": outcome["failures"],
            }
        )
    return rows


def _by_rater_group(data: _Responses, raters: dict[int, Rater], groups: list[str], key) -> list[dict]:
    """MOS and share judged real per (rater group, model), rater groups by ``key(rater)``."""
    members: dict[str, list[int]] = defaultdict(list)
    for rater_id, rater in raters.items():
        members[key(rater)].append(rater_id)
    table = []
    for label, ids in sorted(members.items()):
        mine = data.where(np.isin(data.rater, ids))
        cells = []
        for group in groups:
            cell = mine.where(mine.group == group)
            has_j = ~np.isnan(cell.judged_real)
            cells.append({
                "model": group,
                "mos": stats.mean_t_interval(values=cell.quality[~np.isnan(cell.quality)]).as_dict(),
                "judged_real": stats.wilson_interval(successes=int(cell.judged_real[has_j].sum()), trials=int(has_j.sum())).as_dict(),
            })
        table.append({"group": label, "n_raters": int(np.unique(mine.rater).size), "cells": cells})
    return table


def _per_image_scores(data: _Responses) -> dict[int, dict[str, float | int | None]]:
    """Mean quality and share judged real of each rated image (``None`` where not asked)."""
    images, codes = np.unique(data.image, return_inverse=True)
    n = np.bincount(codes, minlength=images.size)

    def means(values: np.ndarray) -> np.ndarray:
        keep = ~np.isnan(values)
        count = np.bincount(codes[keep], minlength=images.size)
        total = np.bincount(codes[keep], weights=values[keep], minlength=images.size)
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(count > 0, total / np.maximum(count, 1), np.nan)

    quality, judged = means(data.quality), means(data.judged_real)
    return {
        int(image): {
            "quality": None if np.isnan(quality[k]) else float(quality[k]),
            "judged_real": None if np.isnan(judged[k]) else float(judged[k]),
            "n": int(n[k]),
        }
        for k, image in enumerate(images)
    }


def image_metric_values(*, reports: Iterable[MetricReport]) -> dict[str, dict[int, float]]:
    """``{metric name: {image id: value}}`` of the given reports."""
    values: dict[str, dict[int, float]] = defaultdict(dict)
    for image_id, name, value in ImageMetric.objects.filter(report__in=list(reports)).values_list("image_id", "name", "value"):
        values[name][image_id] = value
    return dict(values)


def _spearman_table(scores: dict[int, dict], metrics: dict[str, dict[int, float]], image_group: dict[int, str]) -> tuple[list[dict], dict]:
    table, scatter = [], {}
    for name in sorted(metrics, key=metric_sort_key):
        ids = sorted(metrics[name])
        x = [metrics[name][i] for i in ids]
        for human in ("quality", "judged_real"):
            y = [scores.get(i, {}).get(human) for i in ids]
            table.append({"metric": name, "human": human, **stats.spearman_correlation(x=x, y=y).as_dict()})
        rated = [i for i in ids if scores.get(i, {}).get("quality") is not None or scores.get(i, {}).get("judged_real") is not None]
        scatter[name] = {
            "image": rated,
            "x": [metrics[name][i] for i in rated],
            "quality": [scores[i]["quality"] for i in rated],
            "judged_real": [scores[i]["judged_real"] for i in rated],
            "group": [image_group.get(i, "") for i in rated],
        }
    return table, scatter


def study_results(*, study: Study, filters: ResultFilters | None = None) -> dict:
    """Everything the results page shows, as JSON-ready data (no NaN: ``None`` + reason)."""
    filters = filters or ResultFilters()
    rows = study_response_rows(study=study)
    groups, sets = study_groups(study=study)
    raters = {r.pk: r for r in Rater.objects.filter(study=study, is_audit=False).order_by("pk")}
    checks = check_failures(rows=rows)
    failed = {rater for rater, outcome in checks.items() if outcome["failed"]}
    exclusions = rater_exclusions(study=study, checks=checks)
    excluded = set() if filters.include_failed_checks else set(exclusions)

    # Every rater's analysed answers (the rater table shows excluded raters too), then the analysis set.
    every_rater = _Responses.from_rows(
        [
            (r[1], r[7], group_name(kind=r[8], model_name=r[9], set_name=r[10]), r[11], r[12])
            for r in rows
            if not r[5] and not r[13] and (filters.include_practice or not r[4])
        ]
    )
    data = every_rater.where(~np.isin(every_rater.rater, list(excluded)))
    image_counts = dict(
        Image.objects.filter(image_set__in=[s for group in sets.values() for s in group])
        .values("image_set_id")
        .annotate(n=Count("id"))
        .values_list("image_set_id", "n")
    )
    group_sizes = {name: sum(image_counts.get(s.pk, 0) for s in sets[name]) for name in groups}
    reports = latest_reports(sets=sets)

    model_rows = []
    for name in groups:
        row = _group_row(name, data.where(data.group == name), study=study, filters=filters, n_images=group_sizes[name])
        row["hype"] = _hype(data, name)
        report = reports.get(name)
        row["metrics"] = report_aggregates(report.report, report.model_name) if report else {}
        row["extractor"] = report.extractor if report else ""
        row["cost"] = report.cost if report else {}
        row["report_id"] = report.pk if report else None
        model_rows.append(row)
    metric_columns = sorted({m for row in model_rows for m in row["metrics"]}, key=metric_sort_key)
    for row in model_rows:
        row["metric_values"] = [row["metrics"].get(m) for m in metric_columns]

    per_image = _per_image_scores(data)
    image_group = {int(i): str(g) for i, g in zip(data.image, data.group, strict=True)}
    image_metrics = image_metric_values(reports=reports.values())
    spearman, scatter = _spearman_table(per_image, image_metrics, image_group)

    per_image_quality = {
        name: [s["quality"] for i, s in per_image.items() if image_group.get(i) == name and s["quality"] is not None]
        for name in groups
    }
    judged_counts = {
        name: (int(np.nansum(data.judged_real[data.group == name])), int(np.sum(~np.isnan(data.judged_real[data.group == name]))))
        for name in groups
    }
    return {
        "study": {"id": study.pk, "name": study.name, "task": study.task, "is_open": study.is_open},
        "filters": filters.as_dict(),
        "counts": {
            "responses": len(rows),
            "analysed": len(data),
            "practice": sum(1 for r in rows if r[4]),
            "attention_checks": sum(1 for r in rows if r[5]),
            "qualification": sum(1 for r in rows if r[13]),
            "raters": len(raters),
            "raters_answered": int(np.unique([r[1] for r in rows]).size) if rows else 0,
            "raters_failed_checks": len(failed),
            "raters_excluded": len(excluded),
            "images": sum(group_sizes.values()),
            "images_rated": int(np.unique(data.image).size),
            "images_unrated": sum(group_sizes.values()) - int(np.unique(data.image).size),
            "last_response_id": max((r[0] for r in rows), default=None),
        },
        "models": model_rows,
        "metric_columns": metric_columns,
        "comparisons": {
            "quality": [c.as_dict() for c in stats.compare_scores(groups=per_image_quality, outcome="quality")],
            "judged_real": [c.as_dict() for c in stats.compare_proportions(groups=judged_counts, outcome="judged_real")],
        },
        "agreement": [_agreement(data, "all images")] + [_agreement(data.where(data.group == name), name) for name in groups],
        "pairwise": _pairwise_agreement(data),
        "raters": _rater_rows(every_rater, raters, checks, excluded, exclusions),
        "exclusion_rule": exclusion_rule(study),
        "by_experience": _by_rater_group(data, raters, groups, lambda r: experience_group(r.years_experience)),
        "by_role": _by_rater_group(data, raters, groups, lambda r: r.get_role_display() if r.role else NO_EXPERIENCE),
        "spearman": spearman,
        "scatter": scatter,
        "protocol": protocol_sections(study=study, excluded=excluded, include_practice=filters.include_practice),
    }


def study_results_version(*, study: Study) -> tuple:
    """Changes whenever anything the results show changes: a response, a metric report, a
    rater (profile, screening, withdrawal), or the study's analysis settings."""
    responses = Response.objects.filter(trial__session__study=study).aggregate(n=Count("id"), last=Max("id"))
    set_ids = list(study.real_image_sets.values_list("id", flat=True)) + list(study.generated_image_sets.values_list("id", flat=True))
    reports = MetricReport.objects.filter(image_set_id__in=set_ids).aggregate(n=Count("id"), last=Max("updated_at"))
    raters = Rater.objects.filter(study=study).aggregate(
        n=Count("id"),
        profiles=Count("id", filter=Q(profile_completed_at__isnull=False)),
        screened_out=Count("id", filter=~Q(screened_out="")),
        withdrawn=Count("id", filter=Q(withdrawn_at__isnull=False)),
    )
    return (
        responses["n"], responses["last"], reports["n"], reports["last"],
        raters["n"], raters["profiles"], raters["screened_out"], raters["withdrawn"],
        # what the analysis reads from the study row itself
        study.design_version, study.task, study.exclude_after_failed_checks, study.exclude_failed_share, study.is_open,
    )  # fmt: skip


@dataclass(frozen=True)
class DataVersion:
    """What results are computed from: ``key`` changes whenever anything they show changes."""

    key: str
    responses: int


def study_data_version(*, study: Study) -> DataVersion:
    """:func:`study_results_version` as a short key, with the number of responses (4 queries)."""
    parts = study_results_version(study=study)
    return DataVersion(key=hashlib.sha256(repr(parts).encode()).hexdigest()[:16], responses=parts[0])


#: A refresh still waiting after this long (it normally starts after a few seconds) is explained on the page.
REFRESH_OVERDUE_SECONDS = 30


def snapshot_freshness(
    *, snapshot: ResultsSnapshot, version: DataVersion, now: dt.datetime, waiting_seconds: float | None = None
) -> dict:
    """How fresh a stored snapshot is against the data now, in numbers and in words, e.g.
    "computed 12 s ago from 19,950 responses; 50 newer responses, recomputing…".
    ``waiting_seconds``: how long the pending refresh has waited for a worker; when that is
    overdue, the words say so (no ``cpu`` worker running, or all of them busy)."""
    age = max(0.0, (now - snapshot.computed_at).total_seconds())
    stale = snapshot.data_version != version.key
    newer = version.responses - snapshot.responses
    text = f"computed {_duration(age)} ago from {snapshot.responses:,} responses"
    if stale:
        if newer > 0:
            text += f"; {newer:,} newer response{'s' if newer != 1 else ''}, recomputing…"
        elif newer < 0:
            text += f"; {-newer:,} response{'s' if newer != -1 else ''} withdrawn since, recomputing…"
        else:
            text += "; raters, metric reports or the analysis settings changed since, recomputing…"
        if waiting_seconds is not None and waiting_seconds > REFRESH_OVERDUE_SECONDS:
            text += (
                f" (asked {_duration(waiting_seconds)} ago and not started: no worker serves the cpu queue, "
                "or all are busy; Admin → Workers lists them)"
            )
    else:
        text += "; up to date"
    return {
        "computed_at": snapshot.computed_at.isoformat(),
        "age_seconds": round(age, 1),
        "compute_seconds": round(snapshot.compute_seconds, 3),
        "responses": snapshot.responses,
        "responses_now": version.responses,
        "newer_responses": newer,
        "stale": stale,
        "refresh_waiting_seconds": None if waiting_seconds is None else round(waiting_seconds, 1),
        "text": text,
    }


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 48 * 3600:
        return f"{seconds / 3600:.0f} h"
    return f"{seconds / 86400:.0f} days"


def study_list() -> QuerySet[Study]:
    """Studies with their response and rater counts, newest first."""
    return Study.objects.annotate(
        n_raters=Count("raters", distinct=True), n_responses=Count("sessions__trials__response", distinct=True)
    ).order_by("-created_at")


def study_group_mean_image(*, study: Study, group: str, limit: int = 200) -> np.ndarray | None:
    """The pixel mean of up to ``limit`` of a group's served renders (what raters saw), or None."""
    from django.core.cache import cache
    from django.core.files.storage import default_storage

    from ratingstudy.studies.models import Render
    from ratingstudy.studies.rendering import decode_served

    _, sets = study_groups(study=study)
    names = list(
        Render.objects.filter(presentation=study.presentation.key, image__image_set__in=sets.get(group, []))
        .order_by("image_id")
        .values_list("name", flat=True)[:limit]
    )
    if not names:
        return None
    # Decoding up to `limit` renders is the costly part of a heatmap request: keep the mean per set of renders.
    key = "mean-image:" + hashlib.sha256("\n".join(names).encode()).hexdigest()
    cached = cache.get(key)
    if cached is not None:
        return cached
    total = None
    for name in names:
        with default_storage.open(name, "rb") as fh:
            pixels = decode_served(fh.read()).astype(np.float64)
        total = pixels if total is None else total + pixels
    mean = np.clip(np.rint(total / len(names)), 0, 255).astype(np.uint8)
    cache.set(key, mean, 3600)
    return mean

