"""import_folder on layouts that used to slip through: planar TIFFs and the pixel limit,
EXIF orientation, multi-page TIFFs."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from ratingstudy.catalog.models import Image, ImageSet
from tests.ratingstudy.catalog.test_import_tiles import stored_pixels
from tests.ratingstudy.catalog.test_importers import media_files

pytestmark = pytest.mark.django_db


def _noise(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def _tiff_write(path: Path, pixels: np.ndarray, *, planar: bool) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tifffile.imwrite(
        path,
        np.moveaxis(pixels, -1, 0) if planar else pixels,
        photometric="rgb",
        planarconfig="separate" if planar else "contig",
    )


def test_tiffs_at_the_pixel_limit_are_imported_in_both_layouts(tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 1000
    folder = tmp_path / "at-limit"
    pixels = {"contig.tif": _noise(25, 40, 1), "planar.tif": _noise(25, 40, 2)}
    for name, array in pixels.items():
        _tiff_write(folder / name, array, planar=name.startswith("planar"))
    call_command("import_folder", folder, "--label", "benign", "--name", "at-limit")
    for image in Image.objects.filter(image_set__name="at-limit"):
        assert (image.width, image.height) == (40, 25)
        np.testing.assert_array_equal(stored_pixels(image), pixels[image.source_path])


@pytest.mark.parametrize("planar", [False, True], ids=["contiguous", "planar"])
def test_tiff_over_the_pixel_limit_is_refused_whatever_its_layout(tmp_path, settings, planar):
    settings.IMAGE_MAX_PIXELS = 1000
    folder = tmp_path / "over-limit"
    _tiff_write(folder / "ok.tif", _noise(25, 40), planar=planar)
    _tiff_write(folder / "big.tif", _noise(26, 40), planar=planar)  # 1040 pixels
    before = media_files()
    with pytest.raises(
        CommandError, match="big.tif: 40x26 pixels exceeds the limit of 1000 pixels"
    ):
        call_command("import_folder", folder, "--label", "benign")
    assert ImageSet.objects.count() == 0 and Image.objects.count() == 0
    assert media_files() == before


def test_jpeg_with_exif_orientation_6_is_stored_turned_clockwise(tmp_path):
    pixels = np.full((32, 64, 3), 255, np.uint8)  # 64 wide, 32 tall
    pixels[:16, :16] = (255, 0, 0)  # red top-left corner
    original = PILImage.fromarray(pixels)
    exif = original.getexif()
    exif[0x0112] = 6  # Orientation: rotate 90 degrees clockwise to display
    folder = tmp_path / "camera"
    folder.mkdir()
    original.save(folder / "photo.jpg", exif=exif, quality=95)
    call_command("import_folder", folder, "--label", "benign", "--name", "camera")
    image = Image.objects.get(image_set__name="camera")
    assert (image.width, image.height) == (32, 64)
    assert image.provenance == {"original_format": "JPEG", "original_orientation": 6}
    with image.file.open("rb") as fh:
        stored = PILImage.open(io.BytesIO(fh.read()))
        assert stored.size == (32, 64) and not stored.getexif()  # upright, no orientation left
        stored_array = np.asarray(stored.convert("RGB")).astype(int)
    assert stored_array[2:14, -14:-2].mean(axis=(0, 1)) == pytest.approx((255, 0, 0), abs=12)
    assert stored_array[2:14, 2:14].min() > 240  # the top-left is white now
    assert np.abs(stored_array - np.rot90(pixels, -1).astype(int)).mean() < 3


def test_multi_page_tiff_imports_its_first_page_and_records_the_page_count(tmp_path):
    folder = tmp_path / "pages"
    folder.mkdir()
    first = _noise(20, 30, 3)
    with tifffile.TiffWriter(folder / "stack.tif") as tif:
        tif.write(first, photometric="rgb")
        tif.write(_noise(40, 50, 4), photometric="rgb")
    call_command("import_folder", folder, "--label", "benign", "--name", "pages")
    image = Image.objects.get(image_set__name="pages")
    assert image.provenance == {"original_format": "TIFF", "original_frames": 2}
    np.testing.assert_array_equal(stored_pixels(image), first)
