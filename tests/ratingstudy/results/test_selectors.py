"""study_results on studies built with the real models, checked against an independent
pandas computation from the database and the trusted implementations."""

from __future__ import annotations

import json

import krippendorff
import numpy as np
import pandas as pd
import pytest
from django.db.models import F
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.proportion import proportion_confint

from ratingstudy.catalog.models import ImageSet
from ratingstudy.results import selectors
from ratingstudy.results.checks import (
    check_failures,
    rater_exclusions,
    study_check_outcomes,
    study_response_rows,
)
from ratingstudy.results.selectors import ResultFilters, study_results
from ratingstudy.results.services import metric_report_store
from ratingstudy.studies.models import Response, Trial
from tests.ratingstudy.results.factories import (
    answer,
    image_set_create,
    rater_create,
    simulated_study,
    study_create,
)

pytestmark = pytest.mark.django_db


def _frame(study) -> pd.DataFrame:
    """Responses of ``study`` with their trial and image facts, straight from the ORM."""
    rows = Response.objects.filter(trial__session__study=study).values(
        "judged_real",
        "quality",
        rater=F("trial__session__rater_id"),
        image=F("trial__image_id"),
        practice=F("trial__is_practice"),
        check=F("trial__attention_check"),
        kind=F("trial__image__image_set__kind"),
        model=F("trial__image__image_set__model_name"),
    )
    frame = pd.DataFrame(list(rows))
    frame["group"] = np.where(frame.kind == ImageSet.Kind.REAL, "real", frame.model)
    return frame


def _analysed(frame: pd.DataFrame, excluded: set[int]) -> pd.DataFrame:
    return frame[(frame.check == "") & ~frame.practice & ~frame.rater.isin(excluded)]


def _no_nan(results: dict) -> None:
    json.dumps(results, allow_nan=False)  # raises on NaN or infinity anywhere


def test_model_rows_match_an_independent_computation():
    sim = simulated_study()
    results = study_results(study=sim.study)
    _no_nan(results)
    frame = _analysed(_frame(sim.study), {sim.failing_rater.pk})
    assert [row["name"] for row in results["models"]] == ["plain-cyclegan", "resnet50-cyclegan", "vgg16-cyclegan", "real"]
    for row in results["models"]:
        mine = frame[frame.group == row["name"]]
        assert row["n_responses"] == len(mine)
        assert row["n_raters"] == mine.rater.nunique() == len(sim.raters) - 1
        assert row["mos"]["value"] == pytest.approx(mine.quality.mean())
        k, n = int(mine.judged_real.sum()), len(mine)
        assert row["judged_real"]["value"] == pytest.approx(k / n)
        assert (row["judged_real"]["low"], row["judged_real"]["high"]) == pytest.approx(proportion_confint(k, n, method="wilson"))
        assert row["quality_distribution"] == [int((mine.quality == q).sum()) for q in range(1, 6)]
        reals = frame[frame.group == "real"]
        if row["name"] != "real":
            assert row["hype"]["fake_error"]["value"] == pytest.approx(mine.judged_real.mean())
            errors = mine.judged_real.sum() + (~reals.judged_real.astype(bool)).sum()
            assert row["hype"]["overall"]["value"] == pytest.approx(errors / (len(mine) + len(reals)))
        assert row["hype"]["real_error"]["value"] == pytest.approx(1 - reals.judged_real.mean())
        assert row["mos_bootstrap"]["low"] < row["mos"]["value"] < row["mos_bootstrap"]["high"]


def test_agreement_matches_statsmodels_and_krippendorff():
    sim = simulated_study()
    results = study_results(study=sim.study)
    frame = _analysed(_frame(sim.study), {sim.failing_rater.pk})
    counts = frame.groupby("image").judged_real.agg(["sum", "count"])
    table = np.column_stack([counts["sum"], counts["count"] - counts["sum"]])
    overall = results["agreement"][0]
    assert overall["name"] == "all images"
    assert overall["fleiss_kappa"]["value"] == pytest.approx(sm_fleiss_kappa(table))
    matrix = frame.pivot(index="rater", columns="image", values="quality").to_numpy(dtype=float)
    expected_alpha = krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert overall["krippendorff_alpha"]["value"] == pytest.approx(expected_alpha)
    assert overall["icc"]["n_raters"] == len(sim.raters) - 1


def test_switches_include_practice_and_failed_raters():
    sim = simulated_study()
    default = study_results(study=sim.study)
    assert default["counts"]["raters_excluded"] == 1
    assert [r["excluded"] for r in default["raters"]] == [False] * 4 + [True]
    assert default["raters"][-1]["n_responses"] > 0  # excluded raters are still described
    with_failed = study_results(study=sim.study, filters=ResultFilters(include_failed_checks=True))
    assert with_failed["counts"]["raters_excluded"] == 0
    assert with_failed["counts"]["analysed"] == default["counts"]["analysed"] + 32
    with_practice = study_results(study=sim.study, filters=ResultFilters(include_practice=True))
    assert with_practice["counts"]["analysed"] == default["counts"]["analysed"] + 1
    # The practice image is real: one more real answer.
    real_default = next(r for r in default["models"] if r["name"] == "real")
    real_practice = next(r for r in with_practice["models"] if r["name"] == "real")
    assert real_practice["n_responses"] == real_default["n_responses"] + 1


def test_attention_check_rules():
    sim = simulated_study(n_raters=1, n_images=2, with_checks=False)
    rater = sim.raters[0]
    image = sim.sets["real"].images.first()
    first = answer(rater=rater, image=image, index=50, judged_real=True, quality=4)
    answer(rater=rater, image=image, index=51, judged_real=True, quality=3, attention_check=Trial.AttentionCheck.REPEAT, repeat_of=first)
    answer(rater=rater, image=image, index=52, judged_real=False, quality=2, attention_check=Trial.AttentionCheck.CORRUPTED)
    rows = study_response_rows(study=sim.study)
    assert check_failures(rows=rows) == {rater.pk: {"passed": 2, "failed": 0, "failures": []}}
    answer(rater=rater, image=image, index=53, judged_real=False, quality=4, attention_check=Trial.AttentionCheck.REPEAT, repeat_of=first)
    answer(rater=rater, image=image, index=54, judged_real=None, quality=3, attention_check=Trial.AttentionCheck.CORRUPTED)
    outcome = check_failures(rows=study_response_rows(study=sim.study))[rater.pk]
    assert (outcome["passed"], outcome["failed"]) == (2, 2)
    assert outcome["failures"] == [
        "repeat at trial 54 of trial 51: generated after real",
        "corrupted image at trial 55: quality 3 (> 2)",
    ]
    failed, excluded = study_check_outcomes(study=sim.study)
    assert failed == {rater.pk} and set(excluded) == {rater.pk}
    assert excluded[rater.pk].startswith("failed 2 of 4 attention checks (excluded when 2 or more failed or more than 50% failed)")


def test_exclusion_rule_is_the_studys_and_explained():
    sim = simulated_study(n_raters=1, n_images=2, with_checks=False)
    rater = sim.raters[0]
    image = sim.sets["real"].images.first()
    first = answer(rater=rater, image=image, index=50, judged_real=True, quality=4)
    for index in (51, 52, 53):
        answer(rater=rater, image=image, index=index, judged_real=True, quality=4, attention_check=Trial.AttentionCheck.REPEAT, repeat_of=first)
    answer(rater=rater, image=image, index=54, judged_real=True, quality=1, attention_check=Trial.AttentionCheck.CORRUPTED)
    checks = check_failures(rows=study_response_rows(study=sim.study))
    # One failure in four checks: kept under the default rule (2 failures, or more than half).
    assert rater_exclusions(study=sim.study, checks=checks) == {}
    sim.study.exclude_after_failed_checks = 1
    assert set(rater_exclusions(study=sim.study, checks=checks)) == {rater.pk}
    sim.study.exclude_after_failed_checks, sim.study.exclude_failed_share = 0, 0.2
    assert "more than 20% failed" in rater_exclusions(study=sim.study, checks=checks)[rater.pk]
    sim.study.exclude_failed_share = 1.0
    assert rater_exclusions(study=sim.study, checks=checks) == {}


def test_experience_groups_and_comparisons():
    sim = simulated_study()
    results = study_results(study=sim.study)
    groups = {g["group"]: g for g in results["by_experience"]}
    # Raters 0-3 have 2, 7, 12 and 25 years; rater 4 (not given) failed a check and is excluded.
    assert set(groups) == {"< 5 years", "5-9 years", "10-19 years", ">= 20 years", "not given"}
    assert groups["not given"]["n_raters"] == 0
    assert groups["< 5 years"]["n_raters"] == 1
    assert [c["model"] for c in groups["< 5 years"]["cells"]] == [r["name"] for r in results["models"]]
    assert len(results["comparisons"]["quality"]) == 6 and len(results["comparisons"]["judged_real"]) == 6
    assert all(c["p_holm"] >= c["p_value"] for c in results["comparisons"]["quality"] if c["p_value"] is not None)


def test_empty_study_gives_defined_results():
    real = image_set_create(name="r", kind=ImageSet.Kind.REAL, n=3)
    fake = image_set_create(name="g", model_name="plain", n=3)
    study = study_create(real=[real], generated=[fake])
    results = study_results(study=study)
    _no_nan(results)
    assert results["counts"]["images_unrated"] == 6
    for row in results["models"]:
        assert row["mos"]["value"] is None and row["mos"]["reason"] == "no ratings"
        assert row["sample_size"]["quality"]["needed"] is None
    assert results["agreement"][0]["fleiss_kappa"]["reason"]
    assert results["pairwise"]["raters"] == []


def test_one_rater_and_identical_answers_are_explained_not_crashing():
    real = image_set_create(name="r", kind=ImageSet.Kind.REAL, n=3)
    fake = image_set_create(name="g", model_name="plain", n=3)
    study = study_create(real=[real], generated=[fake])
    rater = rater_create(study=study)
    for i, image in enumerate(list(real.images.all()) + list(fake.images.all())):
        answer(rater=rater, image=image, index=i, judged_real=True, quality=3)
    results = study_results(study=study)
    _no_nan(results)
    agreement = results["agreement"][0]
    assert agreement["fleiss_kappa"]["value"] is None and "two or more" in agreement["fleiss_kappa"]["reason"]
    assert agreement["icc"]["single"]["value"] is None and "two or more raters" in agreement["icc"]["reason"]
    plain = results["models"][0]
    assert plain["mos"]["value"] == 3.0 and "identical" in plain["mos"]["reason"]
    assert "one rater" in plain["mos_bootstrap"]["reason"]
    assert results["raters"][0]["detection"]["d_prime"] is not None  # log-linear keeps it finite
    assert all(c["p_value"] is None for c in results["comparisons"]["quality"])


def test_unrated_images_are_counted():
    sim = simulated_study(n_raters=3, n_images=4, unrated=2)
    results = study_results(study=sim.study)
    assert results["counts"]["images_unrated"] == 2
    real = next(r for r in results["models"] if r["name"] == "real")
    assert (real["n_images_rated"], real["n_images"]) == (4, 6)


def test_metrics_join_and_spearman():
    sim = simulated_study(n_raters=4, n_images=6)
    plain = sim.sets["plain-cyclegan"]
    images = list(plain.images.order_by("source_path"))
    per_image = [{"path": image.source_path, "ssim": 0.1 * (i + 1), "psnr": 20.0 + i} for i, image in enumerate(images)]
    report = {
        "settings": {"fid": {"extractor": "efficientnet-lite0"}},
        "aggregates": {"ssim": {"mean": 0.35, "std": 0.1}, "psnr": 22.5, "fid": 81.0},
        "per_image": per_image,
    }
    metric_report_store(image_set=plain, report=report, cost={"parameters": 11_000_000, "device": "cpu"})
    results = study_results(study=sim.study)
    _no_nan(results)
    row = next(r for r in results["models"] if r["name"] == "plain-cyclegan")
    assert results["metric_columns"] == ["ssim", "psnr", "fid"]
    assert row["metric_values"] == [0.35, 22.5, 81.0]
    assert row["extractor"] == "efficientnet-lite0" and row["cost"]["parameters"] == 11_000_000
    spearman = {(r["metric"], r["human"]): r for r in results["spearman"]}
    frame = _analysed(_frame(sim.study), {sim.failing_rater.pk})
    human = frame.groupby("image").quality.mean()
    ssim = pd.Series({image.pk: 0.1 * (i + 1) for i, image in enumerate(images)})
    expected = ssim.corr(human.reindex(ssim.index), method="spearman")
    assert spearman[("ssim", "quality")]["rho"] == pytest.approx(expected)
    assert spearman[("ssim", "quality")]["n"] == 6
    assert results["scatter"]["ssim"]["x"] == pytest.approx(list(ssim))


def test_results_version_changes_with_new_answers():
    sim = simulated_study(n_raters=2, n_images=2, with_checks=False)
    before = selectors.study_results_version(study=sim.study)
    image = sim.sets["real"].images.first()
    answer(rater=sim.raters[0], image=image, index=99, judged_real=True, quality=2)
    assert selectors.study_results_version(study=sim.study) != before


def _naive_pairwise(frame: pd.DataFrame, column: str, agree) -> dict[tuple[int, int], float]:
    wide = frame.pivot(index="image", columns="rater", values=column)
    out = {}
    for a in wide.columns:
        for b in wide.columns:
            both = wide[[a, b]].dropna()
            if len(both):
                out[(a, b)] = float(np.mean([agree(x, y) for x, y in both.to_numpy()]))
    return out


def test_pairwise_agreement_matches_a_naive_loop():
    sim = simulated_study(n_raters=4, n_images=5)
    results = study_results(study=sim.study, filters=ResultFilters(include_failed_checks=True))
    frame = _analysed(_frame(sim.study), set())
    expected = _naive_pairwise(frame, "judged_real", lambda x, y: x == y)
    pairwise = results["pairwise"]
    ids = [r.pk for r in sim.raters]
    assert pairwise["raters"] == [f"R{i:04d}" for i in ids]
    got = {(ids[a], ids[b]): v for a, row in enumerate(pairwise["matrix"]) for b, v in enumerate(row) if v is not None}
    assert got == pytest.approx(expected)
    assert pairwise["shared"][0][1] == 20


def test_pairwise_agreement_on_quality_only_study_uses_one_point_tolerance():
    sim = simulated_study(n_raters=3, n_images=4, with_checks=False)
    Response.objects.update(judged_real=None)
    results = study_results(study=sim.study)
    frame = _analysed(_frame(sim.study), set())
    expected = _naive_pairwise(frame, "quality", lambda x, y: abs(x - y) <= 1)
    ids = [r.pk for r in sim.raters]
    got = {(ids[a], ids[b]): v for a, row in enumerate(results["pairwise"]["matrix"]) for b, v in enumerate(row) if v is not None}
    assert results["pairwise"]["measure"] == "quality within one point"
    assert got == pytest.approx(expected)
    assert all(row["judged_real"]["value"] is None for row in results["models"])


def test_results_version_changes_when_a_retried_job_replaces_its_report():
    sim = simulated_study(n_raters=1, n_images=2, with_checks=False)
    metric_report_store(image_set=sim.sets["vgg16-cyclegan"], report={"aggregates": {"fid": 1.0}}, job_id=5)
    before = selectors.study_results_version(study=sim.study)
    metric_report_store(image_set=sim.sets["vgg16-cyclegan"], report={"aggregates": {"fid": 2.0}}, job_id=5)
    assert selectors.study_results_version(study=sim.study) != before
