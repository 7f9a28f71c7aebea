"""``manage.py study_synthetic``: a complete, realistic study in one transaction."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from ratingstudy.catalog.models import ImageSet
from ratingstudy.results import synthetic
from ratingstudy.results.selectors import study_results
from ratingstudy.studies.models import Rater, Response, Session, Study, Trial

pytestmark = pytest.mark.django_db


def test_counts_design_and_checks():
    call_command("study_synthetic", raters=25, trials=24, seed=3, verbosity=0)
    study = Study.objects.get()
    assert study.name == "synthetic 25 raters x 24 trials (seed 3)"
    assert study.ask_confidence and study.task == Study.Task.BOTH
    assert Rater.objects.filter(study=study, profile_completed_at__isnull=False, consented_at__isnull=False).count() == 25
    assert Session.objects.filter(study=study, completed_at__isnull=False).count() == 25
    trials = Trial.objects.filter(session__study=study)
    assert trials.count() == Response.objects.filter(trial__session__study=study).count() == 25 * 24
    per_session = synthetic.PRACTICE_TRIALS, synthetic.CORRUPTED_CHECKS, synthetic.REPEAT_CHECKS
    assert trials.filter(is_practice=True).count() == 25 * per_session[0]
    assert trials.filter(is_practice=True, index__gte=per_session[0]).count() == 0  # practice comes first
    assert trials.filter(attention_check=Trial.AttentionCheck.CORRUPTED).count() == 25 * per_session[1]
    repeats = trials.filter(attention_check=Trial.AttentionCheck.REPEAT)
    assert repeats.count() == 25 * per_session[2]
    assert not repeats.exclude(repeat_of__session=F("session"), repeat_of__index__lt=F("index"), image=F("repeat_of__image")).exists()
    assert set(study.generated_image_sets.values_list("model_name", flat=True)) == set(synthetic.MODELS)
    assert all(name.startswith("synthetic") for name in ImageSet.objects.values_list("name", flat=True))
    assert not Response.objects.filter(trial__session__study=study, confidence__isnull=True).exists()

    results = study_results(study=study)
    assert results["counts"]["responses"] == 25 * 24
    assert results["counts"]["raters_excluded"] == 1  # one careless rater in 25 fails their checks
    by_model = {row["name"]: row for row in results["models"]}
    # The generating model shows through: real images look best, resnet50 worst.
    assert by_model["real"]["mos"]["value"] > by_model["resnet50-cyclegan"]["mos"]["value"]
    assert by_model["real"]["judged_real"]["value"] > by_model["resnet50-cyclegan"]["judged_real"]["value"]


def test_same_seed_same_answers():
    call_command("study_synthetic", raters=3, trials=20, seed=7, name="a", verbosity=0)
    call_command("study_synthetic", raters=3, trials=20, seed=7, name="b", verbosity=0)

    def answers(name: str) -> list:
        return list(
            Response.objects.filter(trial__session__study__name=name)
            .order_by("trial__session__rater__note", "trial__index")
            .values_list("trial__index", "judged_real", "quality", "confidence")
        )

    assert answers("synthetic a") == answers("synthetic b")


def test_all_or_nothing(monkeypatch):
    calls = []

    def fail_at_the_end(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("disk full")

    monkeypatch.setattr(Response.objects, "bulk_create", fail_at_the_end)
    with pytest.raises(RuntimeError, match="disk full"):
        call_command("study_synthetic", raters=3, trials=20, verbosity=0)
    assert calls, "the failure was not reached"
    for model in (Study, ImageSet, Rater, Session, Trial, Response):
        assert not model.objects.exists(), f"{model.__name__} rows were left behind"


def test_refuses_a_taken_name_and_too_few_trials():
    call_command("study_synthetic", raters=2, trials=20, verbosity=0)
    with pytest.raises(CommandError, match="already exists"):
        call_command("study_synthetic", raters=2, trials=20, verbosity=0)
    with pytest.raises(CommandError, match="ask for at least"):
        call_command("study_synthetic", raters=2, trials=10, name="short", verbosity=0)
    assert Study.objects.count() == 1
