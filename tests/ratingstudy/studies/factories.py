"""Tiny image sets and studies for the studies tests (64 px demo tiles, a few per label)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from django.core.management import call_command
from PIL import Image as PILImage

from ganlab.data.demo import LABELS, demo_tile
from ganlab.data.imageio import encode_png
from ratingstudy.catalog.models import ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.studies.models import Study
from ratingstudy.studies.services import study_create


def image_set_make(
    *,
    directory: Path,
    name: str,
    kind: str,
    model_name: str = "",
    per_label: int = 3,
    size: int = 64,
    seed: int = 0,
    height: int | None = None,
) -> ImageSet:
    """An image set of demo tiles; ``height`` crops them to ``size`` x ``height`` (a planted shape cue)."""
    folder = directory / name
    folder.mkdir(parents=True)
    entries = []
    for label in LABELS:
        for index in range(per_label):
            pixels = demo_tile(label, index, size, seed)[: height or size]
            path = folder / f"{label}_{index}.png"
            path.write_bytes(encode_png(pixels))
            entries.append(ImageEntry(path=path, source_path=path.name, label=label))
    source = ImageSet.Source.FOLDER if kind == ImageSet.Kind.REAL else ImageSet.Source.GENERATED
    return image_set_import(name=name, kind=kind, source=source, model_name=model_name, entries=entries)


def study_make(*, directory: Path, name: str = "Test study", **design: object) -> Study:
    """An open study over 6 real images and 2 models x 4 generated images, with a small design."""
    real = image_set_make(directory=directory, name=f"{name} real", kind=ImageSet.Kind.REAL)
    model_a = image_set_make(
        directory=directory, name=f"{name} gen A", kind=ImageSet.Kind.GENERATED, model_name="model-a", per_label=2, seed=1
    )
    model_b = image_set_make(
        directory=directory, name=f"{name} gen B", kind=ImageSet.Kind.GENERATED, model_name="model-b", per_label=2, seed=2
    )
    fields: dict[str, object] = {
        "images_per_rater": 4,
        "practice_trials": 2,
        "corrupted_checks": 1,
        "repeat_checks": 1,
        "is_open": True,
        **design,
    }
    return study_create(
        name=name,
        instructions="Rate each image.",
        real_image_sets=[real],
        generated_image_sets=[model_a, model_b],
        **fields,
    )


# A BreakHis-shaped study: real 700x460 PNG fields and generated 256x256 images that went through JPEG.
FIELDS_PER_LABEL = 3  # 700x460 fields -> 2 grid tiles of 256 each
GENERATED_PER_LABEL = 6
JPEG_QUALITY = 75


def breakhis_like_sources(root: Path) -> Path:
    """Real 700x460 PNG fields and generated 256x256 JPEGs (crops of other fields, standing in for a GAN's output)."""
    for label in LABELS:
        (root / "real" / label).mkdir(parents=True)
        (root / "generated" / label).mkdir(parents=True)
        for index in range(FIELDS_PER_LABEL):
            field = demo_tile(label, index, 700, 0)[:460]
            (root / "real" / label / f"field_{index}.png").write_bytes(encode_png(field))
        for index in range(GENERATED_PER_LABEL):
            crop = demo_tile(label, 100 + index, 700, 1)[:460][102:358, 94 + 60 * index : 350 + 60 * index]
            buffer = io.BytesIO()
            PILImage.fromarray(np.ascontiguousarray(crop)).save(buffer, format="JPEG", quality=JPEG_QUALITY)
            (root / "generated" / label / f"fake_{index}.jpg").write_bytes(buffer.getvalue())
    return root


def breakhis_like_study(root: Path, *, jpeg_quality: int | None = JPEG_QUALITY, **design: object) -> Study:
    """Imports ``root`` as a user would (real fields cut into 256 px grid tiles, generated as a GAN's output
    made elsewhere) and creates an open study that re-encodes every image at the generator's JPEG quality."""
    real, generated = [], []
    for label in LABELS:
        call_command(
            "import_folder", str(root / "real" / label), "--label", label, "--name", f"fields-{label}", "--tile", "256",
            stdout=io.StringIO(),
        )
        call_command(
            "import_folder", str(root / "generated" / label), "--label", label, "--name", f"gan-{label}",
            "--kind", "generated", "--model", "cyclegan", stdout=io.StringIO(),
        )
        real.append(ImageSet.objects.get(name=f"fields-{label}"))
        generated.append(ImageSet.objects.get(name=f"gan-{label}"))
    fields = {
        "images_per_rater": 8, "practice_trials": 0, "corrupted_checks": 0, "repeat_checks": 0,
        "jpeg_quality": jpeg_quality, "is_open": True, **design,
    }  # fmt: skip
    return study_create(
        name="breakhis-like", instructions="Real or generated?", real_image_sets=real, generated_image_sets=generated,
        **fields,
    )
