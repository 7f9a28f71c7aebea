"""Attention checks and the exclusion rule: which raters the results leave out, and why.

Trials that are attention checks (corrupted or repeated images) are never analysed: they
are not study data. Raters excluded by the study's rule (``Study.is_excluded``: by default
2 failed attention checks, or more than half of them) are left out of the analysis unless
asked for; the rater table and the exports say why each one was.

* A **corrupted** check fails when the damaged image is judged real or rated
  ``CORRUPTED_MAX_QUALITY + 1`` or more (or, in 2AFC, the corrupted side is chosen as real).
* A **repeat** check fails when the real/fake answer differs from the one given to the same
  image earlier, or the quality rating differs by more than ``REPEAT_MAX_QUALITY_CHANGE``
  (or the other image of the same pair is chosen, or the diagnosis changes).

Every function here reads responses as :data:`RESPONSE_FIELDS` tuples, the row format the
analysis (:mod:`ratingstudy.results.selectors`) shares.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from django.db.models import Q

from ratingstudy.studies.models import Rater, Response, Study, Trial

CORRUPTED_MAX_QUALITY = 2
REPEAT_MAX_QUALITY_CHANGE = 1

#: One response as the analysis reads it (``values_list`` order; the indices below rely on it).
RESPONSE_FIELDS = (
    "id",
    "trial__session__rater_id",
    "trial_id",
    "trial__index",
    "trial__is_practice",
    "trial__attention_check",
    "trial__repeat_of_id",
    "trial__image_id",
    "trial__image__image_set__kind",
    "trial__image__image_set__model_name",
    "trial__image__image_set__name",
    "judged_real",
    "quality",
    "trial__is_qualification",
    "choice",
    "trial__real_side",
    "diagnosis",
    "trial__image__label",
)


def check_failures(*, rows: Iterable[Sequence[Any]]) -> dict[int, dict[str, Any]]:
    """Attention-check outcomes per rater: ``{rater_id: {"passed": n, "failed": n, "failures": [why, ...]}}``.

    ``rows`` are ``RESPONSE_FIELDS`` tuples of one study (any order); see the module
    docstring for the rules. Each failure is described in words, with the trial positions.
    """
    by_trial: dict[int, tuple] = {}
    checks = []
    for row in rows:
        by_trial[row[2]] = row
        if row[5]:
            checks.append(row)
    outcome: dict[int, dict[str, Any]] = defaultdict(lambda: {"passed": 0, "failed": 0, "failures": []})
    for row in sorted(checks, key=lambda r: (r[1], r[3])):
        rater, index, kind, judged_real, quality = row[1], row[3], row[5], row[11], row[12]
        choice, real_side, diagnosis = row[14], row[15], row[16]
        why = []
        if kind == Trial.AttentionCheck.CORRUPTED:
            if judged_real is True:
                why.append("judged real")
            if quality is not None and quality > CORRUPTED_MAX_QUALITY:
                why.append(f"quality {quality} (> {CORRUPTED_MAX_QUALITY})")
            if choice and choice != real_side:
                why.append("chose the corrupted image as real")
            if diagnosis and judged_real is None and quality is None and not choice:
                continue  # a diagnosis has no right answer for a corrupted image: not a check there
            where = f"corrupted image at trial {index + 1}"
        else:
            original = by_trial.get(row[6])
            if original is None:  # the original is not answered yet: nothing to compare
                continue
            if judged_real is not None and original[11] is not None and judged_real != original[11]:
                why.append(f"{_real_word(judged_real)} after {_real_word(original[11])}")
            if quality is not None and original[12] is not None and abs(quality - original[12]) > REPEAT_MAX_QUALITY_CHANGE:
                why.append(f"quality {quality} after {original[12]}")
            if choice and original[14] and (choice == real_side) != (original[14] == original[15]):
                why.append("chose the other image of the same pair")
            if diagnosis and original[16] and diagnosis != original[16]:
                why.append(f"{diagnosis} after {original[16]}")
            where = f"repeat at trial {index + 1} of trial {original[3] + 1}"
        outcome[rater]["failed" if why else "passed"] += 1
        if why:
            outcome[rater]["failures"].append(f"{where}: {', '.join(why)}")
    return dict(outcome)


def _real_word(judged_real: bool) -> str:
    return "real" if judged_real else "generated"


def rater_exclusions(*, study: Study, checks: dict[int, dict[str, Any]]) -> dict[int, str]:
    """Raters not analysed, each with the reason in words: those the study's attention-check rule
    excludes (``Study.is_excluded``), and those screened out (colour screen or qualification failed)."""
    excluded = dict(Rater.objects.filter(study=study).exclude(screened_out="").values_list("pk", "screened_out"))
    for rater, outcome in checks.items():
        checked = outcome["passed"] + outcome["failed"]
        if study.is_excluded(failed=outcome["failed"], checked=checked) and rater not in excluded:
            excluded[rater] = (
                f"failed {outcome['failed']} of {checked} attention checks ({exclusion_rule(study)}): "
                + "; ".join(outcome["failures"])
            )
    return excluded


def exclusion_rule(study: Study) -> str:
    """The study's exclusion rule in words."""
    parts = []
    if study.exclude_after_failed_checks:
        parts.append(f"{study.exclude_after_failed_checks} or more failed")
    if study.exclude_failed_share < 1:
        parts.append(f"more than {study.exclude_failed_share:.0%} failed")
    return "excluded when " + " or ".join(parts) if parts else "never excluded"


def study_response_rows(*, study: Study) -> list[tuple]:
    """Every response of ``study`` as :data:`RESPONSE_FIELDS` tuples, in session and trial order."""
    return list(
        Response.objects.filter(trial__session__study=study).order_by("trial__session_id", "trial__index").values_list(*RESPONSE_FIELDS)
    )


def study_check_outcomes(*, study: Study) -> tuple[set[int], dict[int, str]]:
    """Raters of ``study`` who failed at least one attention check, and those its rule excludes (with why)."""
    check_rows = (
        Response.objects.filter(trial__session__study=study)
        .filter(Q(trial__attention_check__gt="") | Q(trial__repeats__isnull=False))
        .values_list(*RESPONSE_FIELDS)
        .distinct()
    )
    checks = check_failures(rows=check_rows)
    return {rater for rater, outcome in checks.items() if outcome["failed"]}, rater_exclusions(study=study, checks=checks)
