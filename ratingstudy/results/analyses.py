"""Each protocol's own analysis on the results page: one function per task, registered by task name.

A function takes the study and its analysed answers (:class:`ProtocolData`: the same inclusion
rules as the rest of the page) and returns *sections*: a title, a note on the method, a table and,
where it helps, a plotly chart (traces + layout, drawn by ``results/study.js``) or images. The
statistics themselves live in :mod:`ratingstudy.results.protocols`, each checked against
scipy/statsmodels/scikit-learn in its tests. A study that asks a real/generated judgment with
confidence also gets its ROC section, whatever the task.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np
from django.urls import reverse

from ratingstudy.results import protocols
from ratingstudy.studies.models import Response, Study

REAL = "real"


@dataclass(frozen=True)
class Answer:
    """One analysed answer with what the protocols need."""

    rater: int
    trial: int
    index: int
    image: int
    group: str  # "real" or the model
    label: str
    judged_real: bool | None
    confidence: int | None
    choice: str
    real_side: str
    diagnosis: str
    marks: list
    exposure_ms: int | None
    pair_image: int | None


def protocol_answers(*, study: Study, excluded: Iterable[int], include_practice: bool) -> list[Answer]:
    """The analysed answers of ``study``: no attention check or qualification trial, no excluded rater,
    practice only when asked for (as the rest of the results page)."""
    rows = (
        Response.objects.filter(trial__session__study=study, trial__attention_check="", trial__is_qualification=False)
        .exclude(trial__session__rater_id__in=list(excluded))
        .order_by("trial__session_id", "trial__index")
        .values_list(
            "trial__session__rater_id", "trial_id", "trial__index", "trial__image_id", "trial__image__image_set__kind",
            "trial__image__image_set__model_name", "trial__image__image_set__name", "trial__image__label",
            "judged_real", "confidence", "choice", "trial__real_side", "diagnosis", "marks", "trial__exposure_ms",
            "trial__pair_image_id", "trial__is_practice",
        )
    )  # fmt: skip
    answers = []
    for (rater, trial, index, image, kind, model, set_name, label, judged, confidence, choice, side, diagnosis,
         marks, exposure, pair, practice) in rows:  # fmt: skip
        if practice and not include_practice:
            continue
        group = REAL if kind == "real" else (model or set_name)
        answers.append(
            Answer(rater, trial, index, image, group, label, judged, confidence, choice, side, diagnosis, marks or [],
                   exposure, pair)  # fmt: skip
        )
    return answers


def _seed(study: Study, name: str) -> int:
    return int.from_bytes(hashlib.sha256(f"{study.seed}:{name}".encode()).digest()[:4], "big")


def _estimate(estimate: dict, *, scale: float = 100, unit: str = "%", signed: bool = False) -> str:
    """``value (low–high)`` for the tables; the interval only where there is one."""
    value = estimate.get("value")
    if value is None:
        return "—"
    sign = "+" if signed else ""
    text = f"{scale * value:{sign}.1f}{unit}"
    if estimate.get("low") is not None and estimate.get("high") is not None:
        text += f" ({scale * estimate['low']:{sign}.1f} to {scale * estimate['high']:{sign}.1f})"
    elif estimate.get("reason"):
        text += f" (no interval: {estimate['reason']})"
    return text


def _pct(estimate: dict) -> str:
    return _estimate(estimate)


def _p(value: float | None) -> str:
    return "—" if value is None else (f"{value:.3g}" if value >= 1e-4 else "< 0.0001")


def _bars(names: list[str], estimates: list[dict], *, scale: float = 100, name: str = "") -> dict:
    ok = [(n, e) for n, e in zip(names, estimates, strict=True) if e.get("value") is not None]
    return {
        "type": "bar",
        "name": name,
        "x": [n for n, _ in ok],
        "y": [scale * e["value"] for _, e in ok],
        "error_y": {
            "type": "data",
            "symmetric": False,
            "array": [scale * (e["high"] - e["value"]) for _, e in ok],
            "arrayminus": [scale * (e["value"] - e["low"]) for _, e in ok],
        },
    }


# ------------------------------------------------------------------------------ 2AFC


def paired_analysis(study: Study, answers: list[Answer]) -> list[dict]:
    by_model: dict[str, list[Answer]] = defaultdict(list)
    for answer in answers:
        if answer.choice:
            by_model[answer.group].append(answer)
    rows, estimates, names = [], [], []
    for model, mine in sorted(by_model.items()):
        result = protocols.fooling_rate(
            chose_generated=np.array([a.choice != a.real_side for a in mine]),
            raters=np.array([a.rater for a in mine]),
            images=np.array([a.image for a in mine]),
            seed=_seed(study, f"2afc:{model}"),
        )
        rows.append([model, result["n"], result["fooled"], _pct(result["rate"]), _pct(result["bootstrap"]),
                     _p(result["binomial_p"])])  # fmt: skip
        names.append(model)
        estimates.append(result["bootstrap"])
    chart = {
        "id": "chart-2afc",
        "traces": [_bars(names, estimates, name="fooling rate")],
        "layout": {
            "title": {"text": "Fooling rate per model (2AFC), 95% cluster bootstrap"},
            "yaxis": {"title": {"text": "% chosen as real"}, "range": [0, 100]},
            "shapes": [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": 50, "y1": 50, "line": {"dash": "dot"}}],
            "margin": {"t": 40},
        },
    }
    return [
        {
            "title": "Paired real vs generated (2AFC)",
            "note": "Share of pairs in which the rater chose the generated image as the real one: 50% means the "
            "two cannot be told apart (Zhu et al. 2017). Wilson interval, a two-way cluster bootstrap over raters "
            "and images, and an exact binomial test against 50%.",
            "table": {
                "columns": ["model", "pairs", "fooled", "fooling rate (Wilson)", "fooling rate (bootstrap)", "binomial p vs 50%"],
                "rows": rows,
            },
            "chart": chart,
        }
    ]


# ------------------------------------------------------------------------- diagnosis


def diagnosis_analysis(study: Study, answers: list[Answer]) -> list[dict]:
    diagnosed = [a for a in answers if a.diagnosis]
    groups = sorted({a.group for a in diagnosed}, key=lambda g: (g != REAL, g))
    rows, accuracy = [], {}
    for group in groups:
        mine = [a for a in diagnosed if a.group == group]
        result = protocols.diagnostic_accuracy(
            truth=np.array([a.label for a in mine]), answer=np.array([a.diagnosis for a in mine])
        )
        accuracy[group] = result
        kappa = result["kappa"]
        rows.append([
            "real images" if group == REAL else group, result["n"], _pct(result["accuracy"]), _pct(result["sensitivity"]),
            _pct(result["specificity"]), "—" if kappa.get("value") is None else f"{kappa['value']:.2f}",
        ])  # fmt: skip
    noninferior = []
    for group in groups:
        if group == REAL:
            continue
        per_rater: dict[int, dict[str, list[bool]]] = defaultdict(lambda: {"real": [], "gen": []})
        for a in diagnosed:
            if a.group in (REAL, group):
                per_rater[a.rater]["real" if a.group == REAL else "gen"].append(a.diagnosis == a.label)
        both = [v for v in per_rater.values() if v["real"] and v["gen"]]
        result = protocols.noninferiority(
            real_accuracy=np.array([np.mean(v["real"]) for v in both]),
            generated_accuracy=np.array([np.mean(v["gen"]) for v in both]),
            margin=study.noninferiority_margin,
        )
        diff = result["difference"]
        noninferior.append([
            group, result["n_readers"],
            _estimate(diff, unit=" pts", signed=True),
            _p(result["p_value"]), {True: "yes", False: "no", None: "—"}[result["non_inferior"]],
        ])  # fmt: skip
    names = ["real images" if g == REAL else g for g in groups]
    chart = {
        "id": "chart-diagnosis",
        "traces": [
            _bars(names, [accuracy[g][key] for g in groups], name=key)
            for key in ("accuracy", "sensitivity", "specificity")
        ],
        "layout": {
            "title": {"text": "Reader diagnosis per image group, 95% Wilson intervals"},
            "barmode": "group",
            "yaxis": {"title": {"text": "%"}, "range": [0, 100]},
            "margin": {"t": 40},
        },
    }
    return [
        {
            "title": "Diagnostic reading",
            "note": "Readers classified each image as benign or malignant without knowing whether it was real; "
            "a generated image's truth is the class the generator was asked to produce, so its accuracy is the "
            "readers' agreement with that class (Cohen's kappa beside it). Sensitivity counts malignant as positive.",
            "table": {
                "columns": ["images", "answers", "accuracy", "sensitivity", "specificity", "Cohen's kappa"],
                "rows": rows,
            },
            "chart": chart,
        },
        {
            "title": f"Non-inferiority of generated images (margin {100 * study.noninferiority_margin:.0f} points)",
            "note": "Paired by reader: each reader's accuracy on the model's images minus on real images; one-sided "
            "paired t-test of H0: difference <= -margin. Generated images count as diagnostically faithful when "
            "the lower end of the 90% interval lies above -margin.",
            "table": {
                "columns": ["model", "readers", "accuracy difference (90% CI)", "p (H0: worse by the margin)", "non-inferior"],
                "rows": noninferior,
            },
        },
    ]


# ---------------------------------------------------------------------------- marks


def marks_by_group(answers: list[Answer]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Points and boxes marked on images judged generated, per image group."""
    points: dict[str, list] = defaultdict(list)
    boxes: dict[str, list] = defaultdict(list)
    for answer in answers:
        for mark in answer.marks:
            if mark.get("type") == "point":
                points[answer.group].append((mark["x"], mark["y"]))
            elif mark.get("type") == "box":
                boxes[answer.group].append((mark["x"], mark["y"], mark["w"], mark["h"]))
    return {
        group: (np.array(points[group], dtype=float).reshape(-1, 2), np.array(boxes[group], dtype=float).reshape(-1, 4))
        for group in sorted(points.keys() | boxes.keys())
    }


def mark_analysis(study: Study, answers: list[Answer]) -> list[dict]:
    marked = marks_by_group(answers)
    rows = []
    images = []
    for group, (points, boxes) in marked.items():
        judged_generated = sum(1 for a in answers if a.group == group and a.judged_real is False)
        rows.append(["real images" if group == REAL else group, judged_generated, len(points), len(boxes)])
        images.append(
            {
                "src": reverse("results:marks_heatmap", kwargs={"study_id": study.pk, "group": group}),
                "alt": f"Where raters marked {group} images as giving themselves away (kernel density over the mean image)",
                "caption": "real images" if group == REAL else group,
            }
        )
    return [
        {
            "title": "Why it looks generated: marked regions",
            "note": "After answering 'generated', raters marked the regions that gave the image away (points or "
            "boxes, in normalised image coordinates). Each heatmap is a Gaussian kernel density of the marks (a box "
            "counts as one mark spread over its area), drawn over the group's mean image.",
            "table": {"columns": ["images", "judged generated", "points", "boxes"], "rows": rows},
            "images": images,
            "links": [{"href": reverse("results:export_marks", kwargs={"study_id": study.pk, "fmt": "csv"}), "text": "marks (CSV)"}],
        }
    ]


# -------------------------------------------------------------------------- staircase


def staircase_tracks(answers: list[Answer]) -> dict[tuple[str, int], list[int]]:
    """(group, rater) -> the exposures of their analysed trials of that group, in order."""
    tracks: dict[tuple[str, int], list[int]] = defaultdict(list)
    for answer in sorted(answers, key=lambda a: (a.rater, a.index)):
        if answer.exposure_ms is not None:
            tracks[(answer.group, answer.rater)].append(answer.exposure_ms)
    return tracks


def staircase_analysis(study: Study, answers: list[Answer]) -> list[dict]:
    tracks = staircase_tracks(answers)
    thresholds: dict[str, dict[int, float]] = defaultdict(dict)
    traces = []
    for (group, rater), levels in sorted(tracks.items()):
        result = protocols.staircase_threshold(levels_ms=levels)
        if result["threshold_ms"] is not None:
            thresholds[group][rater] = result["threshold_ms"]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{group} · R{rater:04d}",
                       "x": list(range(1, len(levels) + 1)), "y": levels, "legendgroup": group})  # fmt: skip
    rows = []
    for group in sorted({g for g, _ in tracks}):
        summary = protocols.staircase_summary(thresholds_by_rater=thresholds[group], seed=_seed(study, f"stair:{group}"))
        rows.append([
            "real images" if group == REAL else group, len(thresholds[group]),
            _estimate(summary, scale=1, unit=" ms"), summary.get("reason") or "",
        ])  # fmt: skip
    return [
        {
            "title": "HYPE-time: threshold exposure per model",
            "note": f"Each rater has one staircase per model (and one for real images): {study.staircase_down}-down-"
            f"{study.staircase_up}-up over {study.staircase_ladder} ms (Levitt 1971; Zhou et al. 2019). A rater's "
            "threshold is the mean exposure at the last reversals; the table gives the mean over raters with a "
            "percentile bootstrap over raters. A shorter threshold means the model's images are told apart faster.",
            "table": {"columns": ["images", "raters with a threshold", "threshold (95% bootstrap)", "note"], "rows": rows},
            "chart": {
                "id": "chart-staircase",
                "traces": traces,
                "layout": {
                    "title": {"text": "Staircase tracks"},
                    "xaxis": {"title": {"text": "trial of the group"}},
                    "yaxis": {"title": {"text": "exposure (ms)"}, "type": "log"},
                    "margin": {"t": 40},
                },
            },
        }
    ]


# -------------------------------------------------------------------------------- ROC


def roc_section(study: Study, answers: list[Answer]) -> list[dict]:
    rated = [a for a in answers if a.judged_real is not None and a.confidence is not None]
    if not rated:
        return []
    result = protocols.roc_analysis(
        is_generated=np.array([a.group != REAL for a in rated]),
        score=protocols.rating_score(
            judged_generated=np.array([a.judged_real is False for a in rated]),
            confidence=np.array([a.confidence for a in rated]),
        ),
        readers=np.array([a.rater for a in rated]),
    )

    def auc(entry: dict) -> str:
        if entry.get("auc") is None:
            return "— " + (entry.get("reason") or "")
        low, high = entry.get("low"), entry.get("high")
        return f"{entry['auc']:.3f}" + ("" if low is None else f" ({low:.3f}–{high:.3f})")

    pooled = result["pooled"]
    rows = [["pooled", pooled.get("n"), auc(pooled)]]
    rows += [[f"R{r['reader']:04d}", r.get("n"), auc(r)] for r in result["readers"]]
    mean = result["reader_mean"]
    if mean.get("value") is not None:
        rows.append(["mean of readers (t interval)", len(result["readers"]), _estimate(mean, scale=1, unit="")])
    traces = [{"type": "scatter", "mode": "lines", "name": "pooled", "x": pooled.get("fpr") or [], "y": pooled.get("tpr") or [],
               "line": {"width": 3}}]  # fmt: skip
    traces += [
        {"type": "scatter", "mode": "lines", "name": f"R{r['reader']:04d}", "x": r.get("fpr") or [], "y": r.get("tpr") or [],
         "line": {"width": 1}, "opacity": 0.6}  # fmt: skip
        for r in result["readers"]
        if r.get("fpr")
    ]
    traces.append({"type": "scatter", "mode": "lines", "name": "chance", "x": [0, 1], "y": [0, 1], "line": {"dash": "dot"}})
    return [
        {
            "title": "ROC of telling generated from real, from confidence",
            "note": f"Each answer becomes one rating on a {2 * study.confidence_levels}-step scale (real with "
            f"confidence {study.confidence_levels} ... generated with confidence {study.confidence_levels}; Metz's "
            "rating method); AUC 0.5 = cannot tell, 1 = always right. DeLong intervals (pooled answers treat trials "
            "as independent; the reader mean treats readers as a sample).",
            "table": {"columns": ["reader", "answers", "AUC (95% DeLong)"], "rows": rows},
            "chart": {
                "id": "chart-roc",
                "traces": traces,
                "layout": {
                    "title": {"text": "ROC curves (generated = positive)"},
                    "xaxis": {"title": {"text": "false positive rate (real judged generated)"}, "range": [0, 1]},
                    "yaxis": {"title": {"text": "true positive rate"}, "range": [0, 1]},
                    "margin": {"t": 40},
                },
            },
        }
    ]


#: task name -> its analysis; tasks without their own (real_fake, quality, both) show only the common tables.
ANALYSES: dict[str, Callable[[Study, list[Answer]], list[dict]]] = {
    "2afc": paired_analysis,
    "diagnosis": diagnosis_analysis,
    "mark": mark_analysis,
    "staircase": staircase_analysis,
}


def protocol_sections(*, study: Study, excluded: Iterable[int], include_practice: bool) -> list[dict]:
    """Every protocol section the results page shows for ``study``."""
    answers = protocol_answers(study=study, excluded=excluded, include_practice=include_practice)
    sections = ANALYSES.get(study.task, lambda study, answers: [])(study, answers)
    if study.asks_confidence:
        sections += roc_section(study, answers)
    return sections
