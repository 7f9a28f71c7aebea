"""The manifest of a study's results: what a reader needs to reproduce its numbers."""

from __future__ import annotations

import hashlib

from django.db.models import Count

from ratingstudy.catalog.models import Image
from ratingstudy.results import stats
from ratingstudy.results.checks import (
    CORRUPTED_MAX_QUALITY,
    REPEAT_MAX_QUALITY_CHANGE,
    exclusion_rule,
)
from ratingstudy.results.export_selectors import RESPONSE_COLUMNS
from ratingstudy.results.models import MetricReport
from ratingstudy.results.selectors import (
    EXPERIENCE_GROUPS,
    ResultFilters,
    rater_pseudonym,
    study_groups,
)
from ratingstudy.studies.models import Study


def _versions() -> dict[str, str]:
    import platform
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for package in ("Django", "numpy", "scipy", "statsmodels", "krippendorff", "plotly"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def study_manifest(*, study: Study, filters: ResultFilters | None = None) -> dict:
    """What a reader needs to reproduce the study's numbers: design, seeds, image sets with
    checkpoint hashes, metric report settings, analysis rules and software versions."""
    from django.utils import timezone

    filters = filters or ResultFilters()
    design_fields = (
        "task", "ask_confidence", "images_per_rater", "balance", "raters_per_image", "practice_trials",
        "corrupted_checks", "repeat_checks", "exposure_ms", "canvas_width", "canvas_height", "fit", "jpeg_quality",
        "practice_holdout", "exclude_after_failed_checks", "exclude_failed_share", "is_open",
    )  # fmt: skip
    _, sets = study_groups(study=study)
    image_sets = []
    for group, members in sets.items():
        for image_set in members:
            images = Image.objects.filter(image_set=image_set)
            image_sets.append(
                {
                    "id": image_set.pk,
                    "name": image_set.name,
                    "kind": image_set.kind,
                    "group": group,
                    "model_name": image_set.model_name,
                    "source": image_set.source,
                    "images": images.count(),
                    "import_params": image_set.import_params,
                    "checkpoint_sha256": sorted(set(images.exclude(checkpoint_sha256="").values_list("checkpoint_sha256", flat=True))),
                }
            )
    reports = [
        {
            "id": report.pk,
            "image_set_id": report.image_set_id,
            "model_name": report.model_name,
            "extractor": report.extractor,
            "job_id": report.job_id,
            "created_at": report.created_at.isoformat(),
            "settings": report.report.get("settings", {}),
            "mapping": report.mapping,
            "cost": report.cost,
        }
        for report in MetricReport.objects.filter(image_set__in=[s for group in sets.values() for s in group]).order_by("created_at", "id")
    ]
    sessions = [
        {
            "rater": rater_pseudonym(rater_id),
            "session_id": session_id,
            "seed": seed,
            "started_at": started.isoformat() if started else None,
            "completed_at": completed.isoformat() if completed else None,
            "trials": n_trials,
        }
        for rater_id, session_id, seed, started, completed, n_trials in study.sessions.order_by("id")
        .annotate(n_trials=Count("trials"))
        .values_list("rater_id", "id", "seed", "started_at", "completed_at", "n_trials")
    ]
    return {
        "generated_at": timezone.now().isoformat(),
        "study": {"id": study.pk, "name": study.name, "seed": study.seed, "created_at": study.created_at.isoformat()},
        "design_version": study.design_version,
        "previous_version": study.previous_version_id,
        "design": {name: getattr(study, name) for name in design_fields},
        "what_raters_read": {
            "instructions": study.instructions,
            "instructions_sha256": hashlib.sha256(study.instructions.encode()).hexdigest(),
            "consent_text": study.consent_text,
            "consent_sha256": study.consent_sha256,
            "consent_version": study.consent_version,
        },
        "withdrawals": {
            "mode": study.withdrawal,
            "count": study.withdrawals.count(),
            "responses_affected": sum(study.withdrawals.values_list("responses", flat=True)),
        },
        "image_sets": image_sets,
        "sessions": sessions,
        "metric_reports": reports,
        "analysis": {
            **filters.as_dict(),
            "confidence": stats.CONFIDENCE,
            "corrupted_check_fails_above_quality": CORRUPTED_MAX_QUALITY,
            "repeat_check_max_quality_change": REPEAT_MAX_QUALITY_CHANGE,
            "exclusion_rule": exclusion_rule(study),
            "experience_groups": [list(g) for g in EXPERIENCE_GROUPS],
            "bootstrap": "two-way cluster (raters x images, Owen 2007 pigeonhole), percentile, seeded from the study seed",
            "dprime_correction": "log-linear (Hautus 1995)",
            "multiple_comparisons": "Holm",
        },
        "columns": {"responses": RESPONSE_COLUMNS},
        "software": _versions(),
    }

