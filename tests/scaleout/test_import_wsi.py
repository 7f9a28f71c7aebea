"""``manage.py import_wsi`` on small pyramidal TIFF slides written here with tifffile.

The slide is white glass with two tissue-like blobs (textured pink and purple ellipses);
its pyramid has three levels (1x, 2x, 4x down) at 0.25 µm/px on level 0. The tiles
the command keeps are checked against that known geometry: their pixels, their
coordinates and the share of tissue under each.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import tifffile
from django.conf import settings
from django.core.management import CommandError, call_command

from ganlab.data.imageio import decode_image
from ratingstudy.catalog.models import Image, ImageSet

pytestmark = pytest.mark.django_db

WIDTH, HEIGHT = 1536, 1024  # level 0
MPP0 = 0.25
BLOBS = [((420, 380), (300, 220)), ((1100, 640), (260, 300))]  # centre (x, y), radii (x, y)


def tissue_mask(width: int, height: int, downsample: int) -> np.ndarray:
    ys, xs = np.mgrid[0:height, 0:width]
    mask = np.zeros((height, width), dtype=bool)
    for (cx, cy), (rx, ry) in BLOBS:
        mask |= ((xs - cx / downsample) / (rx / downsample)) ** 2 + (
            (ys - cy / downsample) / (ry / downsample)
        ) ** 2 <= 1
    return mask


def level_pixels(downsample: int) -> np.ndarray:
    """The slide at one level: white glass, textured stain inside the blobs."""
    width, height = WIDTH // downsample, HEIGHT // downsample
    rng = np.random.default_rng(downsample)
    pixels = np.full((height, width, 3), 245, dtype=np.uint8)
    stain = np.stack(
        [
            rng.integers(150, 210, (height, width)),
            rng.integers(60, 120, (height, width)),
            rng.integers(130, 190, (height, width)),
        ],
        axis=-1,
    ).astype(np.uint8)
    mask = tissue_mask(width, height, downsample)
    pixels[mask] = stain[mask]
    return pixels


def write_slide(path: Path, *, resolution: bool = True, blank: bool = False) -> dict[int, np.ndarray]:
    levels = {ds: level_pixels(ds) for ds in (1, 2, 4)}
    if blank:
        levels = {ds: np.full_like(px, 245) for ds, px in levels.items()}
    with tifffile.TiffWriter(path) as tif:
        for ds, pixels in levels.items():
            extra = {}
            if resolution:
                per_cm = 1e4 / (MPP0 * ds)
                extra = {"resolution": (per_cm, per_cm), "resolutionunit": "CENTIMETER"}
            tif.write(
                pixels,
                tile=(256, 256),
                photometric="rgb",
                compression="deflate",
                subfiletype=0 if ds == 1 else 1,
                **extra,
            )
    return levels


@pytest.fixture
def slides(tmp_path) -> Path:
    return tmp_path


def media_files() -> set[Path]:
    root = Path(settings.MEDIA_ROOT)
    return {p for p in root.rglob("*") if p.is_file()}


def import_wsi(*args) -> str:
    out = io.StringIO()
    call_command("import_wsi", *map(str, args), stdout=out)
    return out.getvalue()


def test_tissue_tiles_at_a_level_with_their_provenance(slides):
    levels = write_slide(slides / "case-1.tif")
    output = import_wsi(
        slides / "case-1.tif", "--level", 1, "--tile", 64, "--tissue-threshold", 0.6,
        "--max-tiles", 1000, "--label", "malignant", "--split", "test", "--name", "case-1 tiles",
    )  # fmt: skip
    image_set = ImageSet.objects.get(name="case-1 tiles")
    images = list(image_set.images.order_by("source_path"))
    assert f"imported {len(images)} tiles of 1 slide(s)" in output
    truth = tissue_mask(WIDTH // 2, HEIGHT // 2, 2)
    kept = set()
    for image in images:
        slide = image.provenance["slide"]
        x, y = slide["x"], slide["y"]
        kept.add((x, y))
        assert (slide["name"], slide["level"], slide["mpp"], slide["size"]) == ("case-1.tif", 1, 0.5, 64)
        assert (slide["x0"], slide["y0"]) == (2 * x, 2 * y) and x % 64 == 0 and y % 64 == 0
        assert image.source_path == f"case-1.tif@L1/{x},{y}"
        assert (image.label, image.split, image.width, image.height) == ("malignant", "test", 64, 64)
        # the stored pixels are that very region of level 1
        with image.file.open("rb") as fh:
            stored = decode_image(fh.read()).pixels
        assert np.array_equal(stored, levels[2][y : y + 64, x : x + 64])
        # Otsu on the thumbnail found the tissue: the tile really is mostly tissue
        assert truth[y : y + 64, x : x + 64].mean() >= 0.5
    # and every tile that is clearly tissue was kept
    for y in range(0, HEIGHT // 2 - 63, 64):
        for x in range(0, WIDTH // 2 - 63, 64):
            if truth[y : y + 64, x : x + 64].mean() >= 0.7:
                assert (x, y) in kept, (x, y)
    assert 10 < len(images) < (WIDTH // 128) * (HEIGHT // 128)  # tissue only, not the glass
    params = image_set.import_params
    assert params["command"] == "import_wsi" and params["slides"]["case-1.tif"]["tiles"] == len(images)


def test_mpp_picks_the_nearest_level_and_max_tiles_keeps_the_most_tissue(slides):
    write_slide(slides / "case-2.tif")
    import_wsi(
        slides / "case-2.tif", "--mpp", 1.0, "--tile", 32, "--tissue-threshold", 0.3,
        "--max-tiles", 5,
    )  # fmt: skip
    images = list(ImageSet.objects.get(name="case-2").images.all())
    assert len(images) == 5
    for image in images:
        assert image.provenance["slide"]["level"] == 2 and image.provenance["slide"]["mpp"] == 1.0
        assert image.provenance["slide"]["tissue_fraction"] == 1.0  # the fullest tiles first


def test_not_a_slide_refuses_the_whole_import(slides):
    write_slide(slides / "good.tif")
    (slides / "notes.svs").write_text("not a slide")
    before = media_files()
    with pytest.raises(CommandError) as refused:
        import_wsi(
            slides / "good.tif", slides / "notes.svs", "--level", 1, "--tile", 64,
            "--tissue-threshold", 0.5, "--max-tiles", 10, "--name", "mixed",
        )  # fmt: skip
    message = str(refused.value)
    assert "nothing was written" in message
    assert f"{slides / 'notes.svs'}: not a whole-slide image OpenSlide can read" in message
    assert not ImageSet.objects.exists() and not Image.objects.exists()
    assert media_files() == before


@pytest.mark.parametrize(
    ("options", "slide_kwargs", "message"),
    [
        (["--level", 5], {}, "has levels 0 to 2, not 5"),
        (["--mpp", 0.5], {"resolution": False}, "does not record its resolution"),
        (["--mpp", 3.0], {}, "no level is near 3.0 µm/px"),
        (["--level", 0], {"blank": True}, "has 0.5 tissue or more"),
    ],
)
def test_each_problem_is_named_with_what_to_do(slides, options, slide_kwargs, message):
    write_slide(slides / "case.tif", **slide_kwargs)
    with pytest.raises(CommandError, match=message):
        import_wsi(slides / "case.tif", *options, "--tile", 64, "--tissue-threshold", 0.5)
    assert not ImageSet.objects.exists()
