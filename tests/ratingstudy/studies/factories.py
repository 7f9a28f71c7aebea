"""Tiny image sets and studies for the studies tests (64 px demo tiles, a few per label)."""

from __future__ import annotations

from pathlib import Path

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
