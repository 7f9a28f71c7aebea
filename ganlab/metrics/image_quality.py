"""SSIM, PSNR and MSE, batched in torch on CPU or GPU, identical to ``skimage.metrics``.

All three take two image batches ``preds`` and ``target`` of shape ``(N, C, H, W)``
(any real dtype: ``uint8``, ``uint16`` for 16-bit microscopy, ``float32``, ...) and
return one float64 value per pair, shape ``(N,)``, on the CPU. Unsigned types wider
than 8 bits, for which torch implements little arithmetic, are widened before any
reduction or filtering: ``uint16`` -> ``int32`` and ``uint32`` -> ``int64`` exactly,
``uint64`` -> ``float64`` (exact below 2**53).

Definitions (``R`` is the data range: values must lie in ``[0, R]``, e.g. 255 for
8-bit images, 1.0 for floats in [0, 1]):

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
region is filtered. SSIM is rewritten on ``s = x + y`` and ``d = x - y``, which needs
four filtered moments instead of five. The separable Gaussian runs as two batched
matrix products (BLAS on CPU, cuBLAS on GPU) with a small ``(16 + 10) x 16`` band
matrix over overlapping strided views of one buffer, so no padding, unfolding or
transposition is ever copied. Each channel is centred on its image mean before the
second moments are formed, so ``sigma^2 = E[v^2] - E[v]^2`` does not cancel and
float32 (the default ``compute_dtype``) agrees with skimage's float64 to ~1e-7.
Each input is read once, converted on the fly while ``s`` and ``d`` are formed; MSE
and PSNR are summed (in float64) from ``d`` when it is exact (8-bit inputs, or a
float64 ``compute_dtype``), and the range check is skipped for types whose every value
is in range (``uint8`` with ``data_range=255``). Batches are processed in chunks to
bound memory, all in one set of buffers allocated once per call.

What is compared for unpaired translation (CycleGAN ``G: X -> Y``, ``F: Y -> X``):

* **cycle reconstruction** ``x`` vs ``F(G(x))``: how well the cycle restores the input
  (the cycle-consistency loss measured with SSIM/PSNR/MSE);
* **translation (content preservation)** ``x`` vs ``G(x)``: how much of the input's
  structure survives translation to the other domain. There is no ground truth
  ``G(x)`` for unpaired data, so this does not measure correctness; a perfect
  translator must change colour and texture and cannot score SSIM 1.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass

import numpy as np
import torch

#: Wang et al. (2004) constants and Gaussian window.
K1 = 0.01
K2 = 0.03
GAUSSIAN_SIGMA = 1.5
#: ``scipy.ndimage`` truncation giving the 11-tap window for sigma 1.5, as skimage uses.
GAUSSIAN_TRUNCATE = 3.5

#: Output rows/columns per block of the banded filter matrices (see ``_filter_moments``):
#: a block of ``b`` outputs costs ``b + 2r`` multiply-adds each, so smaller blocks waste
#: less arithmetic until the products get too small for BLAS. Measured best on 2 CPU
#: cores (256x256 RGB, 32 -> 16 saved ~10% in float32; 24 in float64).
_BLOCK = {torch.float32: 16, torch.float64: 24}
#: Unsigned types torch cannot reduce or filter, and the type that holds their values.
_WIDENED = {torch.uint16: torch.int32, torch.uint32: torch.int64, torch.uint64: torch.float64}

#: Values per chunk of image pairs (both images): one RGB 256x256 pair on CPU (its
#: planes stay in the cache; larger chunks measured slower), ~170 fill a GPU well. The working memory is about 50 bytes per value.
_CHUNK_VALUES = {"cpu": 2 * 3 * 256 * 256, "cuda": 2**25}


@dataclass(frozen=True)
class SSIMSettings:
    """The settings a report must carry with SSIM/PSNR/MSE numbers."""

    data_range: float
    window: int
    sigma: float
    k1: float
    k2: float
    covariance: str = "population"
    region: str = "valid: pixels at least window//2 from the border, as skimage"

    def as_dict(self) -> dict:
        return asdict(self)


def gaussian_window_radius(
    sigma: float = GAUSSIAN_SIGMA, truncate: float = GAUSSIAN_TRUNCATE
) -> int:
    """Radius of ``scipy.ndimage.gaussian_filter``'s kernel: ``int(truncate * sigma + 0.5)``."""
    if not sigma > 0:
        raise ValueError(f"sigma must be positive, got {sigma}")
    return int(truncate * sigma + 0.5)


def ssim_settings(data_range: float, sigma: float = GAUSSIAN_SIGMA) -> SSIMSettings:
    return SSIMSettings(
        data_range=float(data_range),
        window=2 * gaussian_window_radius(sigma) + 1,
        sigma=sigma,
        k1=K1,
        k2=K2,
    )


def check_image_batches(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float,
    min_size: int = 1,
    names: tuple[str, str] = ("preds", "target"),
) -> None:
    """Validate two ``(N, C, H, W)`` batches whose values must lie in ``[0, data_range]``.

    Raises ``ValueError`` naming the argument (and image index) for: a data range that
    is not a positive number, a wrong number of dimensions, an empty batch, different
    image counts, channel counts or sizes, images smaller than ``min_size`` pixels per
    side, NaN or infinite values, and values outside ``[0, data_range]`` (e.g. 16-bit
    images checked against ``data_range=255``).
    """
    if (
        isinstance(data_range, bool)
        or not isinstance(data_range, int | float)
        or not 0 < data_range < math.inf
    ):
        raise ValueError(
            f"data_range must be a positive number (255 for 8-bit images, 1.0 for [0, 1] floats), "
            f"got {data_range!r}"
        )
    for name, batch in zip(names, (preds, target), strict=True):
        if not isinstance(batch, torch.Tensor):
            raise ValueError(
                f"{name} must be a torch.Tensor of shape (N, C, H, W), got {type(batch).__name__}"
            )
        if batch.ndim != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got shape {tuple(batch.shape)}")
        if batch.shape[0] == 0:
            raise ValueError(f"{name} is empty: no images to compare")
        if batch.is_complex() or batch.dtype == torch.bool:
            raise ValueError(f"{name} must hold real numbers, got dtype {batch.dtype}")
    if preds.shape[0] != target.shape[0]:
        raise ValueError(
            f"{names[0]} has {preds.shape[0]} images but {names[1]} has {target.shape[0]}"
        )
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
            f"images of size {tuple(preds.shape[2:])} (H, W) are smaller than the {min_size}x{min_size} SSIM window"
        )
    for name, batch in zip(names, (preds, target), strict=True):
        if _fits_data_range(batch.dtype, data_range):
            continue  # e.g. uint8 with data_range 255: every value is in range, no pass needed
        flat = widen(batch).flatten(1)
        if batch.is_floating_point():
            bad = ~torch.isfinite(flat).all(dim=1)
            if bad.any():
                raise ValueError(
                    f"{name}[{int(bad.nonzero()[0, 0])}] contains NaN or infinite values"
                )
        lowest, highest = flat.amin(dim=1), flat.amax(dim=1)
        outside = (lowest < 0) | (highest > data_range)
        if outside.any():
            index = int(outside.nonzero()[0, 0])
            raise ValueError(
                f"{name}[{index}] has values in [{float(lowest[index])}, {float(highest[index])}], "
                f"outside the data range [0, {data_range}]; pass the data_range the images are stored in "
                f"(map [-1, 1] generator output to [0, 1] first: SSIM's luminance term assumes "
                f"non-negative intensities)"
            )


def _fits_data_range(dtype: torch.dtype, data_range: float) -> bool:
    """Whether every value of an unsigned integer ``dtype`` lies in ``[0, data_range]``."""
    unsigned = dtype in (torch.uint8, *_WIDENED)
    return unsigned and torch.iinfo(dtype).max <= data_range


def widen(batch: torch.Tensor) -> torch.Tensor:
    """``batch`` itself, or a copy in a wider type for ``uint16/32/64`` (see the module docstring)."""
    wider = _WIDENED.get(batch.dtype)
    return batch if wider is None else batch.to(wider)


def _banded_gaussian(
    n_in: int, radius: int, sigma: float, dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """``(n_in, n_in - 2r)`` matrix ``B`` with ``(v @ B)[j] = sum_k w[k] v[j + k]``.

    ``w`` is scipy's normalised Gaussian kernel ``exp(-k^2 / (2 sigma^2))``, ``|k| <= r``:
    multiplying by ``B`` is a 1-D Gaussian filter restricted to the valid region.
    """
    offsets = torch.arange(-radius, radius + 1, dtype=torch.float64)
    taps = torch.exp(-0.5 * (offsets / sigma) ** 2)
    taps /= taps.sum()
    n_out = n_in - 2 * radius
    band = torch.zeros(n_in, n_out, dtype=torch.float64)
    columns = torch.arange(n_out)
    for k in range(2 * radius + 1):
        band[columns + k, columns] = taps[k]
    return band.to(dtype=dtype, device=device)


def _filter_moments(
    buffer: torch.Tensor,
    band: torch.Tensor,
    radius: int,
    *,
    along_h: torch.Tensor,
    out: torch.Tensor,
) -> torch.Tensor:
    """Gaussian-filter every plane of ``buffer`` over the valid region, without copies.

    ``buffer`` is ``(P * Hp + 2r, W)``: ``P`` planes of ``Hp x W`` values (``Hp`` a
    multiple of the block ``b``), then ``2r`` more rows. Output rows and columns are cut
    into blocks of ``b``: a block of ``b`` outputs needs ``b + 2r`` inputs, so each pass
    is a batched product with the small ``(b + 2r) x b`` band matrix over overlapping
    strided views of the buffer (``as_strided``), which is ~8x less arithmetic than the
    full ``H x (H-2r)`` band matrix and needs no copy. Outputs past the valid region read
    across plane or row ends (rows past the image height, the extra rows); they are
    garbage that the caller crops, and only need to be finite.

    ``along_h`` (at least ``P * Hp * W + b + 2r`` values) and ``out`` (at least
    ``W_blocks * P * Hp * b``) are flat storage from the workspace. Returns ``out`` as
    ``(W_blocks, P * Hp, b)``: entry ``[j, p * Hp + i, c]`` is the filtered value of
    plane ``p`` at row ``i`` and column ``j * b + c``.
    """
    length, block = band.shape  # b + 2r, b
    planes_rows, width = buffer.shape[0] - 2 * radius, buffer.shape[1]
    n_row_blocks = planes_rows // block
    n_col_blocks = -(-(width - 2 * radius) // block)
    # pass 1, along H: blocks of input rows overlap by 2r
    rows_in = buffer.as_strided((n_row_blocks, length, width), (block * width, width, 1))
    torch.bmm(
        band.T.expand(n_row_blocks, block, length),
        rows_in,
        out=along_h[: planes_rows * width].view(n_row_blocks, block, width),
    )  # (P * Hp, W): rows i < height - 2r valid
    # pass 2, along W: blocks of input columns overlap by 2r
    cols_in = along_h.as_strided((n_col_blocks, planes_rows, length), (block, width, 1))
    filtered = out[: n_col_blocks * planes_rows * block].view(n_col_blocks, planes_rows, block)
    return torch.bmm(cols_in, band.expand(n_col_blocks, length, block), out=filtered)


class _Workspace:
    """Buffers for the largest chunk, allocated once per call and reused by every chunk.

    Allocating them per chunk cost more than the filtering itself: glibc hands blocks of
    megabytes back to the system when they are freed, so every chunk page-faulted its
    buffers in again (on 2 cores, 256x256 RGB: 4.8 ms per pair instead of 1.4).
    """

    def __init__(
        self,
        *,
        pairs: int,
        shape: tuple[int, int, int],
        band: torch.Tensor,
        radius: int,
        squares: bool,
    ) -> None:
        c, h, w = shape
        length, block = band.shape
        planes_values = 4 * pairs * c * (-(-h // block) * block) * w
        n_col_blocks = -(-(w - 2 * radius) // block)
        options = {"dtype": band.dtype, "device": band.device}
        # zeros, so that the garbage outputs (see _filter_moments) start finite
        self.planes = torch.zeros(planes_values + 2 * radius * w, **options)
        self.along_h = torch.zeros(planes_values + length, **options)
        self.filtered = torch.empty(n_col_blocks * planes_values // w * block, **options)
        self.scratch = torch.empty(n_col_blocks * planes_values // (4 * w) * block, **options)
        self.squares = (
            torch.empty(pairs * c * h * w, dtype=torch.float64, device=band.device)
            if squares
            else None
        )


def _ssim_chunk(
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    data_range: float,
    band: torch.Tensor,
    radius: int,
    workspace: _Workspace,
    squared_differences: bool,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Mean SSIM of each pair of ``(N, C, H, W)`` batches, computed in ``band.dtype``.

    With ``s = x + y`` and ``d = x - y`` (so ``mu_s = mu_x + mu_y``, ``sigma_s^2 =
    sigma_x^2 + sigma_y^2 + 2 sigma_xy``, and likewise for ``d`` with minus signs), the
    SSIM map needs only four filtered moments instead of five::

        S = (mu_s^2 - mu_d^2 + 2 C1) (sigma_s^2 - sigma_d^2 + 2 C2)
            / ((mu_s^2 + mu_d^2 + 2 C1) (sigma_s^2 + sigma_d^2 + 2 C2))

    which is Wang et al.'s formula multiplied by 4/4. ``s`` and ``d`` are centred on
    their per-channel image means before squaring so that ``sigma^2 = E[v^2] - E[v]^2``
    does not cancel catastrophically in float32 (any constant works: it is added back
    to the filtered mean).

    ``x`` and ``y`` may be in any real dtype and memory layout (e.g. uint8 views of
    ``(N, H, W, C)`` arrays): each is read once, converted on the fly into ``s`` and ``d``.
    With ``squared_differences``, also returns ``sum (x - y)^2`` per pair from ``d``
    (in float64), for MSE/PSNR; the caller asks only when ``d`` is exact.
    """
    n, c, h, w = x.shape
    block = band.shape[1]
    padded_h = -(-h // block) * block
    planes_rows = 4 * n * c * padded_h
    buffer = workspace.planes[: (planes_rows + 2 * radius) * w].view(planes_rows + 2 * radius, w)
    planes = buffer[:planes_rows].view(4, n, c, padded_h, w)
    s, d, s2, d2 = planes[..., :h, :].unbind(0)
    s.copy_(x).add_(y)
    d.copy_(x).sub_(y)
    total_squared = None
    if squared_differences:
        exact = workspace.squares[: d.numel()].view(n, 1, -1)
        exact.view_as(d).copy_(d)  # exact values; products and sums below 2**53 stay exact
        total_squared = torch.bmm(exact, exact.transpose(1, 2)).view(n)
    mean_s, mean_d = s.mean(dim=(-2, -1), keepdim=True), d.mean(dim=(-2, -1), keepdim=True)
    s.sub_(mean_s)
    d.sub_(mean_d)
    torch.mul(s, s, out=s2)
    torch.mul(d, d, out=d2)
    filtered = _filter_moments(
        buffer, band, radius, along_h=workspace.along_h, out=workspace.filtered
    )
    n_col_blocks = filtered.shape[0]
    f_s, f_d, f_s2, f_d2 = filtered.view(n_col_blocks, 4, n, c, padded_h, block).unbind(1)
    # in place from here on: each filtered plane is overwritten once it is not needed again
    var_s = f_s2.addcmul_(f_s, f_s, value=-1)
    var_d = f_d2.addcmul_(f_d, f_d, value=-1)
    mu_s2 = f_s.add_(mean_s.view(1, n, c, 1, 1)).square_()
    mu_d2 = f_d.add_(mean_d.view(1, n, c, 1, 1)).square_()
    c1, c2 = (K1 * data_range) ** 2, (K2 * data_range) ** 2
    numerator = workspace.scratch[: mu_s2.numel()].view_as(mu_s2)
    torch.sub(mu_s2, mu_d2, out=numerator).add_(2 * c1)
    denominator = mu_s2.add_(mu_d2).add_(2 * c1)
    contrast = torch.sub(var_s, var_d, out=mu_d2).add_(2 * c2)  # mu_d2 is not needed again
    numerator.mul_(contrast)
    denominator.mul_(var_s.add_(var_d).add_(2 * c2))
    s_map = numerator.div_(denominator)[..., : h - 2 * radius, :]  # (W_blocks, N, C, H-2r, b)
    valid_w = w - 2 * radius
    last = valid_w - (n_col_blocks - 1) * block  # valid columns in the last block
    # float32 sums over at most (H-2r) x b values, then float64 across blocks and channels
    total = s_map[:-1].sum(dim=(3, 4)).double().sum(dim=(0, 2)) + s_map[-1, ..., :last].sum(
        dim=(2, 3)
    ).double().sum(dim=1)
    return total / (c * (h - 2 * radius) * valid_w), total_squared


def image_quality(
    preds: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float,
    sigma: float = GAUSSIAN_SIGMA,
    device: torch.device | str | None = None,
    compute_dtype: torch.dtype = torch.float32,
    chunk_size: int | None = None,
    metrics: Sequence[str] = ("ssim", "psnr", "mse"),
) -> dict[str, torch.Tensor]:
    """SSIM, PSNR and MSE of each pair, in one pass over chunks of the batch.

    Args:
        preds, target: ``(N, C, H, W)`` batches of the same shape, values in
            ``[0, data_range]`` (all three metrics are symmetric in their arguments).
        data_range: ``R``, the width of the value range: 255 for 8-bit images, 1.0 for
            floats in [0, 1]. Values outside ``[0, R]`` raise ``ValueError``.
        sigma: Gaussian window sigma (1.5 in Wang et al.; window ``2*int(3.5*sigma+0.5)+1``).
        device: where to compute (default: ``preds.device``); chunks are moved there.
        compute_dtype: float type of the SSIM filtering (float32 agrees with skimage to
            ~1e-7; float64 to ~1e-14 at about half the speed). MSE/PSNR use float64.
        chunk_size: pairs per chunk (default: one RGB 256x256 pair on CPU, 170 on GPU).
        metrics: which of ``"ssim"``, ``"psnr"``, ``"mse"`` to compute.

    Returns:
        ``{name: float64 tensor (N,)}`` on the CPU for each requested metric.
    """
    unknown = set(metrics) - {"ssim", "psnr", "mse"}
    if unknown or not metrics:
        raise ValueError(
            f"metrics must be a non-empty subset of ('ssim', 'psnr', 'mse'), got {tuple(metrics)}"
        )
    radius = gaussian_window_radius(sigma)
    check_image_batches(preds, target, data_range=data_range, min_size=2 * radius + 1)
    device = torch.device(device) if device is not None else preds.device
    n, c, h, w = preds.shape
    if chunk_size is None:
        chunk_size = max(
            1, _CHUNK_VALUES.get(device.type, _CHUNK_VALUES["cuda"]) // (2 * c * h * w)
        )
    if chunk_size < 1:
        raise ValueError(f"chunk_size must be at least 1, got {chunk_size}")
    block = _BLOCK.get(compute_dtype, 16)
    band = _banded_gaussian(block + 2 * radius, radius, sigma, compute_dtype, device)
    results: dict[str, list[torch.Tensor]] = {name: [] for name in metrics}
    workspace = None
    if "ssim" in metrics:
        workspace = _Workspace(
            pairs=min(chunk_size, n),
            shape=(c, h, w),
            band=band,
            radius=radius,
            squares=("mse" in metrics or "psnr" in metrics)
            and _differences_exact(_WIDENED.get(preds.dtype, preds.dtype), compute_dtype),
        )
    with _exact_float32_matmul():
        for start in range(0, n, chunk_size):
            x = widen(preds[start : start + chunk_size]).to(device)
            y = widen(target[start : start + chunk_size]).to(device)
            _quality_chunk(
                x,
                y,
                results,
                data_range=data_range,
                band=band,
                radius=radius,
                workspace=workspace,
                compute_dtype=compute_dtype,
            )
    return {name: torch.cat(values) for name, values in results.items()}


def _differences_exact(dtype: torch.dtype, compute_dtype: torch.dtype) -> bool:
    """Whether ``x - y`` and its square are exact in ``compute_dtype`` for inputs of ``dtype``.

    True for float64 (then MSE from SSIM's ``d`` plane is the float64 MSE itself) and for
    8-bit integers (differences of at most 255, squares below 2**24) in float32.
    """
    return compute_dtype == torch.float64 or dtype in (torch.uint8, torch.int8)


def _quality_chunk(
    x: torch.Tensor,
    y: torch.Tensor,
    results: dict[str, list[torch.Tensor]],
    *,
    data_range: float,
    band: torch.Tensor,
    radius: int,
    workspace: _Workspace | None,
    compute_dtype: torch.dtype,
) -> None:
    """Append the chunk's values to ``results[name]`` for each requested metric.

    MSE and PSNR come from the SSIM pass's difference plane when it is exact (see
    :func:`_differences_exact`), so the pixels are read once; otherwise from float64.
    """
    wants_mse = "mse" in results or "psnr" in results
    total_squared = None
    if "ssim" in results:
        values, total_squared = _ssim_chunk(
            x,
            y,
            data_range=data_range,
            band=band,
            radius=radius,
            workspace=workspace,
            squared_differences=workspace.squares is not None,
        )
        results["ssim"].append(values.cpu())
    if not wants_mse:
        return
    if total_squared is None:
        total_squared = (x.to(torch.float64) - y.to(torch.float64)).square_().sum(dim=(1, 2, 3))
    mse_values = total_squared / x[0].numel()
    if "mse" in results:
        results["mse"].append(mse_values.cpu())
    if "psnr" in results:
        results["psnr"].append((10.0 * torch.log10(data_range**2 / mse_values)).cpu())


@contextlib.contextmanager
def _exact_float32_matmul() -> Iterator[None]:
    """Run float32 matrix products in full float32, whatever the process chose.

    Training code often sets ``torch.set_float32_matmul_precision("high")`` (TF32 on
    GPU) for speed. TF32 keeps 10 mantissa bits: on an H200 it moved SSIM up to 2.7e-6
    away from skimage, against 2e-8 in float32. The previous setting is restored on exit.
    """
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("highest")
    try:
        yield
    finally:
        torch.set_float32_matmul_precision(previous)


def ssim(preds: torch.Tensor, target: torch.Tensor, *, data_range: float, **kwargs) -> torch.Tensor:
    """Per-pair mean SSIM, shape ``(N,)`` (arguments as :func:`image_quality`)."""
    return image_quality(preds, target, data_range=data_range, metrics=("ssim",), **kwargs)["ssim"]


def psnr(preds: torch.Tensor, target: torch.Tensor, *, data_range: float, **kwargs) -> torch.Tensor:
    """Per-pair PSNR in dB, ``10 log10(R^2 / MSE)``; ``+inf`` for identical images."""
    return image_quality(preds, target, data_range=data_range, metrics=("psnr",), **kwargs)["psnr"]


def mse(preds: torch.Tensor, target: torch.Tensor, *, data_range: float, **kwargs) -> torch.Tensor:
    """Per-pair mean squared error; ``data_range`` only validates the values."""
    return image_quality(preds, target, data_range=data_range, metrics=("mse",), **kwargs)["mse"]


def summarize(values: Sequence[float] | np.ndarray | torch.Tensor) -> dict[str, float | int | None]:
    """Aggregate per-image values: ``n``, ``mean``, ``std`` (sample, ddof=1), ``median``, ``min``, ``max``.

    Statistics are over the finite values; ``n_nonfinite`` counts the others (PSNR is
    ``+inf`` for identical pairs). With no finite value the statistics are ``None``,
    and ``std`` is ``None`` with fewer than two.
    """
    array = np.asarray(
        values.cpu() if isinstance(values, torch.Tensor) else values, dtype=np.float64
    ).ravel()
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
