"""Crops and tiles: import_folder --tile (grid and seeded random), ImageEntry.crop, all-or-nothing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from ganlab.data.demo import demo_tile
from ganlab.data.imageio import encode_png
from ratingstudy.catalog import services
from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.services import ImageEntry, ImportFailed, images_add
from tests.ratingstudy.catalog.test_importers import media_files

pytestmark = pytest.mark.django_db


def field_write(path: Path, *, width: int, height: int, index: int = 0) -> np.ndarray:
    """A ``width`` x ``height`` H&E-like field saved as PNG; returns its pixels."""
    pixels = np.ascontiguousarray(
        demo_tile("malignant", index, max(width, height))[:height, :width]
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(encode_png(pixels))
    return pixels


def stored_pixels(image: Image) -> np.ndarray:
    with image.file.open("rb") as fh:
        return np.asarray(PILImage.open(io.BytesIO(fh.read())).convert("RGB"))


def tile_positions(set_name: str) -> list[str]:
    return sorted(
        Image.objects.filter(image_set__name=set_name).values_list("source_path", flat=True)
    )


def test_grid_tiles_of_a_breakhis_sized_field(tmp_path):
    folder = tmp_path / "fields"
    field = field_write(folder / "sub" / "field.png", width=700, height=460)
    call_command(
        "import_folder",
        folder,
        "--label",
        "malignant",
        "--split",
        "test",
        "--tile",
        "256",
        "--name",
        "grid",
    )
    image_set = ImageSet.objects.get(name="grid")
    images = {i.source_path: i for i in image_set.images.all()}
    # 2x1 whole tiles of a grid centred on the field: x = (700 - 512) / 2 = 94 and 350, y = (460 - 256) / 2
    assert set(images) == {"sub/field.png@94,102", "sub/field.png@350,102"}
    field_sha = hashlib.sha256((folder / "sub" / "field.png").read_bytes()).hexdigest()
    for x in (94, 350):
        image = images[f"sub/field.png@{x},102"]
        assert (image.width, image.height) == (256, 256)
        np.testing.assert_array_equal(stored_pixels(image), field[102 : 102 + 256, x : x + 256])
        assert image.original_sha256 == field_sha
        assert image.provenance == {
            "original_format": "PNG",
            "tile": {
                "x": x,
                "y": 102,
                "size": 256,
                "mode": "grid",
                "field_width": 700,
                "field_height": 460,
                "field": "sub/field.png",
            },
        }
    params = image_set.import_params
    assert {k: params[k] for k in ("tile", "tile_mode", "tiles_per_image", "seed")} == {
        "tile": 256,
        "tile_mode": "grid",
        "tiles_per_image": None,
        "seed": None,
    }
    assert params["files"] == {"sub/field.png": field_sha}


def random_import(folder: Path, name: str, seed: int) -> None:
    call_command(
        "import_folder",
        folder,
        "--kind",
        "generated",
        "--model",
        "outside-gan",
        "--label",
        "malignant",
        "--tile",
        "32",
        "--tile-mode",
        "random",
        "--tiles-per-image",
        "4",
        "--seed",
        str(seed),
        "--name",
        name,
    )


def test_random_tiles_are_deterministic_per_seed(tmp_path):
    folder = tmp_path / "gan_out"
    fields = {
        "a.png": field_write(folder / "a.png", width=120, height=90, index=1),
        "b.png": field_write(folder / "b.png", width=120, height=90, index=2),
    }
    random_import(folder, "seed5", 5)
    random_import(folder, "seed5-again", 5)
    random_import(folder, "seed6", 6)
    assert tile_positions("seed5") == tile_positions("seed5-again")
    assert tile_positions("seed5") != tile_positions("seed6")
    image_set = ImageSet.objects.get(name="seed5")
    assert image_set.kind == ImageSet.Kind.GENERATED and image_set.model_name == "outside-gan"
    assert {
        k: image_set.import_params[k] for k in ("tile", "tile_mode", "tiles_per_image", "seed")
    } == {
        "tile": 32,
        "tile_mode": "random",
        "tiles_per_image": 4,
        "seed": 5,
    }
    positions: dict[str, set[tuple[int, int]]] = {"a.png": set(), "b.png": set()}
    for image in image_set.images.all():
        tile = image.provenance["tile"]
        x, y = tile["x"], tile["y"]
        assert image.source_path == f"{tile['field']}@{x},{y}"
        assert tile["mode"] == "random" and tile["size"] == 32
        assert 0 <= x <= 120 - 32 and 0 <= y <= 90 - 32
        np.testing.assert_array_equal(
            stored_pixels(image), fields[tile["field"]][y : y + 32, x : x + 32]
        )
        positions[tile["field"]].add((x, y))
    # four distinct positions per field, and the two fields are not cut in the same places
    assert [len(p) for p in positions.values()] == [4, 4]
    assert positions["a.png"] != positions["b.png"]


def test_field_smaller_than_the_tile_aborts_the_whole_import(tmp_path):
    folder = tmp_path / "fields"
    field_write(folder / "big.png", width=300, height=300)
    field_write(folder / "small.png", width=200, height=100)
    (folder / "empty.png").write_bytes(b"")
    before = media_files()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_folder", folder, "--label", "benign", "--tile", "128")
    message = str(excinfo.value)
    assert f"{folder / 'small.png'}: the 200x100 field is smaller than the 128x128 tile" in message
    assert f"{folder / 'empty.png'}: file is empty" in message  # every bad file is listed
    assert "big.png" not in message
    assert ImageSet.objects.count() == 0 and Image.objects.count() == 0
    assert media_files() == before


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tile-mode", "random"], "only apply with --tile SIZE"),
        (["--tile", "64", "--seed", "3"], "only apply to --tile-mode random"),
        (["--tile", "0"], "tile size must be at least 1"),
        (["--tile", "64", "--tile-mode", "random", "--tiles-per-image", "0"], "at least 1"),
    ],
)
def test_tiling_options_that_cannot_work_are_refused(tmp_path, args, message):
    folder = tmp_path / "fields"
    field_write(folder / "a.png", width=100, height=100)
    with pytest.raises(CommandError, match=message):
        call_command("import_folder", folder, "--label", "benign", *args)
    assert ImageSet.objects.count() == 0


def test_crops_of_one_file_decode_it_once(tmp_path, monkeypatch):
    path = tmp_path / "field.png"
    field = field_write(path, width=80, height=60)
    decodes: list[Path] = []
    real_decode = services.decode_image

    def counting_decode(data, **kwargs):
        decodes.append(kwargs["path"])
        return real_decode(data, **kwargs)

    monkeypatch.setattr(services, "decode_image", counting_decode)
    image_set = ImageSet.objects.create(name="crops", kind="real", source="folder")
    crops = [(0, 0, 20, 10), (50, 30, 30, 30)]
    created = images_add(
        image_set=image_set,
        entries=[
            ImageEntry(path=path, source_path=f"crop{i}", crop=crop, provenance={"note": i})
            for i, crop in enumerate(crops)
        ],
    )
    assert decodes == [path]
    for image, (x, y, w, h) in zip(created, crops, strict=True):
        assert (image.width, image.height) == (w, h)
        np.testing.assert_array_equal(stored_pixels(image), field[y : y + h, x : x + w])
    assert [i.provenance for i in created] == [
        {"original_format": "PNG", "note": 0},
        {"original_format": "PNG", "note": 1},
    ]


def test_crop_outside_the_image_is_listed_and_nothing_is_written(tmp_path):
    path = tmp_path / "field.png"
    field_write(path, width=80, height=60)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    image_set = ImageSet.objects.create(name="crops", kind="real", source="folder")
    before = media_files()
    with pytest.raises(ImportFailed) as excinfo:
        images_add(
            image_set=image_set,
            entries=[
                ImageEntry(path=path, source_path="inside", crop=(0, 0, 80, 60)),
                ImageEntry(path=path, source_path="outside", crop=(70, 0, 20, 20)),
                ImageEntry(path=bad, source_path="bad"),
            ],
        )
    problems = excinfo.value.extra["problems"]
    assert problems == [
        f"{path}: the 20x20 crop at x=70, y=0 lies outside the 80x60 image; give a crop inside it",
        f"{bad}: not an image (format not recognised)",
    ]
    assert image_set.images.count() == 0
    assert media_files() == before
