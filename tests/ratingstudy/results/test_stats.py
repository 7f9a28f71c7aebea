"""Every statistic against a trusted implementation on the same data, plus edge cases."""

from __future__ import annotations

import math

import krippendorff
import numpy as np
import pandas as pd
import pingouin
import pytest
from scipy import stats as sps
from sklearn.metrics import recall_score
from statsmodels.stats.inter_rater import fleiss_kappa as sm_fleiss_kappa
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.proportion import proportion_confint, proportions_ztest
from statsmodels.stats.weightstats import DescrStatsW

from ratingstudy.results import stats

RNG = np.random.default_rng(20240607)


def _finite_or_none(obj) -> bool:
    """True when no float anywhere in ``obj`` is NaN or infinite."""
    if isinstance(obj, dict):
        return all(_finite_or_none(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(_finite_or_none(v) for v in obj)
    if isinstance(obj, float):
        return math.isfinite(obj)
    return True


# ------------------------------------------------------------------------ mean


def test_mean_t_interval_matches_statsmodels():
    scores = RNG.integers(1, 6, size=37)
    got = stats.mean_t_interval(values=scores)
    low, high = DescrStatsW(scores.astype(float)).tconfint_mean(alpha=0.05)
    assert got.value == pytest.approx(scores.mean())
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)
    assert got.n == 37


def test_mean_t_interval_other_confidence_matches_scipy():
    scores = RNG.normal(3, 1, size=12)
    got = stats.mean_t_interval(values=scores, confidence=0.9)
    low, high = sps.t.interval(0.9, 11, loc=scores.mean(), scale=sps.sem(scores))
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)


@pytest.mark.parametrize(
    ("values", "value", "has_interval", "reason"),
    [([], None, False, "no ratings"), ([4], 4.0, False, "one rating"), ([3, 3, 3], 3.0, True, "identical")],
)
def test_mean_t_interval_edge_cases(values, value, has_interval, reason):
    got = stats.mean_t_interval(values=values)
    assert got.value == value
    assert (got.low is not None) == has_interval
    assert reason in got.reason
    assert _finite_or_none(got.as_dict())


# ------------------------------------------------------------------- proportions


@pytest.mark.parametrize(("k", "n"), [(0, 10), (1, 10), (7, 13), (50, 50), (123, 400), (1, 1)])
def test_wilson_matches_statsmodels(k, n):
    got = stats.wilson_interval(successes=k, trials=n)
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    assert got.value == pytest.approx(k / n)
    assert (got.low, got.high) == pytest.approx((low, high), abs=1e-12)


def test_wilson_99_percent_matches_statsmodels():
    got = stats.wilson_interval(successes=30, trials=70, confidence=0.99)
    assert (got.low, got.high) == pytest.approx(proportion_confint(30, 70, alpha=0.01, method="wilson"), abs=1e-12)


def test_wilson_no_trials_is_none_with_reason():
    got = stats.wilson_interval(successes=0, trials=0)
    assert got.value is None and got.reason == "no answers"


def test_hype_error_rates_count_errors_on_fakes_and_reals():
    is_real = np.array([True] * 40 + [False] * 60)
    judged_real = np.concatenate([RNG.random(40) < 0.8, RNG.random(60) < 0.35])
    got = stats.hype_error_rates(judged_real=judged_real, is_real=is_real)
    fooled = int(np.sum(judged_real[40:]))
    missed = int(np.sum(~judged_real[:40]))
    assert got.fake_error.value == pytest.approx(fooled / 60)
    assert (got.fake_error.low, got.fake_error.high) == pytest.approx(proportion_confint(fooled, 60, method="wilson"))
    assert got.real_error.value == pytest.approx(missed / 40)
    assert got.overall.value == pytest.approx((fooled + missed) / 100)
    assert got.overall.n == 100


def test_hype_without_reals_reports_why():
    got = stats.hype_error_rates(judged_real=[True, False], is_real=[False, False])
    assert got.fake_error.value == 0.5
    assert got.real_error.value is None and "no real images" in got.real_error.reason


# ------------------------------------------------------------- signal detection


def test_detection_rates_match_sklearn_and_loglinear_dprime():
    is_real = RNG.random(80) < 0.5
    judged_real = np.where(RNG.random(80) < 0.75, is_real, ~is_real)
    got = stats.detection_rates(judged_real=judged_real, is_real=is_real)
    # "positive" = generated; a rater's "fake" answer is a positive prediction.
    truth_fake = (~is_real).astype(int)
    said_fake = (~judged_real).astype(int)
    assert got.sensitivity.value == pytest.approx(recall_score(truth_fake, said_fake, pos_label=1))
    assert got.specificity.value == pytest.approx(recall_score(truth_fake, said_fake, pos_label=0))
    hits = int(np.sum(truth_fake & said_fake))
    false_alarms = int(np.sum((1 - truth_fake) & said_fake))
    expected = sps.norm.ppf((hits + 0.5) / (truth_fake.sum() + 1)) - sps.norm.ppf(
        (false_alarms + 0.5) / ((1 - truth_fake).sum() + 1)
    )
    assert got.d_prime == pytest.approx(expected)


def test_dprime_textbook_value_and_perfect_rater_is_finite():
    # H = 0.84, F = 0.16 -> d' = 2 * 0.994 ~= 1.99 (Macmillan & Creelman); large n makes the correction negligible.
    n = 100_000
    is_real = np.array([False] * n + [True] * n)
    judged_real = np.concatenate([np.arange(n) >= 0.84 * n, np.arange(n) >= 0.16 * n])
    assert stats.detection_rates(judged_real=judged_real, is_real=is_real).d_prime == pytest.approx(1.989, abs=2e-3)
    perfect = stats.detection_rates(judged_real=[False] * 10 + [True] * 10, is_real=[False] * 10 + [True] * 10)
    assert perfect.sensitivity.value == 1.0 and perfect.specificity.value == 1.0
    assert perfect.d_prime == pytest.approx(2 * sps.norm.ppf(10.5 / 11))


def test_dprime_needs_both_kinds():
    got = stats.detection_rates(judged_real=[True, False], is_real=[True, True])
    assert got.d_prime is None and "both" in got.reason
    assert got.sensitivity.value is None
    assert _finite_or_none(got.as_dict())


# ------------------------------------------------------------------- agreement


def test_fleiss_kappa_matches_statsmodels():
    raters = 5
    counts_real = RNG.binomial(raters, RNG.random(30))
    table = np.column_stack([counts_real, raters - counts_real])
    assert stats.fleiss_kappa(counts=table).value == pytest.approx(sm_fleiss_kappa(table, method="fleiss"))


def test_fleiss_kappa_three_categories_matches_statsmodels():
    # Fleiss (1971) counts from the Wikipedia worked example (kappa = 0.210).
    table = np.array(
        [
            [0, 0, 0, 0, 14], [0, 2, 6, 4, 2], [0, 0, 3, 5, 6], [0, 3, 9, 2, 0], [2, 2, 8, 1, 1],
            [7, 7, 0, 0, 0], [3, 2, 6, 3, 0], [2, 5, 3, 2, 2], [6, 5, 2, 1, 0], [0, 2, 2, 3, 7],
        ]
    )  # fmt: skip
    got = stats.fleiss_kappa(counts=table)
    assert got.value == pytest.approx(sm_fleiss_kappa(table))
    assert got.value == pytest.approx(0.210, abs=1e-3)


def test_fleiss_kappa_unequal_raters_uses_rows_with_two_or_more():
    table = np.array([[3, 0], [0, 3], [2, 1], [1, 0]])  # last image rated once: skipped
    got = stats.fleiss_kappa(counts=table)
    assert got.value == pytest.approx(sm_fleiss_kappa(table[:3]))
    assert got.n == 3
    unequal = stats.fleiss_kappa(counts=np.array([[3, 0], [0, 2], [2, 1]]))
    assert unequal.value is not None and "unequal" in unequal.reason


@pytest.mark.parametrize(
    ("table", "reason"),
    [
        (np.zeros((0, 2)), "no images"),
        (np.array([[1, 0], [0, 1]]), "two or more"),
        (np.array([[3, 0], [3, 0]]), "same"),
    ],
)
def test_fleiss_kappa_edge_cases(table, reason):
    got = stats.fleiss_kappa(counts=table)
    assert got.value is None and reason in got.reason


def _sparse_ratings(n_raters: int, n_images: int, missing: float) -> np.ndarray:
    true_quality = RNG.integers(1, 6, size=n_images)
    noisy = np.clip(true_quality + RNG.integers(-1, 2, size=(n_raters, n_images)), 1, 5).astype(float)
    noisy[RNG.random(noisy.shape) < missing] = np.nan
    return noisy


@pytest.mark.parametrize("missing", [0.0, 0.4])
def test_krippendorff_ordinal_matches_package(missing):
    data = _sparse_ratings(6, 50, missing)
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert stats.krippendorff_alpha_ordinal(ratings=data).value == pytest.approx(expected, abs=1e-12)


def test_krippendorff_ordinal_with_unused_levels_matches_package():
    data = np.array([[1, 2, 2, np.nan], [2, 2, 1, 1], [np.nan, 2, 2, 1]])
    expected = krippendorff.alpha(reliability_data=data, level_of_measurement="ordinal", value_domain=[1, 2, 3, 4, 5])
    assert stats.krippendorff_alpha_ordinal(ratings=data).value == pytest.approx(expected, abs=1e-12)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (np.array([[3, 3, 3], [3, 3, 3]], dtype=float), "every rating is the same"),
        (np.array([[1, 2, np.nan], [np.nan, np.nan, 3]]), "two or more raters"),
        (np.array([[1, 2, 3]], dtype=float), "two or more raters"),
        (np.zeros((0, 0)), "no ratings"),
        (np.array([[1, 7], [1, 7]], dtype=float), "outside the scale"),
    ],
)
def test_krippendorff_edge_cases(data, reason):
    got = stats.krippendorff_alpha_ordinal(ratings=data)
    assert got.value is None and reason in got.reason


def _pingouin_icc(matrix: np.ndarray, monkeypatch) -> pd.DataFrame:
    long = pd.DataFrame(matrix).rename_axis("image").reset_index().melt(id_vars="image", var_name="rater", value_name="score")
    # pingouin rounds its intervals to two decimals whatever its options say; compare unrounded.
    monkeypatch.setattr(pingouin.reliability, "_postprocess_dataframe", lambda frame: frame)
    return pingouin.intraclass_corr(data=long, targets="image", raters="rater", ratings="score", nan_policy="omit").set_index("Type")


@pytest.mark.filterwarnings("ignore::DeprecationWarning", "ignore::FutureWarning")
def test_icc_matches_pingouin_including_intervals(monkeypatch):
    matrix = _sparse_ratings(4, 25, 0.0).T  # (images, raters)
    matrix[0, 1] = np.nan  # one incomplete image: dropped listwise by both
    got = stats.intraclass_correlation(ratings=matrix)
    reference = _pingouin_icc(matrix, monkeypatch)
    assert got.n_images == 24 and got.n_raters == 4
    assert got.single.value == pytest.approx(reference.loc["ICC(A,1)", "ICC"])
    assert got.average.value == pytest.approx(reference.loc["ICC(A,k)", "ICC"])
    assert (got.single.low, got.single.high) == pytest.approx(tuple(reference.loc["ICC(A,1)", "CI95"]), abs=1e-9)
    assert (got.average.low, got.average.high) == pytest.approx(tuple(reference.loc["ICC(A,k)", "CI95"]), abs=1e-9)


@pytest.mark.parametrize(
    ("matrix", "reason"),
    [
        (np.array([[3.0], [4.0], [2.0]]), "two or more raters"),
        (np.array([[3.0, np.nan], [np.nan, 4.0], [2.0, 2.0]]), "two or more images"),
        (np.full((4, 3), 3.0), "do not vary"),
        (np.zeros((0, 0)), "no ratings"),
    ],
)
def test_icc_edge_cases(matrix, reason):
    got = stats.intraclass_correlation(ratings=matrix)
    assert got.single.value is None and reason in got.reason
    assert _finite_or_none(got.as_dict())


# -------------------------------------------------------------------- bootstrap


def _naive_cluster_bootstrap(values, raters, images, n_boot, seed, confidence=0.95):
    """Reference: build each resampled data set explicitly, rater block by image block."""
    rater_ids = np.unique(raters.astype(str))
    image_ids = np.unique(images.astype(str))
    rng = np.random.default_rng(seed)
    draws_r = rng.integers(0, len(rater_ids), size=(n_boot, len(rater_ids)))
    draws_i = rng.integers(0, len(image_ids), size=(n_boot, len(image_ids)))
    frame = pd.DataFrame({"r": raters.astype(str), "i": images.astype(str), "v": values})
    replicates = []
    for b in range(n_boot):
        picked = []
        for r in rater_ids[draws_r[b]]:
            block = frame[frame.r == r]
            for i in image_ids[draws_i[b]]:
                picked.append(block.v[block.i == i].to_numpy())
        resampled = np.concatenate(picked)
        if resampled.size:
            replicates.append(resampled.mean())
    return np.quantile(replicates, [(1 - confidence) / 2, (1 + confidence) / 2])


def test_cluster_bootstrap_matches_explicit_resampling():
    raters = np.repeat(np.arange(4), 6)
    images = np.tile(np.arange(6), 4)
    keep = RNG.random(24) < 0.8
    values = RNG.integers(1, 6, size=24).astype(float)
    got = stats.cluster_bootstrap_mean(values=values[keep], raters=raters[keep], images=images[keep], n_boot=120, seed=7)
    low, high = _naive_cluster_bootstrap(values[keep], raters[keep], images[keep], n_boot=120, seed=7)
    assert got.value == pytest.approx(values[keep].mean())
    assert (got.low, got.high) == pytest.approx((low, high))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_cluster_bootstrap_cell_totals_match_per_observation_weights(seed, monkeypatch):
    rng = np.random.default_rng(seed)
    raters, images = rng.integers(0, 12, 300), rng.integers(0, 40, 300)
    values = rng.integers(1, 6, 300).astype(float)
    monkeypatch.setattr(stats, "DENSE_CELLS_PER_OBSERVATION", 10**9)
    dense = stats.cluster_bootstrap_mean(values=values, raters=raters, images=images, seed=seed, n_boot=400)
    monkeypatch.setattr(stats, "DENSE_CELLS_PER_OBSERVATION", 0)
    sparse = stats.cluster_bootstrap_mean(values=values, raters=raters, images=images, seed=seed, n_boot=400)
    assert (dense.low, dense.high) == pytest.approx((sparse.low, sparse.high), abs=1e-12)


def test_cluster_bootstrap_is_seeded_and_wider_than_iid_with_rater_effects():
    raters = np.repeat(np.arange(8), 40)
    images = np.tile(np.arange(40), 8)
    rater_bias = RNG.normal(0, 1.0, size=8)
    values = 3 + rater_bias[raters] + RNG.normal(0, 0.3, size=raters.size)
    a = stats.cluster_bootstrap_mean(values=values, raters=raters, images=images, seed=1)
    b = stats.cluster_bootstrap_mean(values=values, raters=raters, images=images, seed=1)
    assert a == b
    iid = stats.mean_t_interval(values=values)
    assert a.width > 2 * iid.width


def test_cluster_bootstrap_edge_cases():
    assert stats.cluster_bootstrap_mean(values=[], raters=[], images=[]).value is None
    single = stats.cluster_bootstrap_mean(values=[4.0], raters=[1], images=[1])
    assert single.value == 4.0 and single.low is None and "nothing to resample" in single.reason
    one_rater = stats.cluster_bootstrap_mean(values=[1.0, 2.0, 5.0], raters=[1, 1, 1], images=[1, 2, 3], n_boot=200)
    assert one_rater.low is not None and "one rater" in one_rater.reason


# ------------------------------------------------------------------ comparisons


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_holm_matches_statsmodels(seed):
    p = np.random.default_rng(seed).random(9) ** 3
    p[3] = p[5]  # ties
    reject, adjusted, _, _ = multipletests(p, alpha=0.05, method="holm")
    got, got_reject = stats.holm_adjust(p_values=p)
    assert got == pytest.approx(adjusted)
    assert got_reject == list(reject)


def test_holm_matches_hand_computation():
    p = [0.01, 0.04, 0.03, 0.20]
    adjusted, reject = stats.holm_adjust(p_values=p)
    # sorted 0.01, 0.03, 0.04, 0.20 -> 4*0.01, max(.04, 3*.03), max(.09, 2*.04), max(.09, .20)
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 0.20])
    assert reject == [True, False, False, False]
    assert stats.holm_adjust(p_values=[]) == ([], [])


def test_compare_scores_matches_scipy_and_holm():
    groups = {
        "plain": RNG.normal(3.0, 0.6, 20),
        "resnet50": RNG.normal(3.8, 0.6, 22),
        "vgg16": RNG.normal(3.1, 0.6, 18),
    }
    got = stats.compare_scores(groups=groups)
    assert [(c.a, c.b) for c in got] == [("plain", "resnet50"), ("plain", "vgg16"), ("resnet50", "vgg16")]
    raw = [sps.mannwhitneyu(groups[c.a], groups[c.b], alternative="two-sided").pvalue for c in got]
    assert [c.p_value for c in got] == pytest.approx(raw)
    assert [c.p_holm for c in got] == pytest.approx(stats.holm_adjust(p_values=raw)[0])
    assert got[0].difference == pytest.approx(groups["plain"].mean() - groups["resnet50"].mean())


def test_compare_scores_edge_cases_are_not_tested_and_not_counted_in_holm():
    got = stats.compare_scores(groups={"a": [3.0, 3.0], "b": [3.0], "c": [], "d": [1.0, 2.0, 1.0]})
    by_pair = {(c.a, c.b): c for c in got}
    assert by_pair[("a", "b")].p_value is None and "identical" in by_pair[("a", "b")].reason
    assert by_pair[("a", "c")].p_value is None and "no rated images" in by_pair[("a", "c")].reason
    tested = [c for c in got if c.p_value is not None]
    assert len(tested) == 2  # a-d and b-d
    assert [c.p_holm for c in tested] == pytest.approx(stats.holm_adjust(p_values=[c.p_value for c in tested])[0])


def test_compare_proportions_matches_statsmodels():
    groups = {"real": (45, 60), "plain": (20, 60), "vgg16": (33, 58)}
    got = stats.compare_proportions(groups=groups)
    for c in got:
        z, p = proportions_ztest([groups[c.a][0], groups[c.b][0]], [groups[c.a][1], groups[c.b][1]])
        assert c.statistic == pytest.approx(z)
        assert c.p_value == pytest.approx(p)
    assert [c.p_holm for c in got] == pytest.approx(stats.holm_adjust(p_values=[c.p_value for c in got])[0])
    degenerate = stats.compare_proportions(groups={"a": (5, 5), "b": (3, 3), "c": (0, 0)})
    assert all(c.p_value is None and c.reason for c in degenerate)


# ------------------------------------------------------------------ correlation


def test_spearman_matches_scipy_and_pandas_with_missing_pairs():
    x = RNG.normal(size=30)
    y = x + RNG.normal(scale=0.8, size=30)
    x_missing = [None if i % 7 == 0 else v for i, v in enumerate(x)]
    got = stats.spearman_correlation(x=x_missing, y=y)
    keep = np.array([v is not None for v in x_missing])
    reference = sps.spearmanr(x[keep], y[keep])
    assert got.n == int(keep.sum())
    assert got.rho == pytest.approx(reference.statistic)
    assert got.rho == pytest.approx(pd.Series(x[keep]).corr(pd.Series(y[keep]), method="spearman"))
    assert got.p_value == pytest.approx(reference.pvalue)
    half = sps.norm.ppf(0.975) * math.sqrt((1 + got.rho**2 / 2) / (got.n - 3))
    assert (got.low, got.high) == pytest.approx((math.tanh(math.atanh(got.rho) - half), math.tanh(math.atanh(got.rho) + half)))


@pytest.mark.parametrize(
    ("x", "y", "reason"),
    [([1, 2], [2, 3], "need at least 3"), ([1, 1, 1, 1], [1, 2, 3, 4], "constant"), ([], [], "need at least 3")],
)
def test_spearman_edge_cases(x, y, reason):
    got = stats.spearman_correlation(x=x, y=y)
    assert got.rho is None and reason in got.reason
    assert _finite_or_none(got.as_dict())


def test_spearman_perfect_monotone_has_no_interval_but_no_nan():
    got = stats.spearman_correlation(x=[1, 2, 3, 4, 5], y=[1, 4, 9, 16, 25])
    assert got.rho == pytest.approx(1.0) and got.low is None
    assert _finite_or_none(got.as_dict())


# ----------------------------------------------------------------- sample size


def test_ratings_needed_for_mean_is_the_smallest_n_reaching_the_width():
    sd, width = 1.1, 0.3
    got = stats.ratings_needed_for_mean(sd=sd, current=40, width=width)
    n = got.needed

    def t_width(m):
        low, high = sps.t.interval(0.95, m - 1, loc=0, scale=sd / math.sqrt(m))
        return high - low

    assert t_width(n) <= width < t_width(n - 1)
    assert got.additional == n - 40
    with_deff = stats.ratings_needed_for_mean(sd=sd, current=40, width=width, design_effect=2.5)
    assert with_deff.needed == math.ceil(n * 2.5)


def test_ratings_needed_for_proportion_is_the_smallest_n_reaching_the_width():
    p, width = 0.3, 0.1
    got = stats.ratings_needed_for_proportion(p=p, current=50, width=width)
    n = got.needed

    def w(m):
        low, high = proportion_confint(p * m, m, method="wilson")
        return high - low

    assert w(n) <= width < w(n - 1)
    # The normal-approximation (Wald) size from statsmodels is close for p away from 0 and 1.
    from statsmodels.stats.proportion import samplesize_confint_proportion

    assert n == pytest.approx(samplesize_confint_proportion(p, width / 2), rel=0.05)


def test_sample_size_edge_cases():
    assert stats.ratings_needed_for_mean(sd=None, current=1, width=0.2).needed is None
    assert stats.ratings_needed_for_mean(sd=1.0, current=10, width=0).needed is None
    assert stats.ratings_needed_for_mean(sd=0.0, current=10, width=0.2).additional == 0
    assert stats.ratings_needed_for_proportion(p=None, current=0, width=0.1).reason == "no share observed yet"
    enough = stats.ratings_needed_for_proportion(p=0.5, current=10_000, width=0.1)
    assert enough.additional == 0


def test_design_effect():
    clustered = stats.Estimate(value=3, low=2.0, high=4.0)
    independent = stats.Estimate(value=3, low=2.5, high=3.5)
    assert stats.design_effect(clustered=clustered, independent=independent) == pytest.approx(4.0)
    assert stats.design_effect(clustered=stats.Estimate(value=3), independent=independent) == 1.0


def test_estimate_never_holds_nan():
    e = stats.Estimate(value=float("nan"), low=float("inf"), high=1.0)
    assert e.value is None and e.low is None and e.high == 1.0
