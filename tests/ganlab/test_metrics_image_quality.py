"""SSIM/PSNR/MSE agree with scikit-image and reject bad input with a clear error."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from skimage.metrics import mean_squared_error, peak_signal_noise_ratio, structural_similarity

from ganlab.data.demo import demo_tile
from ganlab.metrics.image_quality import image_quality, mse, psnr, ssim, ssim_settings, summarize

TOLERANCE = 1e-4


def _skimage(first: np.ndarray, second: np.ndarray, data_range: float) -> dict[str, np.ndarray]:
    """The reference: scikit-image on each (H, W, C) pair."""
    return {
        "ssim": np.array(
            [
                structural_similarity(
                    a,
                    b,
                    data_range=data_range,
                    gaussian_weights=True,
                    sigma=1.5,
                    use_sample_covariance=False,
                    channel_axis=-1,
                )
                for a, b in zip(first, second, strict=True)
            ]
        ),
        "psnr": np.array(
            [
                peak_signal_noise_ratio(a, b, data_range=data_range)
                for a, b in zip(first, second, strict=True)
            ]
        ),
        "mse": np.array([mean_squared_error(a, b) for a, b in zip(first, second, strict=True)]),
    }


def _nchw(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2)


def _assert_agrees(first: np.ndarray, second: np.ndarray, data_range: float, **kwargs) -> None:
    expected = _skimage(first, second, data_range)
    ours = image_quality(_nchw(first), _nchw(second), data_range=data_range, **kwargs)
    for name in ("ssim", "psnr", "mse"):
        assert ours[name].dtype == torch.float64 and ours[name].shape == (len(first),)
        np.testing.assert_allclose(
            ours[name].numpy(), expected[name], rtol=0, atol=TOLERANCE, err_msg=name
        )


@pytest.mark.parametrize("compute_dtype", [torch.float32, torch.float64])
def test_random_uint8_images_agree_with_skimage_at_odd_sizes(compute_dtype) -> None:
    """Both compute types take MSE/PSNR from the SSIM pass's difference plane for uint8."""
    rng = np.random.default_rng(0)
    first = rng.integers(0, 256, (3, 45, 70, 3), dtype=np.uint8)  # sizes not multiples of the block
    second = rng.integers(0, 256, (3, 45, 70, 3), dtype=np.uint8)
    _assert_agrees(first, second, 255, compute_dtype=compute_dtype)
    _assert_agrees(first[:1, :11, :11], second[:1, :11, :11], 255, compute_dtype=compute_dtype)


# skimage's PSNR of equal images divides by zero
@pytest.mark.filterwarnings("ignore:divide by zero:RuntimeWarning")
def test_constant_images_agree_with_skimage() -> None:
    """Zero variance everywhere: SSIM is the luminance term alone (exactly 1 for equal levels)."""
    rng = np.random.default_rng(5)
    flat = np.stack([np.full((33, 40, 3), level, np.uint8) for level in (0, 17, 255)])
    other = np.stack([np.full((33, 40, 3), level, np.uint8) for level in (0, 200, 254)])
    noise = rng.integers(0, 256, flat.shape, dtype=np.uint8)
    expected = _skimage(flat[:1], other[:1], 255)
    assert expected["ssim"][0] == 1.0 and expected["mse"][0] == 0.0
    _assert_agrees(flat[1:], other[1:], 255)
    _assert_agrees(flat, noise, 255)
    ours = image_quality(_nchw(flat[:1]), _nchw(other[:1]), data_range=255)
    assert ours["ssim"].item() == pytest.approx(1.0, abs=1e-7) and ours["psnr"].item() == math.inf


def test_uint8_with_a_smaller_data_range_is_still_range_checked() -> None:
    """uint8 skips the range check only when 255 fits the data range."""
    rng = np.random.default_rng(6)
    first = rng.integers(0, 101, (2, 24, 24, 3), dtype=np.uint8)
    second = rng.integers(0, 101, (2, 24, 24, 3), dtype=np.uint8)
    _assert_agrees(first, second, 100)
    second[1, 3, 3, 0] = 101
    with pytest.raises(ValueError, match=r"target\[1\] has values in \[\d+\.0, 101\.0\], outside"):
        image_quality(_nchw(first), _nchw(second), data_range=100)


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32])
def test_16_bit_images_agree_with_skimage(dtype) -> None:
    """Microscopy TIFFs are often 16-bit: torch implements little arithmetic on uint16, so the
    values are widened exactly before any reduction or filtering."""
    rng = np.random.default_rng(4)
    first = rng.integers(0, 65536, (2, 40, 52, 3)).astype(dtype)
    noise = rng.integers(-4000, 4000, first.shape)
    second = np.clip(first.astype(np.int64) + noise, 0, 65535).astype(dtype)
    _assert_agrees(first, second, 65535)
    with pytest.raises(
        ValueError,
        match=r"preds\[0\] has values in \[\d+\.0, \d+\.0\], outside the data range \[0, 255\]",
    ):
        image_quality(_nchw(first), _nchw(second), data_range=255)


def test_demo_tiles_agree_with_skimage_for_noise_and_unrelated_pairs() -> None:
    rng = np.random.default_rng(1)
    tiles = np.stack(
        [demo_tile(label, i, size=96) for label in ("benign", "malignant") for i in range(2)]
    )
    noisy = np.clip(tiles.astype(int) + rng.integers(-25, 26, tiles.shape), 0, 255).astype(np.uint8)
    _assert_agrees(tiles, noisy, 255)  # similar pairs: SSIM well above 0
    _assert_agrees(tiles, tiles[::-1].copy(), 255)  # unrelated pairs


def test_float_images_in_unit_range_and_grayscale_agree_with_skimage() -> None:
    rng = np.random.default_rng(2)
    bright = 0.99 + 0.01 * rng.random(
        (2, 40, 33, 1)
    )  # bright, low variance: float32 cancellation risk
    _assert_agrees(bright, np.clip(bright + rng.normal(0, 1e-3, bright.shape), 0, 1), 1.0)
    first, second = rng.random((2, 24, 24, 3)), rng.random((2, 24, 24, 3))
    _assert_agrees(first, second, 1.0, compute_dtype=torch.float64)


def test_sharp_edges_with_flat_regions_agree_with_skimage() -> None:
    edges = np.full((2, 48, 48, 3), 200, np.uint8)
    edges[:, :, 24:] = 3
    shifted = edges.copy()
    shifted[:, 10:13, :] = 201
    _assert_agrees(edges, shifted, 255)


def test_chunking_does_not_change_the_values() -> None:
    rng = np.random.default_rng(3)
    first = _nchw(rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8))
    second = _nchw(rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8))
    whole = image_quality(first, second, data_range=255, chunk_size=5)
    one_by_one = image_quality(first, second, data_range=255, chunk_size=1)
    for name in whole:
        torch.testing.assert_close(whole[name], one_by_one[name], rtol=0, atol=1e-12)


def test_single_metric_helpers_and_identical_images() -> None:
    image = _nchw(demo_tile("benign", 0, size=48)[None])
    assert ssim(image, image, data_range=255).item() == pytest.approx(1.0, abs=1e-6)
    assert mse(image, image, data_range=255).item() == 0.0
    assert psnr(image, image, data_range=255).item() == math.inf


def test_settings_describe_wang_et_al() -> None:
    settings = ssim_settings(255)
    assert (settings.window, settings.sigma, settings.k1, settings.k2) == (11, 1.5, 0.01, 0.03)
    assert settings.as_dict()["covariance"] == "population"


@pytest.mark.parametrize(
    ("first", "second", "kwargs", "message"),
    [
        (
            torch.zeros(1, 3, 16, 16),
            torch.zeros(1, 3, 16, 17),
            {},
            r"image sizes differ: preds is \(16, 16\)",
        ),
        (
            torch.zeros(1, 3, 16, 16),
            torch.zeros(1, 1, 16, 16),
            {},
            "channel counts differ: preds has 3 channels, target has 1",
        ),
        (torch.zeros(0, 3, 16, 16), torch.zeros(0, 3, 16, 16), {}, "preds is empty"),
        (
            torch.zeros(2, 3, 16, 16),
            torch.zeros(1, 3, 16, 16),
            {},
            "preds has 2 images but target has 1",
        ),
        (
            torch.zeros(1, 3, 10, 16),
            torch.zeros(1, 3, 10, 16),
            {},
            "smaller than the 11x11 SSIM window",
        ),
        (
            torch.zeros(3, 16, 16),
            torch.zeros(3, 16, 16),
            {},
            r"preds must have shape \(N, C, H, W\)",
        ),
        (
            torch.zeros(1, 3, 16, 16),
            torch.zeros(1, 3, 16, 16),
            {"data_range": 0},
            "data_range must be a positive number",
        ),
        (
            torch.zeros(1, 3, 16, 16),
            torch.zeros(1, 3, 16, 16),
            {"chunk_size": 0},
            "chunk_size must be at least 1",
        ),
        (
            torch.zeros(1, 3, 16, 16),
            torch.zeros(1, 3, 16, 16),
            {"metrics": ("lpips",)},
            "metrics must be",
        ),
    ],
)
def test_bad_shapes_and_arguments_raise_value_errors(first, second, kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        image_quality(first, second, **({"data_range": 1.0} | kwargs))


def test_nan_and_out_of_range_values_name_the_image() -> None:
    good = torch.full((3, 3, 16, 16), 0.5)
    with_nan = good.clone()
    with_nan[1, 0, 3, 3] = math.nan
    with pytest.raises(ValueError, match=r"target\[1\] contains NaN"):
        image_quality(good, with_nan, data_range=1.0)
    tanh_output = good.clone()
    tanh_output[2] = -0.5
    with pytest.raises(
        ValueError,
        match=r"preds\[2\] has values in \[-0.5, -0.5\], outside the data range \[0, 1.0\]",
    ):
        image_quality(tanh_output, good, data_range=1.0)
    with pytest.raises(ValueError, match="outside the data range"):
        image_quality(torch.full((1, 3, 16, 16), 255, dtype=torch.uint8), good[:1], data_range=1.0)


def test_summarize_reports_sample_std_median_and_skips_infinite_psnr() -> None:
    summary = summarize([1.0, 2.0, 4.0, math.inf])
    assert summary == {
        "n": 4,
        "n_nonfinite": 1,
        "mean": pytest.approx(7 / 3),
        "std": pytest.approx(np.std([1.0, 2.0, 4.0], ddof=1)),
        "median": 2.0,
        "min": 1.0,
        "max": 4.0,
    }
    assert summarize([math.inf])["mean"] is None
    assert summarize([3.0])["std"] is None


def test_reduced_precision_matmul_setting_is_overridden_and_restored() -> None:
    rng = np.random.default_rng(4)
    first = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    second = rng.integers(0, 256, (2, 32, 32, 3), dtype=np.uint8)
    previous = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")  # what speed-minded training code sets
    try:
        _assert_agrees(first, second, 255)
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(previous)
