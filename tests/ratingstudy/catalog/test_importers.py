"""import_breakhis and import_folder: real layouts, patient-level split, all-or-nothing."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage

from ganlab.data.demo import demo_tile
from ganlab.data.imageio import encode_png
from ratingstudy.catalog.models import Image, ImageSet

pytestmark = pytest.mark.django_db

SUBTYPES = {
    "benign": [("adenosis", "A"), ("fibroadenoma", "F")],
    "malignant": [("ductal_carcinoma", "DC"), ("lobular_carcinoma", "LC")],
}


def make_breakhis_tree(
    root: Path,
    *,
    patients_per_subtype: int = 3,
    images_per_patient: int = 4,
    extra_slides: tuple[tuple[str, str, str], ...] = (),
) -> Path:
    """A miniature BreaKHis_v1 tree with the real folder and file naming.

    Every (class, subtype, patient) gets its own accession number, some with the letter
    suffixes real slide ids carry (``14-20100AB``). ``extra_slides`` adds folders
    ``(label, subtype, slide id)``, e.g. a second slide of an existing accession number.
    """
    index = 0
    slides = [
        (label, subtype, code, f"14-{20000 + 1000 * c + 100 * s + p}{('', 'AB', 'CD')[p % 3]}")
        for c, (label, subtypes) in enumerate(SUBTYPES.items())
        for s, (subtype, code) in enumerate(subtypes)
        for p in range(patients_per_subtype)
    ]
    codes = {subtype: code for subtypes in SUBTYPES.values() for subtype, code in subtypes}
    slides += [(label, subtype, codes[subtype], slide) for label, subtype, slide in extra_slides]
    for label, subtype, code, patient in slides:
        letter = label[0].upper()
        for mag in ("40X", "400X"):
            folder = (
                root
                / "BreaKHis_v1"
                / "histology_slides"
                / "breast"
                / label
                / "SOB"
                / subtype
                / f"SOB_{letter}_{code}_{patient}"
                / mag
            )
            folder.mkdir(parents=True, exist_ok=True)
            for seq in range(1, images_per_patient + 1):
                name = f"SOB_{letter}_{code}-{patient}-{mag[:-1]}-{seq:03d}.png"
                (folder / name).write_bytes(encode_png(demo_tile(label, index, size=48)))
                index += 1
    return root / "BreaKHis_v1"


def media_files() -> list[Path]:
    return [p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()]


def test_breakhis_import_splits_by_patient_and_stratifies(tmp_path):
    root = make_breakhis_tree(tmp_path)
    call_command(
        "import_breakhis",
        root,
        "--magnification",
        "400X",
        "--train-per-class",
        "8",
        "--test-per-class",
        "3",
        "--seed",
        "3",
        "--name",
        "bh",
    )
    images = Image.objects.filter(image_set__name="bh")
    assert images.count() == 22
    for label in ("benign", "malignant"):
        train = images.filter(label=label, split="train")
        test = images.filter(label=label, split="test")
        assert train.count() == 8 and test.count() == 3
        overlap = set(train.values_list("patient_id", flat=True)) & set(
            test.values_list("patient_id", flat=True)
        )
        assert overlap == set(), f"patients in both splits: {overlap}"
    first = images.first()
    assert first.magnification == "400X"
    assert first.subtype in {"adenosis", "fibroadenoma", "ductal_carcinoma", "lobular_carcinoma"}
    assert "-400-" in first.source_path and first.width == 48
    assert len(first.sha256) == 64 and len(first.original_sha256) == 64
    with first.file.open("rb") as fh:
        stored = PILImage.open(io.BytesIO(fh.read()))
        assert stored.format == "PNG" and stored.mode == "RGB" and not stored.info.get("exif")


def test_breakhis_slides_of_one_accession_number_are_one_patient(tmp_path):
    # 14-20100EF (adenosis) is a second slide of fibroadenoma 14-20100; 14-20001CD is filed
    # as malignant while 14-20001AB is benign: that patient must stay out of the test split
    root = make_breakhis_tree(
        tmp_path,
        extra_slides=(
            ("benign", "adenosis", "14-20100EF"),
            ("malignant", "ductal_carcinoma", "14-20001CD"),
        ),
    )
    for seed in range(6):
        call_command(
            "import_breakhis", root, "--magnification", "400X", "--train-per-class", "8",
            "--test-per-class", "4", "--seed", str(seed), "--name", f"bh{seed}",
        )  # fmt: skip
        images = Image.objects.filter(image_set__name=f"bh{seed}")
        sides = {
            split: set(images.filter(split=split).values_list("patient_id", flat=True))
            for split in ("train", "test")
        }
        assert not sides["train"] & sides["test"]
        assert "14-20001" not in sides["test"]
        for label in ("benign", "malignant"):
            test = images.filter(split="test", label=label)
            assert test.count() == 4 and len(set(test.values_list("patient_id", flat=True))) >= 3
        # the catalogue stores the patient (accession number); the slide id stays in the path
        assert all("AB" not in p and "CD" not in p for p in sides["train"] | sides["test"])
    second_slide = Image.objects.filter(source_path__contains="14-20100EF").first()
    assert second_slide is None or second_slide.patient_id == "14-20100"


def test_breakhis_same_seed_same_selection(tmp_path):
    root = make_breakhis_tree(tmp_path)
    for name in ("a", "b"):
        call_command(
            "import_breakhis",
            root,
            "--magnification",
            "400X",
            "--train-per-class",
            "5",
            "--test-per-class",
            "3",
            "--seed",
            "7",
            "--name",
            name,
        )
    pick = {
        n: sorted(Image.objects.filter(image_set__name=n).values_list("source_path", "split"))
        for n in "ab"
    }
    assert pick["a"] == pick["b"]


def test_founding_study_split_is_one_command(tmp_path):
    """100+100 training and 10+10 test images at 400X, as in the founding study."""
    # 12 patients of 12 images per class: 3 test patients (36 images) leave 108 for training
    root = make_breakhis_tree(tmp_path, patients_per_subtype=6, images_per_patient=12)
    call_command(
        "import_breakhis",
        root,
        "--magnification",
        "400X",
        "--train-per-class",
        "100",
        "--test-per-class",
        "10",
        "--seed",
        "0",
    )
    image_set = ImageSet.objects.get()
    assert image_set.name == "breakhis-400X-100+10-seed0"
    assert image_set.images.filter(split="train").count() == 200
    assert image_set.images.filter(split="test").count() == 20


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--magnification", "300X"], "unknown magnification '300X'"),
        (
            ["--magnification", "400X", "--train-per-class", "50"],
            "fewer than the 50 training images asked for",
        ),
        (
            ["--magnification", "400X", "--min-test-patients", "6", "--test-per-class", "6"],
            r"benign: 6 patient\(s\) \(accession numbers\) cannot give 6 test patients",
        ),
        (
            ["--magnification", "400X", "--test-per-class", "2"],
            r"test_per_class \(2\) is smaller than min_test_patients \(3\)",
        ),
    ],
)
def test_breakhis_bad_arguments(tmp_path, args, message):
    root = make_breakhis_tree(tmp_path)
    base = {"--train-per-class": "4", "--test-per-class": "3"}
    for flag, value in zip(args[::2], args[1::2], strict=True):
        base[flag] = value
    flat = [x for kv in base.items() for x in kv]
    with pytest.raises(CommandError, match=message):
        call_command("import_breakhis", root, *flat)
    assert Image.objects.count() == 0


def test_breakhis_wrong_layout(tmp_path):
    (tmp_path / "breast" / "benign").mkdir(parents=True)
    with pytest.raises(CommandError, match="expected BreakHis v1 layout"):
        call_command(
            "import_breakhis",
            tmp_path,
            "--magnification",
            "400X",
            "--train-per-class",
            "1",
            "--test-per-class",
            "1",
        )


def test_breakhis_bad_file_name_names_the_file(tmp_path):
    root = make_breakhis_tree(tmp_path)
    folder = next(root.rglob("400X"))
    (folder / "holiday-photo.png").write_bytes(encode_png(demo_tile("benign", 0, 48)))
    with pytest.raises(CommandError, match="holiday-photo.png: file name does not follow"):
        call_command(
            "import_breakhis",
            root,
            "--magnification",
            "400X",
            "--train-per-class",
            "2",
            "--test-per-class",
            "1",
        )


def test_breakhis_bad_file_leaves_nothing_behind(tmp_path):
    # every 400X image is selected (3 patients x 4 images x 2 subtypes = 24 per class):
    # one test patient's 4 images, the other 20 for training
    root = make_breakhis_tree(tmp_path)
    victim = sorted(root.rglob("*-400-004.png"))[-1]
    victim.write_bytes(b"")
    before = media_files()
    with pytest.raises(CommandError) as excinfo:
        call_command(
            "import_breakhis",
            root,
            "--magnification",
            "400X",
            "--train-per-class",
            "20",
            "--test-per-class",
            "4",
            "--min-test-patients",
            "1",
        )
    assert f"{victim}: file is empty (zero bytes)" in str(excinfo.value)
    assert ImageSet.objects.count() == 0 and Image.objects.count() == 0
    assert media_files() == before


def _write(path: Path, array: np.ndarray, **save_kwargs) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path, **save_kwargs)


def test_folder_import_converts_16bit_gray_and_jpeg(tmp_path):
    import tifffile

    folder = tmp_path / "slides"
    rgb = demo_tile("malignant", 1, 64)
    _write(folder / "a.png", rgb)
    _write(folder / "sub" / "b.jpg", rgb, quality=95)
    gray16 = (np.linspace(0, 65535, 64 * 64).reshape(64, 64)).astype(np.uint16)
    _write(folder / "c16.png", gray16)
    tifffile.imwrite(folder / "d16.tif", np.stack([gray16] * 3, axis=-1))
    _write(folder / "e_gray.png", rgb[:, :, 0])
    call_command(
        "import_folder", folder, "--label", "malignant", "--split", "test", "--name", "mixed"
    )
    images = {i.source_path: i for i in Image.objects.filter(image_set__name="mixed")}
    assert set(images) == {"a.png", "sub/b.jpg", "c16.png", "d16.tif", "e_gray.png"}
    for name in ("c16.png", "d16.tif"):
        with images[name].file.open("rb") as fh:
            pixels = np.asarray(PILImage.open(io.BytesIO(fh.read())))
        assert pixels.shape == (64, 64, 3)
        # full-range scaling: the brightest 16-bit value is white, not clipped to black
        assert pixels.max() == 255 and pixels.min() == 0
        expected = np.rint(gray16.astype(float) / 257).astype(np.uint8)
        assert np.abs(pixels[:, :, 0].astype(int) - expected).max() <= 1
    assert all(
        i.label == "malignant" and i.split == "test" and i.domain == "malignant"
        for i in images.values()
    )


@pytest.mark.parametrize(
    ("name", "content", "reason"),
    [
        ("empty.png", b"", "file is empty (zero bytes)"),
        ("notes.png", b"these are not pixels", "not an image"),
        ("truncated.png", "TRUNCATED", "truncated or corrupt"),
    ],
)
def test_folder_import_rejects_bad_files_and_writes_nothing(tmp_path, name, content, reason):
    folder = tmp_path / "in"
    _write(folder / "good.png", demo_tile("benign", 0, 48))
    if content == "TRUNCATED":
        content = encode_png(demo_tile("benign", 1, 48))[:200]
    (folder / name).write_bytes(content)
    before = media_files()
    with pytest.raises(CommandError) as excinfo:
        call_command("import_folder", folder, "--label", "benign")
    assert name in str(excinfo.value) and reason in str(excinfo.value)
    assert Image.objects.count() == 0 and ImageSet.objects.count() == 0
    assert media_files() == before


def test_folder_import_rejects_decompression_bomb(tmp_path, settings):
    settings.IMAGE_MAX_PIXELS = 1000
    folder = tmp_path / "big"
    _write(folder / "huge.png", np.zeros((40, 40, 3), np.uint8))
    with pytest.raises(
        CommandError, match="huge.png: 40x40 pixels exceeds the limit of 1000 pixels"
    ):
        call_command("import_folder", folder, "--label", "unknown")
    assert Image.objects.count() == 0


def test_folder_import_rejects_non_image_suffix(tmp_path):
    folder = tmp_path / "mixed"
    _write(folder / "ok.png", demo_tile("benign", 0, 48))
    (folder / "readme.txt").write_text("hi")
    with pytest.raises(CommandError, match="readme.txt"):
        call_command("import_folder", folder, "--label", "benign")


def test_folder_import_generated_set_records_model_and_file_hashes(tmp_path):
    folder = tmp_path / "cyclegan_out"
    _write(folder / "a.png", demo_tile("malignant", 0, 48))
    _write(folder / "sub" / "b.png", demo_tile("malignant", 1, 48))
    call_command(
        "import_folder",
        folder,
        "--kind",
        "generated",
        "--model",
        "outside-cyclegan",
        "--label",
        "malignant",
        "--split",
        "test",
        "--name",
        "gen",
    )
    image_set = ImageSet.objects.get(name="gen")
    assert image_set.kind == ImageSet.Kind.GENERATED
    assert image_set.source == ImageSet.Source.FOLDER
    assert image_set.model_name == "outside-cyclegan"
    hashes = {
        name: hashlib.sha256((folder / name).read_bytes()).hexdigest()
        for name in ("a.png", "sub/b.png")
    }
    assert image_set.import_params == {
        "imported": True,
        "command": "import_folder",
        "root": str(folder.resolve()),
        "kind": "generated",
        "model": "outside-cyclegan",
        "label": "malignant",
        "split": "test",
        "files": hashes,
    }
    images = {i.source_path: i for i in image_set.images.all()}
    assert set(images) == set(hashes)
    for name, image in images.items():
        assert image.original_sha256 == hashes[name]
        assert image.provenance == {"original_format": "PNG"}
        assert (image.label, image.split, image.domain) == ("malignant", "test", "malignant")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--kind", "generated"], "--kind generated needs --model NAME"),
        (["--model", "some-gan"], "real images have none"),
        (["--kind", "real", "--model", "some-gan"], "real images have none"),
    ],
)
def test_folder_import_model_required_for_generated_only(tmp_path, args, message):
    folder = tmp_path / "in"
    _write(folder / "a.png", demo_tile("benign", 0, 48))
    with pytest.raises(CommandError, match=message):
        call_command("import_folder", folder, "--label", "benign", *args)
    assert ImageSet.objects.count() == 0 and Image.objects.count() == 0


def test_folder_import_records_each_original_format(tmp_path):
    import tifffile

    folder = tmp_path / "formats"
    rgb = demo_tile("benign", 2, 48)
    _write(folder / "a.jpg", rgb, quality=90)
    _write(folder / "b.png", rgb)
    tifffile.imwrite(folder / "c.tif", rgb)
    call_command("import_folder", folder, "--label", "benign", "--name", "formats")
    formats = {
        i.source_path: i.provenance["original_format"]
        for i in Image.objects.filter(image_set__name="formats")
    }
    assert formats == {"a.jpg": "JPEG", "b.png": "PNG", "c.tif": "TIFF"}
    params = ImageSet.objects.get(name="formats").import_params
    assert (params["kind"], params["model"]) == ("real", None)


def test_seed_demo_is_idempotent():
    call_command("seed_demo", "--train-per-class", "3", "--test-per-class", "1", "--size", "48")
    call_command("seed_demo", "--train-per-class", "3", "--test-per-class", "1", "--size", "48")
    image_set = ImageSet.objects.get(name="demo-tiles")
    assert image_set.images.count() == 8
    assert image_set.images.filter(split="test", label="malignant").count() == 1
