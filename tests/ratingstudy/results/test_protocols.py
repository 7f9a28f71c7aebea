"""Protocol analyses (2AFC, diagnosis, non-inferiority, ROC, staircase, heatmap) against
SciPy, statsmodels, scikit-learn and slow hand computations on the same data."""

from __future__ import annotations

import io
import json
import math
from fractions import Fraction

import matplotlib
import numpy as np
import pytest
from PIL import Image
from scipy import stats as sps
from sklearn.metrics import (
    accuracy_score,
    cohen_kappa_score,
    confusion_matrix,
    recall_score,
    roc_auc_score,
    roc_curve,
)
from statsmodels.stats.inter_rater import cohens_kappa
from statsmodels.stats.proportion import proportion_confint
from statsmodels.stats.weightstats import DescrStatsW

from ratingstudy.results import protocols, stats


def _json_clean(obj) -> bool:
    """True when ``obj`` survives strict JSON (no NaN or infinity anywhere)."""
    json.dumps(obj, allow_nan=False)
    return True


def _assert_wilson(estimate: dict, successes: int, trials: int) -> None:
    low, high = proportion_confint(successes, trials, alpha=0.05, method="wilson")
    assert estimate["value"] == pytest.approx(successes / trials, abs=1e-12)
    assert (estimate["low"], estimate["high"]) == pytest.approx((low, high), abs=1e-12)
    assert estimate["n"] == trials


# ---------------------------------------------------------------------------- 2AFC


def _paired_trials(seed: int, n: int = 150, p: float = 0.4):
    rng = np.random.default_rng(seed)
    return rng.random(n) < p, rng.integers(0, 9, n), rng.integers(100, 130, n)


def test_fooling_rate_wilson_and_bootstrap():
    fooled, raters, images = _paired_trials(1)
    got = protocols.fooling_rate(chose_generated=fooled, raters=raters, images=images, seed=7, n_boot=400)
    k = int(fooled.sum())
    assert (got["n"], got["fooled"]) == (150, k)
    _assert_wilson(got["rate"], k, 150)
    # The bootstrap resamples raters and the generated images, with the caller's seed.
    direct = stats.cluster_bootstrap_mean(values=fooled.astype(float), raters=raters, images=images, n_boot=400, seed=7)
    assert got["bootstrap"] == direct.as_dict()
    assert got["bootstrap"]["low"] < k / 150 < got["bootstrap"]["high"]
    assert _json_clean(got)


@pytest.mark.parametrize(("fooled", "n"), [(37, 100), (50, 100), (3, 20), (18, 20), (0, 7)])
def test_fooling_rate_binomial_tests(fooled, n):
    chose = np.array([True] * fooled + [False] * (n - fooled))
    got = protocols.fooling_rate(chose_generated=chose, raters=np.zeros(n), images=np.arange(n), seed=0, n_boot=50)
    assert got["binomial_p"] == pytest.approx(sps.binomtest(fooled, n, 0.5).pvalue, rel=1e-12)
    assert got["binomial_p_below_half"] == pytest.approx(sps.binomtest(fooled, n, 0.5, alternative="less").pvalue, rel=1e-12)
    # By hand from the Binomial(n, 1/2) pmf: the null is symmetric, so the two-sided p is
    # twice the smaller tail (capped at 1) and the one-sided p is the lower tail.
    pmf = [Fraction(math.comb(n, i), 2**n) for i in range(n + 1)]
    lower, upper = sum(pmf[: fooled + 1]), sum(pmf[fooled:])
    assert got["binomial_p"] == pytest.approx(float(min(1, 2 * min(lower, upper))), rel=1e-12)
    assert got["binomial_p_below_half"] == pytest.approx(float(lower), rel=1e-12)


def test_fooling_rate_empty_and_mismatched():
    got = protocols.fooling_rate(chose_generated=np.array([], bool), raters=np.array([]), images=np.array([]), seed=0)
    assert got["rate"]["value"] is None and got["binomial_p"] is None and got["rate"]["reason"]
    assert _json_clean(got)
    with pytest.raises(ValueError, match="one entry per trial"):
        protocols.fooling_rate(chose_generated=np.ones(3, bool), raters=np.zeros(2), images=np.zeros(3), seed=0)


# ----------------------------------------------------------------------- diagnosis


def _diagnoses(seed: int, n: int = 180):
    rng = np.random.default_rng(seed)
    truth = rng.choice(["benign", "malignant"], n, p=[0.45, 0.55])
    flip = rng.random(n) < 0.25
    answer = np.where(flip, np.where(truth == "benign", "malignant", "benign"), truth)
    return truth, answer


def test_diagnostic_accuracy_matches_sklearn_and_statsmodels():
    truth, answer = _diagnoses(3)
    got = protocols.diagnostic_accuracy(truth=truth, answer=answer)
    (tn, fp), (fn, tp) = confusion_matrix(truth, answer, labels=["benign", "malignant"])
    assert got["n"] == truth.size
    _assert_wilson(got["accuracy"], tn + tp, truth.size)
    _assert_wilson(got["sensitivity"], tp, tp + fn)
    _assert_wilson(got["specificity"], tn, tn + fp)
    assert got["accuracy"]["value"] == pytest.approx(accuracy_score(truth, answer))
    assert got["sensitivity"]["value"] == pytest.approx(recall_score(truth, answer, pos_label="malignant"))
    assert got["specificity"]["value"] == pytest.approx(recall_score(truth, answer, pos_label="benign"))
    assert _json_clean(got)


def test_diagnostic_kappa_and_interval_match_statsmodels():
    truth, answer = _diagnoses(4)
    # A subtype option adds classes: kappa is over all of them, specificity over "not malignant".
    answer = np.where((answer == "benign") & (np.arange(answer.size) % 5 == 0), "benign/fibroadenoma", answer)
    got = protocols.diagnostic_accuracy(truth=truth, answer=answer)
    labels = sorted(set(truth) | set(answer))
    reference = cohens_kappa(confusion_matrix(truth, answer, labels=labels))
    assert got["kappa"]["value"] == pytest.approx(cohen_kappa_score(truth, answer), abs=1e-12)
    assert got["kappa"]["value"] == pytest.approx(reference.kappa, abs=1e-12)
    assert (got["kappa"]["low"], got["kappa"]["high"]) == pytest.approx((reference.kappa_low, reference.kappa_upp), abs=1e-12)
    negatives = truth != "malignant"
    assert got["specificity"]["value"] == pytest.approx(np.mean(answer[negatives] != "malignant"))
    assert got["accuracy"]["value"] == pytest.approx(np.mean(answer == truth))


def test_diagnostic_accuracy_undefined_parts_have_reasons():
    got = protocols.diagnostic_accuracy(truth=np.array(["benign"] * 4), answer=np.array(["benign"] * 4))
    assert got["kappa"]["value"] is None and "undefined" in got["kappa"]["reason"]
    assert got["sensitivity"]["value"] is None and "malignant" in got["sensitivity"]["reason"]
    assert got["specificity"]["value"] == 1.0
    assert _json_clean(got)
    empty = protocols.diagnostic_accuracy(truth=np.array([]), answer=np.array([]))
    assert empty["accuracy"]["value"] is None and empty["kappa"]["value"] is None


# ----------------------------------------------------------------- non-inferiority


@pytest.mark.parametrize(("seed", "margin", "alpha"), [(5, 0.1, 0.05), (6, 0.05, 0.025), (7, 0.0, 0.05), (8, 0.2, 0.1)])
def test_noninferiority_matches_scipy_and_statsmodels(seed, margin, alpha):
    rng = np.random.default_rng(seed)
    real = rng.uniform(0.6, 0.95, 14)
    generated = real + rng.normal(-0.04, 0.06, 14)
    got = protocols.noninferiority(real_accuracy=real, generated_accuracy=generated, margin=margin, alpha=alpha)
    d = generated - real
    assert got["n_readers"] == 14 and got["margin"] == margin
    assert got["difference"]["value"] == pytest.approx(d.mean(), abs=1e-12)
    low, high = DescrStatsW(d).tconfint_mean(alpha=2 * alpha)
    assert (got["difference"]["low"], got["difference"]["high"]) == pytest.approx((low, high), abs=1e-12)
    assert got["p_value"] == pytest.approx(sps.ttest_1samp(d, -margin, alternative="greater").pvalue, rel=1e-10)
    assert got["p_value"] == pytest.approx(DescrStatsW(d).ttest_mean(-margin, alternative="larger")[1], rel=1e-10)
    # The interval decision and the test decision are the same decision.
    assert got["non_inferior"] == (low > -margin) == (got["p_value"] < alpha)
    assert _json_clean(got)


def test_noninferiority_decides_both_ways():
    real = np.array([0.80, 0.85, 0.90, 0.75, 0.82, 0.88])
    close = protocols.noninferiority(real_accuracy=real, generated_accuracy=real - [0.01, 0.0, 0.02, -0.01, 0.01, 0.0], margin=0.1)
    worse = protocols.noninferiority(real_accuracy=real, generated_accuracy=real - [0.2, 0.25, 0.15, 0.3, 0.2, 0.22], margin=0.1)
    assert close["non_inferior"] is True and close["p_value"] < 0.05
    assert worse["non_inferior"] is False and worse["p_value"] > 0.5


def test_noninferiority_edge_cases():
    one = protocols.noninferiority(real_accuracy=np.array([0.8, np.nan]), generated_accuracy=np.array([0.7, 0.9]), margin=0.1)
    assert one["n_readers"] == 1 and one["non_inferior"] is None and one["p_value"] is None and "at least 2" in one["reason"]
    same = protocols.noninferiority(real_accuracy=np.array([0.8, 0.7]), generated_accuracy=np.array([0.75, 0.65]), margin=0.1)
    assert same["p_value"] is None and same["non_inferior"] is True and "same difference" in same["reason"]
    assert _json_clean(one) and _json_clean(same)
    with pytest.raises(ValueError, match="margin"):
        protocols.noninferiority(real_accuracy=np.ones(3), generated_accuracy=np.ones(3), margin=-0.1)


# ----------------------------------------------------------------------------- ROC


def test_rating_score_orders_the_scale():
    got = protocols.rating_score(judged_generated=np.array([False, False, True, True, False]), confidence=np.array([5, 1, 1, 5, 3]))
    assert got.tolist() == [-5, -1, 1, 5, -3]
    with pytest.raises(ValueError, match="start at 1"):
        protocols.rating_score(judged_generated=np.array([True]), confidence=np.array([0]))


def _slow_delong(truth: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """DeLong et al. (1988) as written: structural components by double loops."""
    x, y = score[truth], score[~truth]
    m, n = len(x), len(y)

    def psi(a, b):
        return 1.0 if a > b else 0.5 if a == b else 0.0

    v10 = [sum(psi(xi, yj) for yj in y) / n for xi in x]
    v01 = [sum(psi(xi, yj) for xi in x) / m for yj in y]
    auc = sum(v10) / m
    s10 = sum((v - auc) ** 2 for v in v10) / (m - 1)
    s01 = sum((v - auc) ** 2 for v in v01) / (n - 1)
    return auc, s10 / m + s01 / n


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_delong_variance_matches_slow_reference(seed):
    rng = np.random.default_rng(seed)
    truth = rng.random(70) < 0.45
    # A 6-point confidence scale on both answers: heavy ties.
    score = protocols.rating_score(judged_generated=rng.random(70) < np.where(truth, 0.7, 0.35), confidence=rng.integers(1, 7, 70))
    auc, variance = protocols.delong_variance(is_generated=truth, score=score)
    slow_auc, slow_variance = _slow_delong(truth, score.astype(float))
    assert auc == pytest.approx(slow_auc, abs=1e-12)
    assert variance == pytest.approx(slow_variance, abs=1e-12)
    assert auc == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    with pytest.raises(ValueError, match="two or more"):
        protocols.delong_variance(is_generated=np.array([True, False, False]), score=np.array([1.0, 2.0, 3.0]))


def test_roc_analysis_matches_sklearn():
    rng = np.random.default_rng(21)
    readers = np.repeat([4, 9, 17], 60)
    truth = rng.random(180) < 0.5
    score = np.where(truth, 1, -1) * rng.integers(1, 6, 180) * np.where(rng.random(180) < 0.7, 1, -1)
    got = protocols.roc_analysis(is_generated=truth, score=score, readers=readers)
    pooled = got["pooled"]
    fpr, tpr, _ = roc_curve(truth, score, drop_intermediate=False)
    assert pooled["auc"] == pytest.approx(roc_auc_score(truth, score), abs=1e-12)
    assert pooled["fpr"] == pytest.approx(fpr.tolist()) and pooled["tpr"] == pytest.approx(tpr.tolist())
    auc, variance = _slow_delong(truth, score.astype(float))
    assert pooled["variance"] == pytest.approx(variance, abs=1e-12)
    half = sps.norm.ppf(0.975) * math.sqrt(variance)
    assert (pooled["low"], pooled["high"]) == pytest.approx((auc - half, auc + half), abs=1e-12)
    assert [r["reader"] for r in got["readers"]] == [4, 9, 17]
    for entry in got["readers"]:
        mine = readers == entry["reader"]
        assert entry["auc"] == pytest.approx(roc_auc_score(truth[mine], score[mine]), abs=1e-12)
        assert entry["n"] == 60
        assert entry["fpr"] == pytest.approx(roc_curve(truth[mine], score[mine], drop_intermediate=False)[0].tolist())
    low, high = DescrStatsW(np.array([r["auc"] for r in got["readers"]])).tconfint_mean()
    assert (got["reader_mean"]["low"], got["reader_mean"]["high"]) == pytest.approx((low, high), abs=1e-12)
    assert _json_clean(got)


def test_roc_analysis_degenerate_readers_and_clipping():
    truth = np.array([True, True, True, False, False, False, True, True])
    score = np.array([5, 4, 6, -3, -5, -1, 2, 3])
    readers = np.array(["a"] * 6 + ["b"] * 2)
    got = protocols.roc_analysis(is_generated=truth, score=score, readers=readers)
    a, b = got["readers"]
    assert a["auc"] == 1.0 and (a["low"], a["high"]) == (1.0, 1.0) and "perfectly" in a["reason"]
    # Every threshold of the rating scale is an operating point, collinear ones included.
    assert a["fpr"] == pytest.approx([0, 0, 0, 0, 1 / 3, 2 / 3, 1]) and a["tpr"] == pytest.approx([0, 1 / 3, 2 / 3, 1, 1, 1, 1])
    assert b["reader"] == "b" and b["auc"] is None and b["low"] is None and "both" in b["reason"]
    one_real = protocols.roc_analysis(is_generated=np.array([True, True, False]), score=np.array([3, 1, 2]), readers=np.zeros(3))
    assert one_real["pooled"]["auc"] == 0.5 and one_real["pooled"]["low"] is None and "two of each" in one_real["pooled"]["reason"]
    assert _json_clean(got) and _json_clean(one_real)


# ------------------------------------------------------------------------ staircase


def test_staircase_threshold_finds_reversals_by_hand():
    # Turning points (reversals): 500 (idx 5), 600 (7), 400 (10), 700 (13), 500 (16), 600 (17),
    # 400 (19); plateaus do not change direction, and the final flat step is no reversal.
    track = [900, 800, 700, 600, 500, 500, 600, 600, 500, 400, 400, 500, 600, 700, 600, 500, 500, 600, 500, 400, 500, 500]
    got = protocols.staircase_threshold(levels_ms=track, reversals_used=4, skip_first=2)
    assert got["reversals"] == [500, 600, 400, 700, 500, 600, 400]
    assert got["threshold_ms"] == pytest.approx(np.mean([700, 500, 600, 400]))
    assert (got["n_used"], got["n_trials"], got["reason"]) == (4, len(track), "")
    few = protocols.staircase_threshold(levels_ms=track, reversals_used=6, skip_first=2)
    assert few["threshold_ms"] == pytest.approx(np.mean([400, 700, 500, 600, 400])) and "only 5" in few["reason"]
    none = protocols.staircase_threshold(levels_ms=[1000, 900, 800, 900], skip_first=2)
    assert none["threshold_ms"] is None and none["reversals"] == [800] and "none after" in none["reason"]
    assert protocols.staircase_threshold(levels_ms=[])["threshold_ms"] is None
    assert _json_clean(got) and _json_clean(none)


def test_staircase_summary_matches_scipy_bootstrap():
    thresholds = {1: 420.0, 2: 510.0, 3: 380.0, 5: 640.0, 8: 455.0, 13: 300.0, 21: None}
    got = protocols.staircase_summary(thresholds_by_rater=thresholds, seed=99, n_boot=1500)
    values = np.array([420.0, 510.0, 380.0, 640.0, 455.0, 300.0])
    reference = sps.bootstrap(
        (values,), np.mean, n_resamples=1500, method="percentile", confidence_level=0.95, rng=np.random.default_rng(99)
    ).confidence_interval
    assert got["value"] == pytest.approx(values.mean()) and got["n"] == 6
    assert (got["low"], got["high"]) == pytest.approx((reference.low, reference.high), abs=1e-12)
    other_seed = protocols.staircase_summary(thresholds_by_rater=thresholds, seed=100, n_boot=1500)
    assert (other_seed["low"], other_seed["high"]) != (got["low"], got["high"])


def test_staircase_summary_edge_cases():
    assert protocols.staircase_summary(thresholds_by_rater={}, seed=0)["value"] is None
    one = protocols.staircase_summary(thresholds_by_rater={3: 500.0}, seed=0)
    assert one["value"] == 500.0 and one["low"] is None and "one rater" in one["reason"]
    same = protocols.staircase_summary(thresholds_by_rater={1: 400.0, 2: 400.0}, seed=0)
    assert (same["low"], same["high"]) == (400.0, 400.0)


# -------------------------------------------------------------------------- heatmap


def _lattice(grid: int) -> np.ndarray:
    centres = (np.arange(grid) + 0.5) / grid
    xx, yy = np.meshgrid(centres, centres)
    return np.vstack([xx.ravel(), yy.ravel()])


def test_marks_density_equals_gaussian_kde_for_points():
    rng = np.random.default_rng(31)
    points = np.clip(rng.normal([0.3, 0.7], 0.08, size=(40, 2)), 0, 1)
    got = protocols.marks_density(points=points, boxes=np.empty((0, 4)), grid=32)
    expected = sps.gaussian_kde(points.T)(_lattice(32)).reshape(32, 32)
    np.testing.assert_allclose(got, expected / expected.max(), rtol=1e-10, atol=1e-12)
    # Rows are y (down), columns x (right): the peak sits near x = 0.3, y = 0.7.
    row, col = np.unravel_index(np.argmax(got), got.shape)
    assert abs((col + 0.5) / 32 - 0.3) < 0.08 and abs((row + 0.5) / 32 - 0.7) < 0.08


def test_marks_density_box_is_its_five_by_five_samples():
    box = np.array([[0.2, 0.1, 0.3, 0.2]])
    offsets = (np.arange(5) + 0.5) / 5
    samples = np.array([[0.2 + 0.3 * ox, 0.1 + 0.2 * oy] for oy in offsets for ox in offsets])
    from_box = protocols.marks_density(points=np.empty((0, 2)), boxes=box, grid=24)
    from_points = protocols.marks_density(points=samples, boxes=np.empty((0, 4)), grid=24)
    np.testing.assert_allclose(from_box, from_points, atol=1e-12)
    # Weights: a box weighs one point in all, 1/25 per sample (gaussian_kde with weights).
    mixed = protocols.marks_density(points=np.array([[0.8, 0.8]]), boxes=box, grid=24)
    weights = np.concatenate([[1.0], np.full(25, 1 / 25)])
    expected = sps.gaussian_kde(np.vstack([[0.8, 0.8], samples]).T, weights=weights)(_lattice(24)).reshape(24, 24)
    np.testing.assert_allclose(mixed, expected / expected.max(), rtol=1e-10, atol=1e-12)


def test_marks_density_is_symmetric_for_symmetric_marks():
    points = np.array([[0.2, 0.3], [0.8, 0.3], [0.35, 0.6], [0.65, 0.6], [0.5, 0.9]])
    boxes = np.array([[0.1, 0.7, 0.1, 0.1], [0.8, 0.7, 0.1, 0.1]])  # mirror images about x = 0.5
    got = protocols.marks_density(points=points, boxes=boxes, grid=40)
    np.testing.assert_allclose(got, got[:, ::-1], atol=1e-12)
    assert not np.allclose(got, got[::-1, :])  # but not symmetric top-bottom
    assert got.shape == (40, 40) and got.max() == pytest.approx(1.0)


def test_marks_density_fallbacks():
    assert not protocols.marks_density(points=np.empty((0, 2)), boxes=np.empty((0, 4)), grid=8).any()
    single = protocols.marks_density(points=np.array([[0.25, 0.75]]), boxes=np.empty((0, 4)), grid=16)
    centres = (np.arange(16) + 0.5) / 16
    gx = np.exp(-0.5 * ((centres - 0.25) / protocols.FALLBACK_BANDWIDTH) ** 2)
    gy = np.exp(-0.5 * ((centres - 0.75) / protocols.FALLBACK_BANDWIDTH) ** 2)
    expected = np.outer(gy, gx)
    np.testing.assert_allclose(single, expected / expected.max(), atol=1e-12)
    # Marks on one line: singular covariance, same fallback rather than an error.
    line = protocols.marks_density(points=np.array([[0.1, 0.5], [0.5, 0.5], [0.9, 0.5]]), boxes=np.empty((0, 4)), grid=16)
    assert np.isfinite(line).all() and line.max() == pytest.approx(1.0)
    assert np.argmax(line.max(axis=1)) in (7, 8)  # the row of y = 0.5
    wide = protocols.marks_density(points=np.array([[0.25, 0.75]]), boxes=np.empty((0, 4)), grid=16, bandwidth=0.2)
    assert wide.min() > single.min()


def test_viridis_lookup_follows_matplotlib():
    values = np.linspace(0, 1, 257)
    reference = matplotlib.colormaps["viridis"](values)[:, :3] * 255
    assert np.abs(protocols._viridis(values) - reference).max() < 6


def test_heatmap_png_size_and_untouched_pixels():
    rng = np.random.default_rng(41)
    mean_image = rng.integers(0, 256, size=(90, 120, 3), dtype=np.uint8)
    density = np.zeros((16, 16))
    density[:, 10:] = 1.0  # right part marked, left part never
    png = protocols.heatmap_png(density=density, mean_image=mean_image)
    out = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))
    assert out.shape == mean_image.shape
    left = slice(0, 120 * 9 // 16 - 2)  # clear of the bilinear ramp
    np.testing.assert_array_equal(out[:, left], mean_image[:, left])
    top = np.array([253, 231, 37])  # viridis(1)
    expected = np.rint(0.4 * mean_image[:, -5:].astype(float) + 0.6 * top)
    np.testing.assert_allclose(out[:, -5:], expected, atol=1)
    blank = protocols.heatmap_png(density=np.zeros((8, 8)), mean_image=mean_image[:, :, 0])
    grey = np.asarray(Image.open(io.BytesIO(blank)).convert("RGB"))
    np.testing.assert_array_equal(grey, np.repeat(mean_image[:, :, :1], 3, axis=2))
