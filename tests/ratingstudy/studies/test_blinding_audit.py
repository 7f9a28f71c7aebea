"""blinding_audit measures what browsers receive: it passes a BreakHis-shaped study and flags every planted cue.

The study is the one the issue describes: real 700x460 fields (cut into 256 px tiles at
import, so both groups get the same geometry) and generated 256x256 images that went
through JPEG before import (the study re-encodes every image at the same quality).
Each planted cue is put where a real deployment could get it: in the served renders
(a stale or tampered cache), or in the HTTP layer (a header, a slow path).
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image as PILImage
from PIL import ImageFilter

from ganlab.data.demo import demo_tile
from ganlab.data.imageio import encode_png
from ratingstudy.studies import rendering
from ratingstudy.studies.blinding import blinding_audit, jpeg_blockiness
from ratingstudy.studies.models import Rater, Render, Study
from tests.ratingstudy.studies.factories import (
    JPEG_QUALITY,
    breakhis_like_sources,
    breakhis_like_study,
)


@pytest.fixture(scope="module")
def source_folders(tmp_path_factory) -> Path:
    return breakhis_like_sources(tmp_path_factory.mktemp("breakhis-like"))


def make_study(root: Path, *, jpeg_quality: int | None = JPEG_QUALITY) -> Study:
    return breakhis_like_study(root, jpeg_quality=jpeg_quality)


def generated_renders(study: Study) -> list[str]:
    return list(
        Render.objects.filter(presentation=study.presentation.key, image__image_set__kind="generated").values_list(
            "name", flat=True
        )
    )


def tamper(study: Study, change) -> None:
    """Rewrite every served render of a generated image with ``change(bytes) -> bytes`` (a stale cache)."""
    for name in generated_renders(study):
        with default_storage.open(name, "rb") as fh:
            data = change(fh.read())
        default_storage.delete(name)
        default_storage.save(name, ContentFile(data))


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def refixed(change):
    """A pixel change written back with the study's own fixed-length encoder: only the pixels differ."""
    return lambda data: rendering.encode_fixed_png(change(pixels_of(data)))


def jpeg_again(pixels: np.ndarray, quality: int) -> np.ndarray:
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, format="JPEG", quality=quality)
    return pixels_of(buffer.getvalue())


def with_text_chunk(data: bytes) -> bytes:
    chunk = rendering._chunk(b"tEXt", b"Software\x00cyclegan")
    return data[:33] + chunk + data[33:]  # after the 8-byte signature and the 25-byte IHDR


def test_breakhis_shaped_study_passes_and_nothing_is_left_behind(db, source_folders):
    study = make_study(source_folders)
    sets = [*study.real_image_sets.all(), *study.generated_image_sets.all()]
    assert {(i.width, i.height) for s in sets for i in s.images.all()} == {(256, 256)}
    assert study.real_image_sets.first().images.first().provenance["tile"]["field_width"] == 700
    out = io.StringIO()
    call_command("blinding_audit", study.name, stdout=out)
    report = out.getvalue()
    assert "No cue separates real from generated images." in report
    for cue in ("byte length", "headers", "PNG chunks", "dimensions", "first request ms", "JPEG blockiness"):
        assert f"ok  {cue}" in report
    assert not Rater.objects.filter(is_audit=True).exists()  # the audit rater is deleted again


def test_jpeg_history_of_one_group_is_flagged_without_harmonisation(db, source_folders):
    study = make_study(source_folders, jpeg_quality=None)
    flagged = {cue.name for cue in blinding_audit(study=study).flagged}
    assert "JPEG blockiness" in flagged


@pytest.mark.parametrize(
    ("cue", "change"),
    [
        ("byte length", lambda data: encode_png(pixels_of(data))),  # a render cached compressed
        ("PNG chunks", with_text_chunk),
        ("dimensions", refixed(lambda p: np.ascontiguousarray(p[:-2]))),
        ("mean R", refixed(lambda p: (p * [0.8, 1.0, 1.0]).astype(np.uint8))),  # a colour cast
        ("sharpness", refixed(lambda p: np.asarray(PILImage.fromarray(p).filter(ImageFilter.GaussianBlur(1.5))))),
        ("JPEG blockiness", refixed(lambda p: jpeg_again(p, 15))),
    ],
)
def test_each_cue_planted_in_the_served_files_is_flagged(db, source_folders, cue, change):
    study = make_study(source_folders)
    tamper(study, change)
    with pytest.raises(CommandError, match=cue):
        call_command("blinding_audit", study.name, stdout=io.StringIO())


@pytest.mark.parametrize(
    ("cue", "middleware"),
    [("headers", "tests.ratingstudy.studies.planted.HeaderCue"), ("first request ms", "tests.ratingstudy.studies.planted.TimingCue")],
)
def test_each_cue_planted_in_the_http_layer_is_flagged(db, source_folders, settings, cue, middleware):
    study = make_study(source_folders)
    settings.MIDDLEWARE = [*settings.MIDDLEWARE, middleware]
    flagged = {c.name for c in blinding_audit(study=study).flagged}
    assert cue in flagged


def test_blockiness_measure_sees_jpeg_and_not_clean_pixels():
    field = demo_tile("malignant", 0, 256, 0)
    assert jpeg_blockiness(field.mean(axis=2)) == pytest.approx(1.0, abs=0.1)
    assert jpeg_blockiness(jpeg_again(field, 30).mean(axis=2)) > 1.2


def test_unknown_study_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no study named 'nope'"):
        call_command("blinding_audit", "nope")
