"""SSIM, PSNR and MSE, batched in torch on CPU or GPU, identical to ``skimage.metrics``.

All three take two image batches ``preds`` and ``target`` of shape ``(N, C, H, W)``
(any real dtype, e.g. ``uint8`` or ``float32``) and return one float64 value per pair,
shape ``(N,)``, on the CPU.

Definitions (``R`` is the data range, the width of the interval the values live in):

* **MSE**  ``= 1/(CHW) * sum_{c,i,j} (x_cij - y_cij)^2``.
* **PSNR** ``= 10 * log10(R^2 / MSE)`` in dB; ``+inf`` for identical images.
* **SSIM** (Wang, Bovik, Sheikh & Simoncelli 2004, eq. 13), per channel and pixel::

      S = (2 mu_x mu_y + C1) (2 sigma_xy + C2) / ((mu_x^2 + mu_y^2 + C1) (sigma_x^2 + sigma_y^2 + C2))

  with ``C1 = (K1 R)^2``, ``C2 = (K2 R)^2``, ``K1 = 0.01``, ``K2 = 0.03``, where the local
  means, variances and covariance are weighted by an 11x11 circular-symmetric Gaussian
  window with ``sigma = 1.5`` (the paper's setting; normalised, radius
  ``int(3.5 sigma + 0.5) = 5``) and use the population (not sample) covariance. The
  SSIM of an image is the mean of ``S`` over every channel and over the *valid* region,
  the pixels at least 5 pixels from the border, where the window lies inside the image.

This is exactly ``skimage.metrics.structural_similarity(x, y, data_range=R,
gaussian_weights=True, sigma=1.5, use_sample_covariance=False, channel_axis=...)``,
``peak_signal_noise_ratio(x, y, data_range=R)`` and ``mean_squared_error(x, y)``; the
tests check agreement within 1e-4.

How it is fast: skimage filters the whole image (reflect padding) and then crops to
the valid region; the cropped values never see the padding, so here only the valid
region is filtered. The separable Gaussian is applied as two multiplications by banded
Toeplitz matrices (``(H-10) x H`` on the left, ``W x (W-10)`` on the right), which run
as BLAS/cuBLAS matrix products and beat depthwise convolution by several times on CPU.
Each image and channel is centred on its own mean before the second moments are
filtered, so ``sigma^2 = E[x^2] - E[x]^2`` loses no precision to cancellation, which
lets float32 (the default ``compute_dtype``) agree with skimage's float64 to about 1e-6.
Batches are processed in chunks of ``chunk_size`` pairs to bound memory.

What is compared for unpaired translation (CycleGAN ``G: X -> Y``, ``F: Y -> X``):

* **cycle reconstruction** ``x`` vs ``F(G(x))``: how well the cycle restores the input
  (the cycle-consistency loss measured with SSIM/PSNR/MSE);
* **translation (content preservation)** ``x`` vs ``G(x)``: how much of the input's
  structure survives translation to the other domain. There is no ground truth
  ``G(x)`` for unpaired data, so this does not measure correctness; a perfect
  translator must change colour and texture and cannot score SSIM 1.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

#: Wang et al. (2004) constants and Gaussian window.
K1 = 0.01
K2 = 0.03
GAUSSIAN_SIGMA = 1.5
#: ``scipy.ndimage`` truncation giving the 11-tap window for sigma 1.5, as skimage uses.
GAUSSIAN_TRUNCATE = 3.5

#: Floats processed per chunk (about 5 maps x chunk): bounds memory at ~1 GB in float32.
_CHUNK_ELEMENTS = 48 * 3 * 256 * 256


@dataclass(frozen=True)
class SSIMSettings:
    """The settings a report must carry with SSIM/PSNR/MSE numbers."""

    data_range: float
    value_range: tuple[float, float]
    window: int
    sigma: float
    k1: float
    k2: float
    covariance: str = "population"
    region: str = "valid (border of window//2 pixels excluded), as skimage"

    def as_dict(self) -> dict:
        return asdict(self)


def value_range_of(data_range: float | tuple[float, float]) -> tuple[float, float]:
    """``R`` means values in ``[0, R]``; ``(lo, hi)`` means values in ``[lo, hi]``."""
    if isinstance(data_range, tuple | list):
        if len(data_range) != 2:
            raise ValueError(f"data_range must be a number or a (min, max) pair, got {data_range!r}")
        lo, hi = float(data_range[0]), float(data_range[1])
    else:
        lo, hi = 0.0, float(data_range)
    if not (math.isfinite(lo) and math.isfinite(hi) and hi > lo):
        raise ValueError(f"data_range must describe a finite interval with max > min, got {data_range!r}")
    return lo, hi


def gaussian_window_radius(sigma: float = GAUSSIAN_SIGMA, truncate: float = GAUSSIAN_TRUNCATE) -> int:
    """Radius of ``scipy.ndimage.gaussian_filter``'s kernel: ``int(truncate * sigma + 0.5)``."""
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return int(truncate * sigma + 0.5)


def ssim_settings(data_range: float | tuple[float, float], sigma: float = GAUSSIAN_SIGMA) -> SSIMSettings:
    lo, hi = value_range_of(data_range)
    return SSIMSettings(
        data_range=hi - lo,
        value_range=(lo, hi),
        window=2 * gaussian_window_radius(sigma) + 1,
        sigma=sigma,
        k1=K1,
        k2=K2,
    )


def check_image_batches(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float | tuple[float, float],
    min_size: int = 1,
    names: tuple[str, str] = ("preds", "target"),
) -> tuple[float, float]:
    """Validate two ``(N, C, H, W)`` batches; return their value range ``(lo, hi)``.

    Raises ``ValueError`` naming the argument (and image index) for: a wrong number of
    dimensions, an empty batch, mismatched shapes or channel counts, images smaller
    than ``min_size`` pixels per side, NaN or infinite values, and values outside the
    data range.
    """
    lo, hi = value_range_of(data_range)
    for name, batch in zip(names, (preds, target), strict=True):
        if not isinstance(batch, torch.Tensor):
            raise ValueError(f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(batch).__name__}")
        if batch.ndim != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(batch.shape)}")
        if batch.shape[0] == 0:
            raise ValueError(f"{name} is empty: no images to compare")
        if batch.is_complex() or batch.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got dtype {batch.dtype}")
    if preds.shape[0] != target.shape[0]:
        raise ValueError(f"{names[0]} has {preds.shape[0]} images but {names[1]} has {target.shape[0]}")
    if preds.shape[1] != target.shape[1]:
        raise ValueError(
            f"channel counts differ: {names[0]} has {preds.shape[1]} channels, {names[1]} has {target.shape[1]}"
        )
    if preds.shape[2:] != target.shape[2:]:
        raise ValueError(
            f"image sizes differ: {names[0]} is {tuple(preds.shape[2:])} (H, W), "
            f"{names[1]} is {tuple(target.shape[2:])}"
        )
    if min(preds.shape[2:]) < min_size:
        raise ValueError(
            f"images of size {tuple(preds.shape[2:])} are smaller than the {min_size}x{min_size} SSIM window"
        )
    for name, batch in zip(names, (preds, target), strict=True):
        if batch.is_floating_point():
            bad = ~torch.isfinite(batch).flatten(1).all(dim=1)
            if bad.any():
                index = int(bad.nonzero()[0, 0])
                raise ValueError(f"{name}[{index}] contains NaN or infinite values")
        below = batch.flatten(1).amin(dim=1) < lo
        above = batch.flatten(1).amax(dim=1) > hi
        outside = below | above
        if outside.any():
            index = int(outside.nonzero()[0, 0])
            raise ValueError(
                f"{name}[{index}] has values in [{float(batch[index].min())}, {float(batch[index].max())}], "
                f"outside the data range [{lo}, {hi}]; pass the data_range the images were stored with"
            )
    return lo, hi


def _banded_gaussian(size: int, radius: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(size, size - 2r)`` matrix ``B`` with ``(v @ B)[j] = sum_k w[k] v[j + k]``: a valid 1-D filter."""
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    taps /= taps.sum()
    n_out = size - 2 * radius
    band = torch.zeros(size, n_out, dtype=torch.float64)
    columns = torch.arange(n_out)
    for k in range(2 * radius + 1):
        band[columns + k, columns] = taps[k]
    return band.to(dtype=dtype, device=device)


def _ssim_chunk(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    band_h: torch.Tensor,
    band_w: torch.Tensor,
) -> torch.Tensor:
    """Mean SSIM of each pair in ``x, y`` (N, C, H, W), already scaled to [0, 1]."""
    mean_x = x.mean(dim=(-2, -1), keepdim=True)
    mean_y = y.mean(dim=(-2, -1), keepdim=True)
    xc, yc = x - mean_x, y - mean_y
    moments = torch.stack((xc, yc, xc * xc, yc * yc, xc * yc), dim=1)  # (N, 5, C, H, W)
    filtered = band_h.T @ (moments @ band_w)  # (N, 5, C, H-2r, W-2r)
    fx, fy, fxx, fyy, fxy = filtered.unbind(dim=1)
    mu_x, mu_y = fx + mean_x, fy + mean_y
    var_x, var_y, cov_xy = fxx - fx * fx, fyy - fy * fy, fxy - fx * fy
    c1, c2 = K1**2, K2**2
    s_map = ((2 * mu_x * mu_y + c1) * (2 * cov_xy + c2)) / (
        (mu_x * mu_x + mu_y * mu_y + c1) * (var_x + var_y + c2)
    )
    return s_map.flatten(1).to(torch.float64).mean(dim=1)


def image_quality(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float | tuple[float, float],
    sigma: float = GAUSSIAN_SIGMA,
    device: torch.device | str | None = None,
    compute_dtype: torch.dtype = torch.float32,
    chunk_size: int | None = None,
    metrics: Sequence[str] = ("ssim", "psnr", "mse"),
) -> dict[str, torch.Tensor]:
    """SSIM, PSNR and MSE of each pair, in one pass over chunks of the batch.

    Args:
        preds, target: ``(N, C, H, W)`` batches of the same shape (the order does not
            matter: all three metrics are symmetric).
        data_range: ``R`` (values in ``[0, R]``) or ``(lo, hi)``; 255 for uint8 images,
            ``(-1, 1)`` for tanh generator output. Values outside raise ``ValueError``.
        sigma: Gaussian window sigma (1.5 in Wang et al.; window ``2*int(3.5*sigma+0.5)+1``).
        device: where to compute (default: ``preds.device``); chunks are moved there.
        compute_dtype: float type for the SSIM filtering; MSE/PSNR always use float64.
        chunk_size: pairs per chunk (default: as many as fit ~1 GB of float32 work).
        metrics: which of ``"ssim"``, ``"psnr"``, ``"mse"`` to compute.

    Returns:
        ``{name: float64 tensor (N,)}`` on the CPU for each requested metric.
    """
    unknown = set(metrics) - {"ssim", "psnr", "mse"}
    if unknown or not metrics:
        raise ValueError(f"metrics must be a non-empty subset of ('ssim', 'psnr', 'mse'), got {tuple(metrics)}")
    radius = gaussian_window_radius(sigma)
    lo, hi = check_image_batches(preds, target, data_range=data_range, min_size=2 * radius + 1)
    scale = hi - lo
    device = torch.device(device) if device is not None else preds.device
    n, c, h, w = preds.shape
    if chunk_size is None:
        chunk_size = max(1, _CHUNK_ELEMENTS // (c * h * w))
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    band_h = _banded_gaussian(h, radius, sigma, compute_dtype, device)
    band_w = band_h if h == w else _banded_gaussian(w, radius, sigma, compute_dtype, device)
    results: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
    for start in range(0, n, chunk_size):
        x = preds[start : start + chunk_size].to(device)
        y = target[start : start + chunk_size].to(device)
        if "mse" in metrics or "psnr" in metrics:
            diff = x.to(torch.float64) - y.to(torch.float64)
            mse_values = (diff * diff).flatten(1).mean(dim=1)
            if "mse" in metrics:
                results["mse"].append(mse_values.cpu())
            if "psnr" in metrics:
                results["psnr"].append((10.0 * torch.log10(scale * scale / mse_values)).cpu())
        if "ssim" in metrics:
            x01 = (x.to(compute_dtype) - lo) / scale
            y01 = (y.to(compute_dtype) - lo) / scale
            results["ssim"].append(_ssim_chunk(x01, y01, band_h=band_h, band_w=band_w).cpu())
    return {name: torch.cat(values) for name, values in results.items()}


def ssim(preds: torch.Tensor, target: torch.Tensor, *, data_range: float | tuple[float, float], **kwargs) -> torch.Tensor:
    """Per-pair mean SSIM, shape ``(N,)`` (see :func:`image_quality` for the arguments)."""
    return image_quality(preds, target, data_range=data_range, metrics=("ssim",), **kwargs)["ssim"]


def psnr(preds: torch.Tensor, target: torch.Tensor, *, data_range: float | tuple[float, float], **kwargs) -> torch.Tensor:
    """Per-pair PSNR in dB, ``10 log10(R^2 / MSE)``, shape ``(N,)``."""
    return image_quality(preds, target, data_range=data_range, metrics=("psnr",), **kwargs)["psnr"]


def mse(preds: torch.Tensor, target: torch.Tensor, *, data_range: float | tuple[float, float], **kwargs) -> torch.Tensor:
    """Per-pair mean squared error, shape ``(N,)``; ``data_range`` is only used to validate values."""
    return image_quality(preds, target, data_range=data_range, metrics=("mse",), **kwargs)["mse"]


def summarize(values: Sequence[float] | np.ndarray | torch.Tensor) -> dict[str, float | int | None]:
    """Aggregate per-image values: ``n``, ``mean``, ``std`` (sample, ddof=1), ``median``, ``min``, ``max``.

    Statistics are over the finite values; ``n_nonfinite`` counts the others (PSNR is
    ``+inf`` for identical pairs). With no finite value, the statistics are ``None``;
    ``std`` is ``None`` for fewer than two.
    """
    array = np.asarray(values.cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64).ravel()
    finite = array[np.isfinite(array)]
    empty = finite.size == 0
    return {
        "n": int(array.size),
        "n_nonfinite": int(array.size - finite.size),
        "mean": None if empty else float(finite.mean()),
        "std": float(finite.std(ddof=1)) if finite.size > 1 else None,
        "median": None if empty else float(np.median(finite)),
        "min": None if empty else float(finite.min()),
        "max": None if empty else float(finite.max()),
    }
