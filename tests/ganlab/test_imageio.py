"""decode_image: the pixel limit on the true frame size for every TIFF layout, the first
frame of multi-frame files, and orientation applied before anything else."""

from __future__ import annotations

import io
import re

import numpy as np
import pytest
import tifffile
from PIL import Image

from ganlab.data.imageio import ImageDecodeError, decode_image

LIMIT = 1000  # pixels; 40x25 is exactly at it, 40x26 over it


def _pattern(height: int, width: int) -> np.ndarray:
    """Distinct values everywhere, so any wrong transposition or sample order shows."""
    rng = np.random.default_rng(height * 1000 + width)
    return rng.integers(0, 256, (height, width, 3), dtype=np.uint8)


def _tiff(pixels: np.ndarray, *, planar: bool, orientation: int | None = None) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(
        buffer,
        np.moveaxis(pixels, -1, 0) if planar else pixels,  # planar: S x H x W
        photometric="rgb",
        planarconfig="separate" if planar else "contig",
        extratags=[(274, "H", 1, orientation, True)] if orientation else [],
    )
    return buffer.getvalue()


def _with_exif_orientation(pixels: np.ndarray, orientation: int, fmt: str, **save) -> bytes:
    image = Image.fromarray(pixels)
    exif = image.getexif()
    exif[0x0112] = orientation  # Orientation
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, exif=exif, **save)
    return buffer.getvalue()


@pytest.mark.parametrize("planar", [False, True], ids=["contiguous", "planar"])
def test_tiff_at_the_limit_is_decoded_exactly(planar):
    pixels = _pattern(25, 40)
    data = _tiff(pixels, planar=planar)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:  # the layout under test really is planar
        assert tif.pages[0].axes == ("SYX" if planar else "YXS")
    decoded = decode_image(data, max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded.pixels, pixels)
    assert (decoded.width, decoded.height, decoded.frame_count) == (40, 25, 1)


@pytest.mark.parametrize("planar", [False, True], ids=["contiguous", "planar"])
def test_tiff_over_the_limit_is_refused_whatever_the_sample_layout(planar):
    # planar 3 x 26 x 40: shape[0] * shape[1] is only 78, the frame is 1040 pixels
    data = _tiff(_pattern(26, 40), planar=planar)
    with pytest.raises(ImageDecodeError, match="40x26 pixels exceeds the limit of 1000 pixels"):
        decode_image(data, path="big.tif", max_pixels=LIMIT)


def test_multi_page_tiff_gives_its_first_page_and_says_how_many():
    first, second = _pattern(25, 40), _pattern(100, 100)
    buffer = io.BytesIO()
    with tifffile.TiffWriter(buffer) as tif:
        tif.write(first, photometric="rgb")
        tif.write(second, photometric="rgb")  # over the limit: never decoded
    decoded = decode_image(buffer.getvalue(), max_pixels=LIMIT)
    np.testing.assert_array_equal(decoded.pixels, first)
    assert decoded.frame_count == 2


@pytest.mark.parametrize(
    ("array", "options", "reason"),
    [
        (
            np.zeros((4, 32, 32), np.uint8),
            {"volumetric": True, "tile": (16, 16), "photometric": "minisblack"},
            "volumetric TIFF (4 slices per page) is not supported",
        ),
        (
            np.zeros((20, 30, 5), np.uint8),
            {"photometric": "minisblack", "planarconfig": "contig"},
            "5 samples per pixel are not supported",
        ),
    ],
    ids=["volumetric", "five-samples"],
)
def test_tiff_layouts_that_are_not_an_image_are_refused_before_decoding(array, options, reason):
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, array, **options)
    with pytest.raises(ImageDecodeError, match=re.escape(reason)):
        decode_image(buffer.getvalue(), path="odd.tif")


def test_jpeg_orientation_6_is_rotated_90_degrees_clockwise():
    pixels = np.full((32, 64, 3), 255, np.uint8)  # 64 wide, 32 tall, white
    pixels[:16, :16] = (255, 0, 0)  # red top-left corner
    decoded = decode_image(_with_exif_orientation(pixels, 6, "JPEG", quality=95))
    assert (decoded.width, decoded.height, decoded.orientation) == (32, 64, 6)
    # turned clockwise, the top-left corner is now top-right
    assert decoded.pixels[2:14, -14:-2].mean(axis=(0, 1)) == pytest.approx((255, 0, 0), abs=12)
    assert decoded.pixels[2:14, 2:14].min() > 240
    expected = np.rot90(pixels, -1).astype(int)
    assert np.abs(decoded.pixels.astype(int) - expected).mean() < 3


@pytest.mark.parametrize("orientation", range(1, 9))
def test_tiff_orientation_tag_matches_pillows_exif_transpose(orientation):
    """The TIFF path (numpy) and the PNG/JPEG path (ImageOps.exif_transpose) agree on all 8."""
    pixels = _pattern(5, 7)
    from_png = decode_image(_with_exif_orientation(pixels, orientation, "PNG"))
    for planar in (False, True):
        from_tiff = decode_image(_tiff(pixels, planar=planar, orientation=orientation))
        np.testing.assert_array_equal(from_tiff.pixels, from_png.pixels)
        assert from_tiff.orientation == from_png.orientation == orientation
    if orientation in (5, 6, 7, 8):
        assert from_png.pixels.shape == (7, 5, 3)
