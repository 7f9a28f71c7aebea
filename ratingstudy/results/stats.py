"""Statistics of a rating study: pure functions on arrays, no Django.

Every function is keyword-only, takes plain sequences or NumPy arrays and returns
small frozen dataclasses whose numbers are finite floats or ``None``. Where a number
cannot be defined (no ratings, one rater, every answer identical...) it is ``None``
and ``reason`` says why in words fit for the results page; nothing here raises on
such data and nothing returns NaN or infinity.

Each function names its formula and reference; ``tests/ratingstudy/results/
test_stats.py`` checks it against a trusted implementation on the same data
(SciPy, statsmodels, the ``krippendorff`` package, pingouin, scikit-learn).

Conventions: a *fake* is a generated image; ``judged_real`` is the rater's answer
(True = "real"); quality is the 1-5 absolute category rating (ITU-T P.910 ACR:
1 bad ... 5 excellent). Heavy imports (statsmodels, which pulls in pandas) are made
inside the functions that need them so that importing the URLconf stays fast.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from itertools import combinations

import numpy as np
from scipy import special
from scipy import stats as sps

#: Confidence level used everywhere unless a caller asks for another.
CONFIDENCE = 0.95
#: Quality scale (ACR 1-5).
QUALITY_LEVELS: tuple[int, ...] = (1, 2, 3, 4, 5)


def _finite(value: float | None) -> float | None:
    """``value`` as a Python float, or ``None`` when it is missing, NaN or infinite."""
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


# Quantiles through scipy.special's ufuncs (ndtri = Phi^-1, stdtrit = Student-t quantile):
# the same numbers as scipy.stats' ``ppf`` at a hundredth of the call overhead, which
# matters for tables with hundreds of raters.


def _z(confidence: float) -> float:
    return float(special.ndtri(0.5 + confidence / 2))


def _t(confidence: float, df: float) -> float:
    return float(special.stdtrit(df, 0.5 + confidence / 2))


@dataclass(frozen=True)
class Estimate:
    """A point estimate with an optional interval.

    ``value``/``low``/``high`` are finite floats or ``None``; ``reason`` explains a
    ``None`` (or a caveat on a value, e.g. a zero-width interval); ``n`` is the
    number of observations it rests on.
    """

    value: float | None
    low: float | None = None
    high: float | None = None
    n: int = 0
    reason: str = ""

    def __post_init__(self) -> None:
        for name in ("value", "low", "high"):
            object.__setattr__(self, name, _finite(getattr(self, name)))

    @property
    def width(self) -> float | None:
        return None if self.low is None or self.high is None else self.high - self.low

    def as_dict(self) -> dict:
        return asdict(self)


def _missing(reason: str, n: int = 0) -> Estimate:
    return Estimate(value=None, n=n, reason=reason)


# --------------------------------------------------------------------------- means


def mean_t_interval(*, values: Sequence[float], confidence: float = CONFIDENCE) -> Estimate:
    """Mean with its Student-t confidence interval (the mean opinion score, MOS).

    ``mean +- t_{n-1, 1-a/2} * s / sqrt(n)`` with ``s`` the sample standard deviation
    (``ddof=1``) and ``a = 1 - confidence`` (e.g. ITU-T P.1401 section 7.2 for MOS).
    Ratings are treated as independent; :func:`cluster_bootstrap_mean` gives the
    interval that accounts for raters and images being resampled.
    Same as ``statsmodels DescrStatsW(values).tconfint_mean()``.
    """
    x = np.asarray(values, dtype=float)
    n = int(x.size)
    if n == 0:
        return _missing("no ratings")
    mean = float(x.mean())
    if n == 1:
        return Estimate(value=mean, n=1, reason="one rating: no interval")
    sd = float(x.std(ddof=1))
    if sd == 0:
        return Estimate(value=mean, low=mean, high=mean, n=n, reason="all ratings identical: zero-width interval")
    half = _t(confidence, n - 1) * sd / math.sqrt(n)
    return Estimate(value=mean, low=mean - half, high=mean + half, n=n)


# ---------------------------------------------------------------------- proportions


def wilson_interval(*, successes: int, trials: int, confidence: float = CONFIDENCE) -> Estimate:
    """Share ``successes / trials`` with the Wilson (1927) score interval.

    With ``p = k/n`` and ``z`` the normal quantile::

        centre = (p + z^2/(2n)) / (1 + z^2/n)
        half   = z / (1 + z^2/n) * sqrt(p(1-p)/n + z^2/(4n^2))

    Unlike the Wald interval it stays inside [0, 1] and keeps its coverage near 0 and 1
    (Brown, Cai & DasGupta 2001). Same as statsmodels ``proportion_confint(k, n,
    method="wilson")``.
    """
    n = int(trials)
    k = int(successes)
    if n <= 0:
        return _missing("no answers")
    if not 0 <= k <= n:
        return _missing(f"{k} successes out of {n} trials is impossible", n=n)
    p = k / n
    low, high = _wilson_bounds(p=p, n=n, z=_z(confidence))
    return Estimate(value=p, low=low, high=high, n=n)


def _wilson_bounds(*, p: float, n: float, z: float) -> tuple[float, float]:
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z / denom * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return max(0.0, centre - half), min(1.0, centre + half)


@dataclass(frozen=True)
class HypeRates:
    """HYPE-infinity style error rates (Zhou et al. 2019, "HYPE: A Benchmark for Human
    eYe Perceptual Evaluation of Generative Models", NeurIPS).

    * ``fake_error``: share of generated images judged real (the rater was fooled);
    * ``real_error``: share of real images judged fake;
    * ``overall``: HYPE-infinity, all errors over all answers,
      ``(fakes judged real + reals judged fake) / (fakes + reals)``; 50% is chance.

    Each carries a Wilson interval.
    """

    fake_error: Estimate
    real_error: Estimate
    overall: Estimate

    def as_dict(self) -> dict:
        return {"fake_error": self.fake_error.as_dict(), "real_error": self.real_error.as_dict(), "overall": self.overall.as_dict()}


def hype_error_rates(
    *, judged_real: Sequence[bool], is_real: Sequence[bool], confidence: float = CONFIDENCE
) -> HypeRates:
    """Error rates on fakes, on reals and overall (see :class:`HypeRates`)."""
    answer = np.asarray(judged_real, dtype=bool)
    truth = np.asarray(is_real, dtype=bool)
    fake_errors = int(np.sum(answer & ~truth))
    real_errors = int(np.sum(~answer & truth))
    n_fake = int(np.sum(~truth))
    n_real = int(np.sum(truth))
    return HypeRates(
        fake_error=_named_missing(wilson_interval(successes=fake_errors, trials=n_fake, confidence=confidence), "no generated images answered"),
        real_error=_named_missing(wilson_interval(successes=real_errors, trials=n_real, confidence=confidence), "no real images answered"),
        overall=wilson_interval(successes=fake_errors + real_errors, trials=n_fake + n_real, confidence=confidence),
    )


def _named_missing(estimate: Estimate, reason: str) -> Estimate:
    return estimate if estimate.n else _missing(reason)


# ------------------------------------------------------------------ signal detection


@dataclass(frozen=True)
class Detection:
    """One rater's ability to spot fakes (signal = generated image, "yes" = judged fake).

    ``sensitivity`` = hits / fakes (fakes judged fake), ``specificity`` = correct
    rejections / reals (reals judged real), both uncorrected; ``d_prime`` =
    ``Phi^-1(H) - Phi^-1(F)`` with the log-linear correction of Hautus (1995),
    ``H = (hits + 0.5) / (fakes + 1)`` and ``F = (false alarms + 0.5) / (reals + 1)``,
    applied to every rater (not only to those with rates of 0 or 1) so that raters
    stay comparable and perfect raters get a finite d' (Stanislaw & Todorov 1999).
    """

    sensitivity: Estimate
    specificity: Estimate
    d_prime: float | None
    n_fake: int
    n_real: int
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "sensitivity": self.sensitivity.as_dict(),
            "specificity": self.specificity.as_dict(),
            "d_prime": _finite(self.d_prime),
            "n_fake": self.n_fake,
            "n_real": self.n_real,
            "reason": self.reason,
        }


def detection_rates(
    *, judged_real: Sequence[bool], is_real: Sequence[bool], confidence: float = CONFIDENCE
) -> Detection:
    """Sensitivity, specificity and log-linear d' of one rater (see :class:`Detection`)."""
    answer = np.asarray(judged_real, dtype=bool)
    truth = np.asarray(is_real, dtype=bool)
    n_fake = int(np.sum(~truth))
    n_real = int(np.sum(truth))
    hits = int(np.sum(~answer & ~truth))
    false_alarms = int(np.sum(~answer & truth))
    sensitivity = _named_missing(wilson_interval(successes=hits, trials=n_fake, confidence=confidence), "no generated images answered")
    specificity = _named_missing(
        wilson_interval(successes=n_real - false_alarms, trials=n_real, confidence=confidence), "no real images answered"
    )
    if n_fake == 0 or n_real == 0:
        return Detection(sensitivity, specificity, None, n_fake, n_real, reason="d' needs answers on both real and generated images")
    hit_rate = (hits + 0.5) / (n_fake + 1)
    fa_rate = (false_alarms + 0.5) / (n_real + 1)
    d_prime = float(special.ndtri(hit_rate) - special.ndtri(fa_rate))
    return Detection(sensitivity, specificity, d_prime, n_fake, n_real)


# --------------------------------------------------------------------- agreement


def fleiss_kappa(*, counts: np.ndarray | Sequence[Sequence[int]]) -> Estimate:
    """Fleiss' (1971) kappa from an ``(images, categories)`` table of answer counts.

    With ``n_i`` answers on image ``i`` and ``n_ij`` of them in category ``j``::

        P_i   = (sum_j n_ij^2 - n_i) / (n_i (n_i - 1))       agreement on image i
        P_bar = mean_i P_i,  p_j = sum_i n_ij / sum_i n_i,  P_e = sum_j p_j^2
        kappa = (P_bar - P_e) / (1 - P_e)

    Images with fewer than two answers carry no agreement and are skipped. When every
    image has the same number of answers this is exactly statsmodels
    ``fleiss_kappa(table, method="fleiss")``; with unequal numbers each ``P_i`` uses
    its own ``n_i`` (the usual extension; cf. Fleiss, Levin & Paik 2003, ch. 18),
    which statsmodels refuses.
    """
    table = np.asarray(counts, dtype=float)
    if table.ndim != 2 or table.shape[0] == 0:
        return _missing("no images answered")
    n_i = table.sum(axis=1)
    table = table[n_i >= 2]
    n_i = n_i[n_i >= 2]
    if table.shape[0] == 0:
        return _missing("no image was answered by two or more raters")
    p_i = ((table**2).sum(axis=1) - n_i) / (n_i * (n_i - 1))
    p_j = table.sum(axis=0) / n_i.sum()
    p_e = float((p_j**2).sum())
    if p_e >= 1 - 1e-12:
        return _missing("every answer is the same: chance agreement is 1 and kappa is undefined", n=len(n_i))
    reason = "" if np.all(n_i == n_i[0]) else "images had unequal numbers of answers (extended Fleiss kappa)"
    return Estimate(value=(float(p_i.mean()) - p_e) / (1 - p_e), n=int(len(n_i)), reason=reason)


def krippendorff_alpha_ordinal(
    *, ratings: np.ndarray | Sequence[Sequence[float]], levels: Sequence[int] = QUALITY_LEVELS
) -> Estimate:
    """Krippendorff's alpha with the ordinal metric, from a ``(raters, images)`` matrix
    with NaN where a rater did not rate an image (Krippendorff 2011, "Computing
    Krippendorff's Alpha-Reliability"; Hayes & Krippendorff 2007).

    Coincidences over pairable units (images with ``m_u >= 2`` ratings)::

        o_ck = sum_u (number of ordered pairs (c, k) in unit u, i != j) / (m_u - 1)
        n_c  = sum_k o_ck,   n = sum_c n_c
        delta^2_ck (ordinal) = (sum_{g=c..k} n_g - (n_c + n_k) / 2)^2
        alpha = 1 - (n - 1) * sum_ck o_ck delta^2_ck / sum_ck n_c n_k delta^2_ck

    Same as ``krippendorff.alpha(reliability_data, level_of_measurement="ordinal",
    value_domain=levels)``. Handles missing ratings and any number of raters.
    """
    data = np.asarray(ratings, dtype=float)
    if data.ndim != 2 or data.size == 0:
        return _missing("no ratings")
    levels_arr = np.asarray(levels, dtype=float)
    present = ~np.isnan(data)
    if np.any(~np.isin(data[present], levels_arr)):
        return _missing(f"ratings outside the scale {list(levels)}")
    # (images, levels) counts of each value per image.
    unit_counts = np.stack([np.sum(data == level, axis=0) for level in levels_arr], axis=1).astype(float)
    m_u = unit_counts.sum(axis=1)
    pairable = m_u >= 2
    if not pairable.any():
        return _missing("no image was rated by two or more raters")
    unit_counts = unit_counts[pairable]
    weights = 1.0 / (m_u[pairable] - 1)
    o = unit_counts.T @ (unit_counts * weights[:, None]) - np.diag((unit_counts * weights[:, None]).sum(axis=0))
    n_c = o.sum(axis=1)
    n = n_c.sum()
    cumulative = np.concatenate([[0.0], np.cumsum(n_c)])
    idx = np.arange(len(n_c))
    lo = np.minimum.outer(idx, idx)
    hi = np.maximum.outer(idx, idx)
    delta2 = (cumulative[hi + 1] - cumulative[lo] - (n_c[:, None] + n_c[None, :]) / 2) ** 2
    expected = float((np.outer(n_c, n_c) * delta2).sum())
    units = int(pairable.sum())
    if expected == 0:
        return _missing("every rating is the same: expected disagreement is 0 and alpha is undefined", n=units)
    return Estimate(value=1 - (n - 1) * float((o * delta2).sum()) / expected, n=units)


@dataclass(frozen=True)
class ICCResult:
    """Two-way random-effects, absolute-agreement ICC (McGraw & Wong 1996 ICC(A,1) and
    ICC(A,k); Shrout & Fleiss 1979 ICC(2,1) and ICC(2,k)) with their F-based 95%
    intervals, on the images rated by every included rater."""

    single: Estimate
    average: Estimate
    n_images: int
    n_raters: int
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "single": self.single.as_dict(),
            "average": self.average.as_dict(),
            "n_images": self.n_images,
            "n_raters": self.n_raters,
            "reason": self.reason,
        }


def intraclass_correlation(*, ratings: np.ndarray | Sequence[Sequence[float]], confidence: float = CONFIDENCE) -> ICCResult:
    """ICC(A,1) and ICC(A,k) from an ``(images, raters)`` matrix (NaN = not rated).

    Images with any missing rating are dropped (listwise, as pingouin's
    ``nan_policy="omit"``). With the two-way ANOVA mean squares ``MSR`` (images),
    ``MSC`` (raters) and ``MSE`` (residual) on ``n`` images and ``k`` raters::

        ICC(A,1) = (MSR - MSE) / (MSR + (k-1) MSE + k (MSC - MSE) / n)
        ICC(A,k) = (MSR - MSE) / (MSR + (MSC - MSE) / n)

    Intervals: McGraw & Wong (1996) eq. for case 2A with Satterthwaite degrees of
    freedom. Same numbers as ``pingouin.intraclass_corr`` rows ``ICC(A,1)``/``ICC(A,k)``.
    """
    data = np.asarray(ratings, dtype=float)
    if data.ndim != 2 or data.size == 0:
        return ICCResult(_missing("no ratings"), _missing("no ratings"), 0, 0, "no ratings")
    rated_cols = ~np.all(np.isnan(data), axis=0)
    data = data[:, rated_cols]
    complete = data[~np.any(np.isnan(data), axis=1)]
    n, k = complete.shape
    if k < 2:
        reason = "ICC needs two or more raters"
    elif n < 2:
        reason = f"ICC needs two or more images rated by all {k} raters; {n} found (Krippendorff's alpha handles missing ratings)"
    else:
        reason = ""
    if reason:
        return ICCResult(_missing(reason, n), _missing(reason, n), n, k, reason)
    grand = complete.mean()
    ss_rows = k * float(((complete.mean(axis=1) - grand) ** 2).sum())
    ss_cols = n * float(((complete.mean(axis=0) - grand) ** 2).sum())
    ss_error = float(((complete - grand) ** 2).sum()) - ss_rows - ss_cols
    msr = ss_rows / (n - 1)
    msc = ss_cols / (k - 1)
    mse = max(ss_error, 0.0) / ((n - 1) * (k - 1))
    denom_single = msr + (k - 1) * mse + k * (msc - mse) / n
    denom_average = msr + (msc - mse) / n
    if denom_single <= 0 or denom_average <= 0 or mse == 0:
        reason = "ratings do not vary enough (identical or no residual variance): ICC is undefined"
        return ICCResult(_missing(reason, n), _missing(reason, n), n, k, reason)
    icc1 = (msr - mse) / denom_single
    icck = (msr - mse) / denom_average
    alpha = 1 - confidence
    fj = msc / mse
    df2 = (n - 1) * (k - 1)
    vn = df2 * (k * icc1 * fj + n * (1 + (k - 1) * icc1) - k * icc1) ** 2
    vd = (n - 1) * k**2 * icc1**2 * fj**2 + (n * (1 + (k - 1) * icc1) - k * icc1) ** 2
    v = vn / vd if vd > 0 else float("nan")
    f_upper = sps.f.ppf(1 - alpha / 2, n - 1, v)
    f_lower = sps.f.ppf(1 - alpha / 2, v, n - 1)
    low = n * (msr - f_upper * mse) / (f_upper * (k * msc + (k * n - k - n) * mse) + n * msr)
    high = n * (f_lower * msr - mse) / (k * msc + (k * n - k - n) * mse + n * f_lower * msr)
    single = Estimate(value=icc1, low=low, high=high, n=n)
    average = Estimate(
        value=icck, low=low * k / (1 + low * (k - 1)), high=high * k / (1 + high * (k - 1)), n=n
    )
    return ICCResult(single, average, n, k)


# --------------------------------------------------------------------- bootstrap


def cluster_bootstrap_mean(
    *,
    values: Sequence[float],
    raters: Sequence[object],
    images: Sequence[object],
    n_boot: int = 1000,
    seed: int = 0,
    confidence: float = CONFIDENCE,
) -> Estimate:
    """Mean of ``values`` with a two-way cluster (raters x images) percentile bootstrap.

    Each replicate draws the raters with replacement and, independently, the images
    with replacement; an observation of rater ``r`` on image ``i`` enters the
    replicate ``c_r * c_i`` times, where ``c`` counts how often each was drawn: Owen's
    (2007) "pigeonhole" bootstrap for crossed random effects (Annals of Applied
    Statistics 1:399-429; McCullagh 2000, Bernoulli 6:285-301, shows it is mildly
    conservative: it slightly overstates the variance). The replicate statistic is the
    weighted mean ``sum w v / sum w``; replicates that drew no observation (possible
    when raters saw disjoint images) are skipped. The interval is the percentile
    interval of the replicates. ``seed`` makes it reproducible (NumPy PCG64).

    Resample indices are drawn as ``rng.integers(0, R, (n_boot, R))`` then
    ``rng.integers(0, I, (n_boot, I))``, so a naive loop over the same generator
    rebuilds the same replicates (the test does this).
    """
    v = np.asarray(values, dtype=float)
    n = int(v.size)
    if n == 0:
        return _missing("no ratings")
    mean = float(v.mean())
    _, r_codes = np.unique(np.asarray(raters, dtype=object).astype(str), return_inverse=True)
    _, i_codes = np.unique(np.asarray(images, dtype=object).astype(str), return_inverse=True)
    n_r = int(r_codes.max()) + 1
    n_i = int(i_codes.max()) + 1
    if n_r == 1 and n_i == 1:
        return Estimate(value=mean, n=n, reason="one rater and one image: nothing to resample")
    rng = np.random.default_rng(seed)
    draws_r = rng.integers(0, n_r, size=(n_boot, n_r))
    draws_i = rng.integers(0, n_i, size=(n_boot, n_i))
    counts_r = _row_bincount(draws_r, n_r)
    counts_i = _row_bincount(draws_i, n_i)
    replicates = _pigeonhole_means(v, r_codes, i_codes, counts_r, counts_i)
    kept = replicates[np.isfinite(replicates)]
    if kept.size < max(20, n_boot // 2):
        return Estimate(value=mean, n=n, reason="too few bootstrap replicates drew any rating (raters and images barely overlap)")
    low, high = np.quantile(kept, [(1 - confidence) / 2, (1 + confidence) / 2])
    notes = []
    if n_r == 1:
        notes.append("one rater: the interval ignores between-rater variation")
    if n_i == 1:
        notes.append("one image: the interval ignores between-image variation")
    if kept.size < n_boot:
        notes.append(f"{n_boot - kept.size} of {n_boot} replicates drew no rating and were skipped")
    return Estimate(value=mean, low=float(low), high=float(high), n=n, reason="; ".join(notes))


#: Below this many (rater, image) cells per observation the replicates come from cell totals
#: (two matrix products); above it (raters who each saw few of many images), from each observation.
DENSE_CELLS_PER_OBSERVATION = 20


def _pigeonhole_means(
    v: np.ndarray, r_codes: np.ndarray, i_codes: np.ndarray, counts_r: np.ndarray, counts_i: np.ndarray
) -> np.ndarray:
    """Each replicate's weighted mean ``sum_o c_r[r_o] c_i[i_o] v_o / sum_o c_r[r_o] c_i[i_o]``
    (NaN where no observation was drawn), for every replicate at once.

    With ``S`` and ``N`` the (raters x images) totals and counts of the observations, the sums
    are ``rowsum((C_r S) * C_i)`` and ``rowsum((C_r N) * C_i)``: BLAS products whose size does
    not grow with the number of observations. When the cells would far outnumber the
    observations (sparse designs) the weights are formed per observation instead. Both are
    chunked over replicates so that no intermediate passes about 2 million entries.
    """
    n_boot, n_r = counts_r.shape
    n_i = counts_i.shape[1]
    n = v.size
    replicates = np.empty(n_boot)
    if n_r * n_i <= DENSE_CELLS_PER_OBSERVATION * n:
        flat = r_codes * n_i + i_codes
        cells = np.concatenate(
            [
                np.bincount(flat, weights=v, minlength=n_r * n_i).reshape(n_r, n_i),
                np.bincount(flat, minlength=n_r * n_i).reshape(n_r, n_i).astype(float),
            ],
            axis=1,
        )
        chunk = max(1, 2_000_000 // (2 * n_i))
        for start in range(0, n_boot, chunk):
            stop = min(start + chunk, n_boot)
            drawn = counts_r[start:stop] @ cells  # (replicates, 2 images): sums, then counts
            c_i = counts_i[start:stop]
            total = np.einsum("bi,bi->b", drawn[:, n_i:], c_i)
            with np.errstate(invalid="ignore", divide="ignore"):
                replicates[start:stop] = np.einsum("bi,bi->b", drawn[:, :n_i], c_i) / total
        return replicates
    chunk = max(1, 2_000_000 // n)
    for start in range(0, n_boot, chunk):
        stop = min(start + chunk, n_boot)
        w = counts_r[start:stop, r_codes] * counts_i[start:stop, i_codes]
        total = w.sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            replicates[start:stop] = (w @ v) / total
    return replicates


def _row_bincount(draws: np.ndarray, size: int) -> np.ndarray:
    """Per-row counts of each index: ``(B, m)`` draws -> ``(B, size)`` float counts."""
    b = draws.shape[0]
    flat = (draws + size * np.arange(b)[:, None]).ravel()
    return np.bincount(flat, minlength=b * size).reshape(b, size).astype(float)


# ------------------------------------------------------------------- comparisons


@dataclass(frozen=True)
class Comparison:
    """One pairwise difference between two groups (e.g. two models), ``a - b``."""

    a: str
    b: str
    outcome: str
    test: str
    difference: float | None
    statistic: float | None
    p_value: float | None
    p_holm: float | None = None
    significant: bool | None = None
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def holm_adjust(*, p_values: Sequence[float], alpha: float = 0.05) -> tuple[list[float], list[bool]]:
    """Holm (1979) step-down adjusted p-values: with sorted ``p_(1) <= ... <= p_(m)``,
    ``p~_(i) = max_{j <= i} min(1, (m - j + 1) p_(j))``; reject where ``p~ <= alpha``.
    Same as statsmodels ``multipletests(p, alpha, method="holm")`` (which also runs a
    full garbage collection on every call, a quarter of a second here)."""
    p = np.asarray(p_values, dtype=float)
    m = p.size
    if m == 0:
        return [], []
    order = np.argsort(p, kind="stable")
    stepped = np.minimum(1.0, np.maximum.accumulate((m - np.arange(m)) * p[order]))
    adjusted = np.empty(m)
    adjusted[order] = stepped
    return [float(v) for v in adjusted], [bool(v <= alpha) for v in adjusted]


def _with_holm(comparisons: list[Comparison], alpha: float) -> list[Comparison]:
    tested = [i for i, c in enumerate(comparisons) if c.p_value is not None]
    adjusted, reject = holm_adjust(p_values=[comparisons[i].p_value for i in tested], alpha=alpha)
    out = list(comparisons)
    for i, p, r in zip(tested, adjusted, reject, strict=True):
        c = comparisons[i]
        out[i] = Comparison(c.a, c.b, c.outcome, c.test, c.difference, c.statistic, c.p_value, p, r, c.reason)
    return out


def compare_scores(
    *, groups: Mapping[str, Sequence[float]], outcome: str = "quality", alpha: float = 0.05
) -> list[Comparison]:
    """All pairwise two-sided Mann-Whitney U tests (scipy ``mannwhitneyu``) between
    groups of per-image mean scores, Holm-corrected over the pairs.

    The unit is the image (its mean rating), not the single rating: ratings of one image
    are not independent, images of different models are. ``difference`` is the
    difference of the group means of per-image scores.
    """
    comparisons = []
    for a, b in combinations(groups, 2):
        x = np.asarray(groups[a], dtype=float)
        y = np.asarray(groups[b], dtype=float)
        diff = float(x.mean() - y.mean()) if x.size and y.size else None
        if x.size == 0 or y.size == 0:
            comparisons.append(Comparison(a, b, outcome, "Mann-Whitney U", diff, None, None, reason="a group has no rated images"))
            continue
        if np.ptp(np.concatenate([x, y])) == 0:
            comparisons.append(Comparison(a, b, outcome, "Mann-Whitney U", diff, None, None, reason="all scores identical: no test"))
            continue
        result = sps.mannwhitneyu(x, y, alternative="two-sided")
        comparisons.append(Comparison(a, b, outcome, "Mann-Whitney U", diff, _finite(result.statistic), _finite(result.pvalue)))
    return _with_holm(comparisons, alpha)


def compare_proportions(
    *, groups: Mapping[str, tuple[int, int]], outcome: str = "judged_real", alpha: float = 0.05
) -> list[Comparison]:
    """All pairwise two-proportion z tests (pooled variance; statsmodels
    ``proportions_ztest``) on ``(successes, trials)`` per group, Holm-corrected.

    ``z = (p_a - p_b) / sqrt(p (1-p) (1/n_a + 1/n_b))`` with the pooled ``p``. It treats
    answers as independent; read it beside the cluster-bootstrap intervals.
    """
    from statsmodels.stats.proportion import proportions_ztest

    comparisons = []
    for a, b in combinations(groups, 2):
        (ka, na), (kb, nb) = groups[a], groups[b]
        if na == 0 or nb == 0:
            comparisons.append(Comparison(a, b, outcome, "two-proportion z", None, None, None, reason="a group has no answers"))
            continue
        diff = ka / na - kb / nb
        pooled = (ka + kb) / (na + nb)
        if pooled in (0.0, 1.0):
            comparisons.append(
                Comparison(a, b, outcome, "two-proportion z", diff, None, None, reason="every answer is the same: no test")
            )
            continue
        z, p = proportions_ztest(np.array([ka, kb]), np.array([na, nb]))
        comparisons.append(Comparison(a, b, outcome, "two-proportion z", diff, _finite(z), _finite(p)))
    return _with_holm(comparisons, alpha)


# ------------------------------------------------------------------- correlation


@dataclass(frozen=True)
class Correlation:
    """Spearman's rank correlation with a Fisher-z interval (Bonett & Wright 2000)."""

    rho: float | None
    low: float | None
    high: float | None
    p_value: float | None
    n: int
    reason: str = ""

    def as_dict(self) -> dict:
        return {k: _finite(v) if isinstance(v, float) else v for k, v in asdict(self).items()}


def spearman_correlation(
    *, x: Sequence[float | None], y: Sequence[float | None], confidence: float = CONFIDENCE
) -> Correlation:
    """Spearman's rho (scipy ``spearmanr``) on the pairs where both values are finite.

    Interval: ``tanh(atanh(rho) +- z * sqrt((1 + rho^2 / 2) / (n - 3)))``
    (Bonett & Wright 2000, Psychometrika 65:23-28); needs ``n >= 4``.
    """
    a = np.asarray([np.nan if v is None else v for v in x], dtype=float)
    b = np.asarray([np.nan if v is None else v for v in y], dtype=float)
    keep = np.isfinite(a) & np.isfinite(b)
    a, b = a[keep], b[keep]
    n = int(a.size)
    if n < 3:
        return Correlation(None, None, None, None, n, reason=f"{n} image(s) with both values: need at least 3")
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return Correlation(None, None, None, None, n, reason="one of the two is constant: correlation undefined")
    result = sps.spearmanr(a, b)
    rho = float(result.statistic)
    low = high = None
    if n >= 4 and abs(rho) < 1 - 1e-12:  # a perfect rank order has no Fisher-z interval
        half = _z(confidence) * math.sqrt((1 + rho * rho / 2) / (n - 3))
        low, high = math.tanh(math.atanh(rho) - half), math.tanh(math.atanh(rho) + half)
    return Correlation(_finite(rho), _finite(low), _finite(high), _finite(result.pvalue), n)


# ------------------------------------------------------------------- sample size


@dataclass(frozen=True)
class SampleSize:
    """Ratings needed for an interval of the requested ``width`` (``high - low``)."""

    needed: int | None
    current: int
    additional: int | None
    width: float
    design_effect: float
    reason: str = ""

    def as_dict(self) -> dict:
        return asdict(self)


def _smallest_n(width_at: Callable[[int], float], target: float, start: int = 2) -> int:
    """Smallest ``n >= start`` with ``width_at(n) <= target``, for a decreasing width."""
    hi = start
    while width_at(hi) > target:
        hi *= 2
        if hi > 10**9:
            return hi
    lo = max(start, hi // 2)
    while lo < hi:
        mid = (lo + hi) // 2
        if width_at(mid) <= target:
            hi = mid
        else:
            lo = mid + 1
    return lo


def _sample_size(n_iid: int, *, current: int, width: float, design_effect: float, reason: str = "") -> SampleSize:
    needed = math.ceil(n_iid * design_effect)
    return SampleSize(needed, current, max(0, needed - current), width, design_effect, reason)


def ratings_needed_for_mean(
    *, sd: float | None, current: int, width: float, confidence: float = CONFIDENCE, design_effect: float = 1.0
) -> SampleSize:
    """Ratings needed for a t interval of the mean no wider than ``width``.

    Smallest ``n`` with ``2 t_{n-1, 1-a/2} s / sqrt(n) <= width`` for the current sample
    standard deviation ``s``, multiplied by the design effect ``deff`` (Kish 1965): the
    ratio of the clustered variance of the mean (from :func:`cluster_bootstrap_mean`) to
    the independent-ratings variance, which accounts for ratings of one rater or image
    being alike. ``deff = 1`` assumes independent ratings.
    """
    deff = max(1.0, _finite(design_effect) or 1.0)
    if width <= 0:
        return SampleSize(None, current, None, width, deff, "the width must be positive")
    if sd is None or not math.isfinite(sd) or current < 2:
        return SampleSize(None, current, None, width, deff, "need two or more ratings to estimate the spread")
    if sd == 0:
        return SampleSize(current, current, 0, width, deff, "all ratings identical: the interval is already zero-width")
    n = _smallest_n(lambda m: 2 * _t(confidence, m - 1) * sd / math.sqrt(m), width)
    return _sample_size(n, current=current, width=width, design_effect=deff)


def ratings_needed_for_proportion(
    *, p: float | None, current: int, width: float, confidence: float = CONFIDENCE, design_effect: float = 1.0
) -> SampleSize:
    """Answers needed for a Wilson interval no wider than ``width`` if the share stays at
    ``p``: smallest ``n`` with ``high - low <= width`` (see :func:`wilson_interval`),
    multiplied by the design effect (see :func:`ratings_needed_for_mean`)."""
    deff = max(1.0, _finite(design_effect) or 1.0)
    if width <= 0:
        return SampleSize(None, current, None, width, deff, "the width must be positive")
    if p is None or not 0 <= p <= 1:
        return SampleSize(None, current, None, width, deff, "no share observed yet")
    z = _z(confidence)

    def wilson_width(m: int) -> float:
        low, high = _wilson_bounds(p=p, n=m, z=z)
        return high - low

    n = _smallest_n(wilson_width, width, start=1)
    return _sample_size(n, current=current, width=width, design_effect=deff)


def design_effect(*, clustered: Estimate, independent: Estimate) -> float:
    """``(clustered width / independent width)^2``, at least 1; 1 when either is missing."""
    if not clustered.width or not independent.width:
        return 1.0
    return max(1.0, (clustered.width / independent.width) ** 2)


__all__ = [
    "CONFIDENCE",
    "QUALITY_LEVELS",
    "Comparison",
    "Correlation",
    "Detection",
    "Estimate",
    "HypeRates",
    "ICCResult",
    "SampleSize",
    "cluster_bootstrap_mean",
    "compare_proportions",
    "compare_scores",
    "design_effect",
    "detection_rates",
    "fleiss_kappa",
    "holm_adjust",
    "hype_error_rates",
    "intraclass_correlation",
    "krippendorff_alpha_ordinal",
    "mean_t_interval",
    "ratings_needed_for_mean",
    "ratings_needed_for_proportion",
    "spearman_correlation",
    "wilson_interval",
]
