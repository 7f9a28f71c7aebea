"""The blinding audit flags a planted shortcut and passes a clean study."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ganlab.data.imageio import decode_image, encode_png
from ratingstudy.catalog.models import ImageSet
from ratingstudy.studies.blinding import blinding_audit
from ratingstudy.studies.services import study_create
from tests.ratingstudy.studies.factories import image_set_make


def make_study(tmp_path, *, real_height: int | None) -> str:
    real = image_set_make(
        directory=tmp_path, name="real", kind=ImageSet.Kind.REAL, size=96 if real_height else 64, height=real_height,
        per_label=6,
    )
    generated = image_set_make(
        directory=tmp_path, name="gan", kind=ImageSet.Kind.GENERATED, model_name="g", per_label=6, seed=5
    )
    study = study_create(
        name="audited", instructions="x", real_image_sets=[real], generated_image_sets=[generated],
        images_per_rater=8, practice_trials=0, corrupted_checks=0, repeat_checks=0, image_size=64,
    )
    return study.name


def test_planted_size_cue_is_flagged(db, tmp_path):
    # Like BreakHis 700x460 against a GAN's 256x256, scaled down: real 96x64, generated 64x64.
    name = make_study(tmp_path, real_height=64)
    out = io.StringIO()
    with pytest.raises(CommandError, match="stored dimensions"):
        call_command("blinding_audit", name, stdout=out)
    report = out.getvalue()
    assert "CUE stored dimensions" in report and "96x64 (12)" in report and "64x64 (12)" in report
    # What the browser gets is the same size for both groups.
    assert "ok  served dimensions" in report


def test_clean_study_passes(db, tmp_path):
    name = make_study(tmp_path, real_height=None)
    out = io.StringIO()
    call_command("blinding_audit", name, stdout=out)
    assert "No cue separates real from generated images." in out.getvalue()


def test_colour_cue_in_what_browsers_get_is_flagged(db, tmp_path):
    real = image_set_make(directory=tmp_path, name="real", kind=ImageSet.Kind.REAL, per_label=6)
    # A "generator" whose output is systematically darker: a served colour statistic separates the groups.
    generated = image_set_make(directory=tmp_path, name="gan", kind=ImageSet.Kind.GENERATED, model_name="g", per_label=6, seed=5)
    for image in generated.images.all():
        with image.file.open("rb") as f:
            pixels = decode_image(f.read()).pixels
        with image.file.open("wb") as f:
            f.write(encode_png((pixels * 0.8).astype("uint8")))
    study = study_create(
        name="dark", instructions="x", real_image_sets=[real], generated_image_sets=[generated],
        images_per_rater=8, practice_trials=0, corrupted_checks=0, repeat_checks=0, image_size=64,
    )
    flagged = {cue.name for cue in blinding_audit(study=study).flagged}
    assert {"served mean R", "served mean B"} <= flagged
    assert "served dimensions" not in flagged


def test_unknown_study_is_a_clear_error(db):
    with pytest.raises(CommandError, match="no study named 'nope'"):
        call_command("blinding_audit", "nope")
