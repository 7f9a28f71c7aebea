"""Analyses of the study protocols beyond single-image rating (issue 12): paired 2AFC,
diagnostic reading, non-inferiority, ROC from confidence ratings, HYPE-time staircase
thresholds and the heatmap of marked regions.

Pure functions on arrays, no Django; keyword-only; every result is a JSON-ready dict of
finite floats or ``None`` (with a ``reason`` in words), estimates in the
:meth:`~ratingstudy.results.stats.Estimate.as_dict` shape ``{"value", "low", "high",
"n", "reason"}``. ``tests/ratingstudy/results/test_protocols.py`` checks each statistic
against SciPy, statsmodels or scikit-learn on the same data. scikit-learn is imported
inside the functions that need it so that importing the URLconf stays fast.
"""

from __future__ import annotations

import io
import math
from collections.abc import Sequence

import numpy as np
from PIL import Image
from scipy import stats as sps

from ratingstudy.results.stats import (
    CONFIDENCE,
    Estimate,
    _finite,
    _z,
    cluster_bootstrap_mean,
    mean_t_interval,
    wilson_interval,
)

#: Kernel standard deviation (in image widths/heights) used when the marks are too few or
#: too aligned for Scott's rule: one mark, two marks, or marks on one line.
FALLBACK_BANDWIDTH = 0.05
#: Each box is represented by a BOX_SAMPLES x BOX_SAMPLES grid of points, 1/BOX_SAMPLES^2 each.
BOX_SAMPLES = 5
#: matplotlib's viridis (van der Walt & Smith 2015) at 0, 1/16, ..., 1; linear in between,
#: it stays within 6/255 of the 256-entry original.
VIRIDIS = np.array(
    [
        [0.267004, 0.004874, 0.329415],
        [0.282327, 0.094955, 0.417331],
        [0.278826, 0.175490, 0.483397],
        [0.258965, 0.251537, 0.524736],
        [0.229739, 0.322361, 0.545706],
        [0.199430, 0.387607, 0.554642],
        [0.172719, 0.448791, 0.557885],
        [0.149039, 0.508051, 0.557250],
        [0.127568, 0.566949, 0.550556],
        [0.120638, 0.625828, 0.533488],
        [0.157851, 0.683765, 0.501686],
        [0.246070, 0.738910, 0.452024],
        [0.369214, 0.788888, 0.382914],
        [0.515992, 0.831158, 0.294279],
        [0.678489, 0.863742, 0.189503],
        [0.845561, 0.887322, 0.099702],
        [0.993248, 0.906157, 0.143936],
    ]
)


def _same_length(**arrays: np.ndarray) -> int:
    lengths = {name: len(a) for name, a in arrays.items()}
    if len(set(lengths.values())) > 1:
        raise ValueError(f"arrays must have one entry per trial, got lengths {lengths}")
    return next(iter(lengths.values()), 0)


def _plain(value: object) -> object:
    """A NumPy scalar as the Python int/str/float it holds (for JSON)."""
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------- 2AFC


def fooling_rate(
    *, chose_generated: np.ndarray, raters: np.ndarray, images: np.ndarray, seed: int, n_boot: int = 1000
) -> dict:
    """Share of paired real-vs-generated trials in which the rater picked the generated
    image as the real one (two-alternative forced choice, as in the AMT perceptual study of
    Zhu et al. 2017, "Unpaired image-to-image translation...", ICCV, CycleGAN). 50% means raters cannot tell them apart.

    * ``rate``: ``fooled / n`` with its Wilson interval (:func:`stats.wilson_interval`);
    * ``bootstrap``: the same mean with a two-way (raters x generated images) cluster
      percentile bootstrap (:func:`stats.cluster_bootstrap_mean`), since answers of one
      rater, or on one image, are not independent;
    * ``binomial_p``: exact two-sided binomial test of ``p = 0.5`` (scipy ``binomtest``),
      ``binomial_p_below_half`` its one-sided version ``H1: p < 0.5`` (raters see through
      the generator). Both treat trials as independent.
    """
    fooled_mask = np.asarray(chose_generated, dtype=bool)
    n = _same_length(chose_generated=fooled_mask, raters=np.asarray(raters), images=np.asarray(images))
    fooled = int(fooled_mask.sum())
    if n == 0:
        missing = Estimate(value=None, reason="no paired trials answered").as_dict()
        return {"n": 0, "fooled": 0, "rate": missing, "bootstrap": missing, "binomial_p": None, "binomial_p_below_half": None}
    return {
        "n": n,
        "fooled": fooled,
        "rate": wilson_interval(successes=fooled, trials=n).as_dict(),
        "bootstrap": cluster_bootstrap_mean(
            values=fooled_mask.astype(float), raters=raters, images=images, n_boot=n_boot, seed=seed
        ).as_dict(),
        "binomial_p": _finite(sps.binomtest(fooled, n, 0.5, alternative="two-sided").pvalue),
        "binomial_p_below_half": _finite(sps.binomtest(fooled, n, 0.5, alternative="less").pvalue),
    }


# ----------------------------------------------------------------------- diagnosis


def diagnostic_accuracy(*, truth: np.ndarray, answer: np.ndarray, positive: str = "malignant") -> dict:
    """Readers' diagnoses of images against the true class (for generated images, the class
    the generator was asked to produce).

    * ``accuracy``: ``answer == truth`` over all answers;
    * ``sensitivity``: ``answer == positive`` over images with ``truth == positive``;
    * ``specificity``: ``answer != positive`` over the other images;
      each with its Wilson interval (:func:`stats.wilson_interval`);
    * ``kappa``: Cohen's (1960) kappa of answer vs truth (scikit-learn
      ``cohen_kappa_score``), ``(p_o - p_e) / (1 - p_e)``, with the large-sample interval
      ``kappa +- z * se`` of Fleiss, Cohen & Everitt (1969, Psychol. Bull. 72:323-327),
      clipped to [-1, 1] (before clipping, statsmodels ``cohens_kappa``'s interval). ``None``
      when every answer and every truth is the one class (``p_e = 1``).
    """
    t = np.asarray(truth, dtype=object).astype(str)
    a = np.asarray(answer, dtype=object).astype(str)
    n = _same_length(truth=t, answer=a)
    is_pos = t == positive
    said_pos = a == positive
    n_pos = int(is_pos.sum())
    n_neg = n - n_pos
    sensitivity = wilson_interval(successes=int((said_pos & is_pos).sum()), trials=n_pos)
    specificity = wilson_interval(successes=int((~said_pos & ~is_pos).sum()), trials=n_neg)
    return {
        "n": n,
        "accuracy": wilson_interval(successes=int((a == t).sum()), trials=n).as_dict(),
        "sensitivity": sensitivity.as_dict() if n_pos else Estimate(value=None, reason=f"no {positive} images").as_dict(),
        "specificity": specificity.as_dict() if n_neg else Estimate(value=None, reason=f"no images other than {positive}").as_dict(),
        "kappa": _kappa(truth=t, answer=a).as_dict(),
    }


def _kappa(*, truth: np.ndarray, answer: np.ndarray, confidence: float = CONFIDENCE) -> Estimate:
    from sklearn.metrics import cohen_kappa_score

    n = len(truth)
    if n == 0:
        return Estimate(value=None, reason="no answers")
    labels = np.unique(np.concatenate([truth, answer]))
    if labels.size < 2:
        return Estimate(value=None, n=n, reason="every image and every answer is the same class: kappa is undefined")
    kappa = float(cohen_kappa_score(truth, answer, labels=labels))
    # Fleiss, Cohen & Everitt (1969) variance from the joint proportions p_ij (rows truth).
    index = {label: i for i, label in enumerate(labels)}
    p = np.zeros((labels.size, labels.size))
    np.add.at(p, ([index[x] for x in truth], [index[x] for x in answer]), 1.0 / n)
    rows, cols = p.sum(axis=1), p.sum(axis=0)
    p_e = float(rows @ cols)
    diagonal = float((np.diag(p) * (1 - (rows + cols) * (1 - kappa)) ** 2).sum())
    off = p * (cols[:, None] + rows[None, :]) ** 2  # p_ij (p_.i + p_j.)^2
    np.fill_diagonal(off, 0.0)
    variance = (diagonal + (1 - kappa) ** 2 * off.sum() - (kappa - p_e * (1 - kappa)) ** 2) / ((1 - p_e) ** 2 * n)
    half = _z(confidence) * math.sqrt(max(variance, 0.0))
    return Estimate(value=kappa, low=max(-1.0, kappa - half), high=min(1.0, kappa + half), n=n)


def noninferiority(
    *, real_accuracy: np.ndarray, generated_accuracy: np.ndarray, margin: float, alpha: float = 0.05
) -> dict:
    """Paired non-inferiority of reader accuracy on generated vs real images.

    Element ``i`` of both arrays is one reader; readers missing either accuracy (NaN) are
    left out. With ``d_i = generated_i - real_i`` and margin ``delta >= 0``:

        H0: mean(d) <= -delta   vs   H1: mean(d) > -delta
        t = (mean(d) + delta) / (s_d / sqrt(n)),  one-sided p from t_{n-1}

    (scipy ``ttest_1samp(d, -delta, alternative="greater")``). Generated images are
    non-inferior when the lower bound of the two-sided ``1 - 2 alpha`` t interval of
    ``mean(d)`` lies above ``-delta``, which is the same decision as ``p < alpha``
    (CONSORT non-inferiority extension, Piaggio et al. 2012, JAMA 308:2594).
    """
    if not (math.isfinite(margin) and margin >= 0):
        raise ValueError(f"the non-inferiority margin must be a finite number >= 0, got {margin!r}")
    if not 0 < alpha < 0.5:
        raise ValueError(f"alpha must lie in (0, 0.5), got {alpha!r}")
    real = np.asarray(real_accuracy, dtype=float)
    generated = np.asarray(generated_accuracy, dtype=float)
    _same_length(real_accuracy=real, generated_accuracy=generated)
    d = (generated - real)[np.isfinite(generated) & np.isfinite(real)]
    n = int(d.size)
    result = {"n_readers": n, "margin": float(margin), "alpha": float(alpha), "p_value": None, "non_inferior": None, "reason": ""}
    difference = mean_t_interval(values=d, confidence=1 - 2 * alpha)
    result["difference"] = difference.as_dict()
    if n < 2:
        result["reason"] = f"{n} reader(s) with accuracies on both real and generated images: need at least 2"
        return result
    result["non_inferior"] = bool(difference.low > -margin)
    if np.ptp(d) <= 1e-12:  # identical up to rounding: the t statistic is meaningless
        result["reason"] = "every reader has the same difference: no t test"
        return result
    result["p_value"] = _finite(sps.ttest_1samp(d, -margin, alternative="greater").pvalue)
    return result


# ----------------------------------------------------------------------------- ROC


def rating_score(*, judged_generated: np.ndarray, confidence: np.ndarray) -> np.ndarray:
    """One ordinal score per answer from the judgment and its confidence ``1..K`` (Metz
    1978 rating method): ``+c`` for "generated" with confidence ``c``, ``-c`` for "real",
    so higher means more sure the image is generated and the 2K categories are ordered
    from "surely real" (``-K``) to "surely generated" (``+K``)."""
    judged = np.asarray(judged_generated, dtype=bool)
    c = np.asarray(confidence, dtype=int)
    _same_length(judged_generated=judged, confidence=c)
    if c.size and c.min() < 1:
        raise ValueError(f"confidence ratings start at 1, got {int(c.min())}")
    return np.where(judged, c, -c)


def delong_variance(*, is_generated: np.ndarray, score: np.ndarray) -> tuple[float, float]:
    """AUC and its DeLong variance (DeLong, DeLong & Clarke-Pearson 1988, Biometrics
    44:837-845), by the midrank algorithm of Sun & Xu (2014, IEEE Signal Process. Lett.
    21:1389-1393).

    With ``m`` positives ``X`` (generated), ``n`` negatives ``Y`` and
    ``psi(x, y) = 1 [x > y] + 1/2 [x = y]``::

        AUC    = 1/(mn) sum_ij psi(X_i, Y_j)
        V10_i  = 1/n sum_j psi(X_i, Y_j),   V01_j = 1/m sum_i psi(X_i, Y_j)
        S10    = sum_i (V10_i - AUC)^2 / (m-1),   S01 likewise over j with n-1
        Var    = S10 / m + S01 / n

    ``V10_i = (rank of X_i among all - rank among X) / n`` with midranks. Needs at least
    two images of each class (``ValueError`` otherwise).
    """
    truth = np.asarray(is_generated, dtype=bool)
    s = np.asarray(score, dtype=float)
    _same_length(is_generated=truth, score=s)
    x, y = s[truth], s[~truth]
    m, n = x.size, y.size
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's variance needs two or more images of each class, got {m} generated and {n} real")
    rank_all = sps.rankdata(np.concatenate([x, y]))
    v10 = (rank_all[:m] - sps.rankdata(x)) / n
    v01 = 1 - (rank_all[m:] - sps.rankdata(y)) / m
    auc = float(v10.mean())
    return auc, float(v10.var(ddof=1) / m + v01.var(ddof=1) / n)


def roc_curve_points(*, truth: np.ndarray, score: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """``(fpr, tpr, auc)`` of the empirical ROC through every distinct score, as scikit-learn's
    ``roc_curve(truth, score, drop_intermediate=False)`` and ``roc_auc_score`` compute them
    (the test checks both): a threshold at each distinct score, highest first, after a
    leading ``(0, 0)``; the AUC is the trapezoid area under that curve (ties count 1/2).

    Written in NumPy because scikit-learn's input validation, not the arithmetic, took most
    of the results snapshot's time with one curve per reader (97 curves: 0.47 s of 1.4 s
    at 20,000 responses); both classes must be present.
    """
    order = np.argsort(-score, kind="mergesort")
    sorted_score, hits = score[order], truth[order].astype(float)
    last_of_each = np.r_[np.flatnonzero(np.diff(sorted_score)), sorted_score.size - 1]
    tps = np.cumsum(hits)[last_of_each]
    fps = 1 + last_of_each - tps
    tpr = np.r_[0.0, tps] / tps[-1]
    fpr = np.r_[0.0, fps] / fps[-1]
    return fpr, tpr, float(np.trapezoid(tpr, fpr))


def _roc_entry(*, truth: np.ndarray, score: np.ndarray, confidence: float) -> dict:
    """AUC, DeLong variance, normal interval clipped to [0, 1], ROC curve."""
    m, n = int(truth.sum()), int((~truth).sum())
    entry = {"auc": None, "low": None, "high": None, "variance": None, "n": m + n, "fpr": [], "tpr": [], "reason": ""}
    if m == 0 or n == 0:
        entry["reason"] = f"{m} generated and {n} real images answered: the ROC needs both"
        return entry
    fpr, tpr, auc = roc_curve_points(truth=truth, score=score)
    entry.update(auc=auc, fpr=fpr.tolist(), tpr=tpr.tolist())
    if m < 2 or n < 2:
        entry["reason"] = f"{m} generated and {n} real images: DeLong's variance needs two of each"
        return entry
    _, variance = delong_variance(is_generated=truth, score=score)
    half = _z(confidence) * math.sqrt(variance)
    entry.update(variance=variance, low=max(0.0, entry["auc"] - half), high=min(1.0, entry["auc"] + half))
    if variance == 0:
        entry["reason"] = "the scores separate the classes perfectly: zero variance"
    return entry


def roc_analysis(
    *, is_generated: np.ndarray, score: np.ndarray, readers: np.ndarray, confidence: float = CONFIDENCE
) -> dict:
    """Pooled and per-reader ROC of telling generated from real images by a rating score
    (:func:`rating_score`).

    For each: the empirical ROC curve through every threshold and its AUC (ties count 1/2),
    as scikit-learn computes them (:func:`roc_curve_points`), its
    DeLong variance (:func:`delong_variance`) and the normal interval ``AUC +- z sqrt(Var)``
    clipped to [0, 1] (as pROC's ``ci.auc(method="delong")``). The pooled curve puts all
    readers' answers together and its variance treats them as independent cases, ignoring
    reader variability; ``reader_mean`` is the mean of the per-reader AUCs with a t
    interval across readers (readers as a random sample, cf. Obuchowski & Rockette 1995 for
    the full multi-reader analysis).
    """
    truth = np.asarray(is_generated, dtype=bool)
    s = np.asarray(score, dtype=float)
    who = np.asarray(readers)
    _same_length(is_generated=truth, score=s, readers=who)
    pooled = _roc_entry(truth=truth, score=s, confidence=confidence)
    per_reader = []
    for reader in np.unique(who):
        mine = who == reader
        per_reader.append({"reader": _plain(reader), **_roc_entry(truth=truth[mine], score=s[mine], confidence=confidence)})
    aucs = [r["auc"] for r in per_reader if r["auc"] is not None]
    return {
        "pooled": pooled,
        "readers": per_reader,
        "reader_mean": mean_t_interval(values=aucs, confidence=confidence).as_dict(),
    }


# ------------------------------------------------------------------------ staircase


def staircase_threshold(*, levels_ms: Sequence[int], reversals_used: int = 6, skip_first: int = 2) -> dict:
    """Threshold exposure of one staircase (HYPE-time; Zhou et al. 2019) from its track of
    exposures, one per trial in order.

    A reversal is a change of direction of the track (Levitt 1971): its exposure is the
    level at the turning point, where the last move in one direction ended; trials at the
    same level as the previous one do not change the direction. The threshold is the mean
    exposure of the last ``reversals_used`` reversals after the first ``skip_first`` are
    dropped (the descent from the starting level). With fewer, it uses those there are and
    says so; with none, it is ``None``.
    """
    if reversals_used < 1 or skip_first < 0:
        raise ValueError(f"need reversals_used >= 1 and skip_first >= 0, got {reversals_used} and {skip_first}")
    track = [float(v) for v in levels_ms]
    reversals: list[float] = []
    direction = 0
    for before, after in zip(track, track[1:], strict=False):
        step = int(np.sign(after - before))
        if step == 0:
            continue
        if direction and step != direction:
            reversals.append(before)
        direction = step
    usable = reversals[skip_first:]
    used = usable[-reversals_used:]
    reason = ""
    if not used:
        reason = f"{len(reversals)} reversal(s), none after skipping the first {skip_first}: no threshold"
    elif len(used) < reversals_used:
        reason = f"only {len(used)} reversal(s) after skipping the first {skip_first}: threshold from {len(used)}, not {reversals_used}"
    return {
        "threshold_ms": float(np.mean(used)) if used else None,
        "reversals": reversals,
        "n_used": len(used),
        "n_trials": len(track),
        "reason": reason,
    }


def staircase_summary(*, thresholds_by_rater: dict[int, float], seed: int, n_boot: int = 2000) -> dict:
    """Mean threshold exposure over raters with a percentile bootstrap interval over raters
    (scipy ``bootstrap(method="percentile")`` with ``rng=np.random.default_rng(seed)``;
    Efron & Tibshirani 1993, ch. 13). Raters without a threshold (``None``) are left out.
    Returns an :class:`Estimate` dict; ``n`` is the number of raters."""
    values = np.array([v for v in thresholds_by_rater.values() if _finite(v) is not None], dtype=float)
    n = int(values.size)
    if n == 0:
        return Estimate(value=None, reason="no rater has a threshold yet").as_dict()
    mean = float(values.mean())
    if n == 1:
        return Estimate(value=mean, n=1, reason="one rater: no interval").as_dict()
    if np.ptp(values) == 0:
        return Estimate(value=mean, low=mean, high=mean, n=n, reason="every rater has the same threshold: zero-width interval").as_dict()
    result = sps.bootstrap(
        (values,), np.mean, n_resamples=n_boot, confidence_level=CONFIDENCE, method="percentile", rng=np.random.default_rng(seed)
    )
    low, high = result.confidence_interval
    return Estimate(value=mean, low=low, high=high, n=n).as_dict()


# -------------------------------------------------------------------------- heatmap


def _mark_samples(*, points: np.ndarray, boxes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(K, 2)`` sample locations and their weights: points weigh 1 each, a box is the
    centres of a ``BOX_SAMPLES x BOX_SAMPLES`` split of it, weighing ``1/BOX_SAMPLES^2``."""
    pts = np.asarray(points, dtype=float).reshape(-1, 2)
    bxs = np.asarray(boxes, dtype=float).reshape(-1, 4)
    offsets = (np.arange(BOX_SAMPLES) + 0.5) / BOX_SAMPLES
    ox, oy = np.meshgrid(offsets, offsets)
    box_x = bxs[:, :1] + bxs[:, 2:3] * ox.ravel()
    box_y = bxs[:, 1:2] + bxs[:, 3:4] * oy.ravel()
    samples = np.concatenate([pts, np.stack([box_x.ravel(), box_y.ravel()], axis=1)])
    weights = np.concatenate([np.ones(len(pts)), np.full(box_x.size, 1.0 / BOX_SAMPLES**2)])
    keep = np.isfinite(samples).all(axis=1)
    return np.clip(samples[keep], 0.0, 1.0), weights[keep]


def _isotropic_density(*, samples: np.ndarray, weights: np.ndarray, centres: np.ndarray, sd: float) -> np.ndarray:
    """``sum_k w_k N(x; x_k, sd^2) N(y; y_k, sd^2)`` on the lattice (separable: two
    ``(K, grid)`` factors instead of a ``(K, grid^2)`` matrix), rows = y."""
    gx = np.exp(-0.5 * ((centres[None, :] - samples[:, :1]) / sd) ** 2)
    gy = np.exp(-0.5 * ((centres[None, :] - samples[:, 1:]) / sd) ** 2)
    return (gy * weights[:, None]).T @ gx


def marks_density(*, points: np.ndarray, boxes: np.ndarray, grid: int = 64, bandwidth: float | None = None) -> np.ndarray:
    """Where raters marked an image as giving itself away: a ``(grid, grid)`` kernel density
    in normalised image coordinates (x right, y down, both in [0, 1]; row = y, column = x),
    evaluated at the cell centres ``(i + 0.5) / grid`` and scaled to a maximum of 1.

    ``points`` is ``(N, 2)`` of ``(x, y)``, ``boxes`` is ``(M, 4)`` of ``(x, y, w, h)``;
    marks are clipped to the image. A point weighs 1; a box weighs 1 in all, spread as the
    centres of a 5 x 5 split of the box, 1/25 each, so a large box counts as much as a
    point but spreads its mass over its area.

    Kernel: scipy ``gaussian_kde`` with these weights and Scott's rule (bandwidth matrix =
    the weighted covariance of the marks times ``n_eff^(-1/3)``). If ``bandwidth`` is
    given, an isotropic Gaussian with that standard deviation (in image widths) instead.
    When the marks cannot carry a covariance (fewer than three distinct locations, or all on
    one line), an isotropic Gaussian of standard deviation ``FALLBACK_BANDWIDTH`` (0.05).
    No marks: all zeros.
    """
    if grid < 1:
        raise ValueError(f"grid must be at least 1, got {grid}")
    if bandwidth is not None and not (math.isfinite(bandwidth) and bandwidth > 0):
        raise ValueError(f"bandwidth must be a positive number of image widths, got {bandwidth!r}")
    samples, weights = _mark_samples(points=points, boxes=boxes)
    centres = (np.arange(grid) + 0.5) / grid
    if samples.shape[0] == 0:
        return np.zeros((grid, grid))
    density = None
    if bandwidth is None and np.unique(samples, axis=0).shape[0] >= 3:
        try:
            kde = sps.gaussian_kde(samples.T, weights=weights)
        except np.linalg.LinAlgError:  # marks on one line: singular covariance
            kde = None
        if kde is not None:
            xx, yy = np.meshgrid(centres, centres)
            density = kde(np.vstack([xx.ravel(), yy.ravel()])).reshape(grid, grid)
    if density is None:
        sd = bandwidth if bandwidth is not None else FALLBACK_BANDWIDTH
        density = _isotropic_density(samples=samples, weights=weights, centres=centres, sd=sd)
    peak = float(density.max())
    return density / peak if peak > 0 else np.zeros((grid, grid))


def _viridis(values: np.ndarray) -> np.ndarray:
    """``(...,)`` values in [0, 1] -> ``(..., 3)`` RGB in [0, 255] (piecewise-linear viridis)."""
    stops = np.linspace(0.0, 1.0, len(VIRIDIS))
    v = np.clip(values, 0.0, 1.0)
    return np.stack([np.interp(v, stops, VIRIDIS[:, c]) for c in range(3)], axis=-1) * 255.0


def heatmap_png(*, density: np.ndarray, mean_image: np.ndarray, alpha_max: float = 0.6) -> bytes:
    """PNG of ``density`` (from :func:`marks_density`, values in [0, 1]) drawn over the
    model's mean image: the density is resized to the image with PIL's bilinear filter,
    coloured with viridis and blended with opacity ``alpha_max * density`` per pixel::

        out = (1 - a) * image + a * viridis(density),   a = alpha_max * density

    so pixels where the density is 0 keep the mean image exactly. ``mean_image`` is
    ``(H, W)`` grey or ``(H, W, 3|4)`` RGB(A), uint8 or floats in [0, 255]; the PNG is RGB.
    """
    if not 0 <= alpha_max <= 1:
        raise ValueError(f"alpha_max must lie in [0, 1], got {alpha_max!r}")
    grid = np.asarray(density, dtype=np.float32)
    if grid.ndim != 2 or grid.size == 0:
        raise ValueError(f"density must be a non-empty 2-D array, got shape {grid.shape}")
    image = np.asarray(mean_image, dtype=float)
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"mean_image must be (H, W), (H, W, 3) or (H, W, 4), got shape {image.shape}")
    image = image[:, :, :3]
    height, width = image.shape[:2]
    resized = Image.fromarray(np.clip(grid, 0.0, 1.0)).resize((width, height), Image.Resampling.BILINEAR)
    level = np.clip(np.asarray(resized, dtype=float), 0.0, 1.0)
    alpha = (alpha_max * level)[:, :, None]
    blended = (1 - alpha) * image + alpha * _viridis(level)
    buffer = io.BytesIO()
    Image.fromarray(np.clip(np.rint(blended), 0, 255).astype(np.uint8)).save(buffer, format="PNG")
    return buffer.getvalue()


__all__ = [
    "BOX_SAMPLES",
    "FALLBACK_BANDWIDTH",
    "delong_variance",
    "diagnostic_accuracy",
    "fooling_rate",
    "heatmap_png",
    "marks_density",
    "noninferiority",
    "rating_score",
    "roc_analysis",
    "staircase_summary",
    "staircase_threshold",
]
