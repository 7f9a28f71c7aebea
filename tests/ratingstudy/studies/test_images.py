"""What the browser receives for a trial image: one geometry, one length, one set of headers, rendered ahead."""

from __future__ import annotations

import io
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse
from PIL import Image as PILImage

from ganlab.data.demo import demo_tile
from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies import rendering
from ratingstudy.studies.blinding import png_chunk_types
from ratingstudy.studies.models import FIXATION_MS, WINDOW_GRACE_MS, Render, Response, Trial
from ratingstudy.studies.services import (
    Answer,
    DesignInvalid,
    rater_profile_update,
    rating_submit,
    session_start,
    study_create,
    study_mask_name,
)
from tests.ratingstudy.studies.factories import image_set_make, study_make

CLOCK_HEADERS = {"Date", "Expires"}


def fetch(client, rater, trial) -> tuple[dict[str, str], bytes]:
    response = client.get(reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token}))
    assert response.status_code == 200
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return dict(response.headers), body


def started(study):
    rater = study.raters.create()
    rater_profile_update(rater=rater, role="other", years_experience=1, specialty="", consented=False)
    return rater, list(session_start(rater=rater).trials.select_related("image__image_set").order_by("index"))


def pixels_of(data: bytes) -> np.ndarray:
    return np.asarray(PILImage.open(io.BytesIO(data)).convert("RGB"))


def media_files() -> set[Path]:
    return {p for p in Path(settings.MEDIA_ROOT).rglob("*") if p.is_file()}


# ------------------------------------------------------------------------- pure functions


def test_fixed_png_length_depends_only_on_the_size_and_decodes_exactly():
    rng = np.random.default_rng(0)
    flat = np.full((46, 70, 3), 200, dtype=np.uint8)
    noisy = rng.integers(0, 256, size=(46, 70, 3), dtype=np.uint8)
    a, b = rendering.encode_fixed_png(flat), rendering.encode_fixed_png(noisy)
    assert len(a) == len(b)
    assert np.array_equal(pixels_of(b), noisy) and np.array_equal(pixels_of(a), flat)
    assert png_chunk_types(a) == ["IHDR", "IDAT", "IEND"]


def test_fit_keeps_the_whole_field_and_pads_crop_cuts_native_is_one_to_one():
    field = demo_tile("benign", 0, 700, 0)[:460]  # a BreakHis-shaped 700x460 field
    fit = rendering.Presentation(width=350, height=350, fit="fit")
    placed = rendering.place(field, presentation=fit)
    # 700x460 scaled by 0.5 -> 350x230, centred: 60 rows of pad above and below.
    assert rendering.geometry(width=700, height=460, presentation=fit).content_box == (0, 60, 350, 230)
    assert (placed[:60] == rendering.PAD_GREY).all() and (placed[-60:] == rendering.PAD_GREY).all()
    expected = np.asarray(PILImage.fromarray(field).resize((350, 230), PILImage.Resampling.LANCZOS))
    assert np.array_equal(placed[60:290], expected)  # every column of the field is there

    crop = rendering.geometry(width=700, height=460, presentation=rendering.Presentation(350, 350, "crop"))
    assert crop.content_box == (0, 0, 350, 350) and crop.source_box == (120, 0, 460, 460)

    native = rendering.Presentation(width=256, height=256, fit="native")
    assert np.array_equal(rendering.place(field, presentation=native), field[102:358, 222:478])


def test_geometry_that_would_be_a_cue_is_explained():
    fit = rendering.Presentation(width=700, height=460, fit="fit")
    problems = rendering.geometry_problems(sizes={"real": {(700, 460)}, "generated": {(256, 256)}}, presentation=fit)
    assert len(problems) == 2
    assert "padding would tell them apart" in problems[0] and "--tile" in problems[0]
    assert "sharpness would tell them apart" in problems[1]
    tiles = rendering.Presentation(width=256, height=256, fit="fit")
    assert rendering.geometry_problems(sizes={"real": {(256, 256)}, "generated": {(256, 256)}}, presentation=tiles) == []


# ----------------------------------------------------------------------------- the study


def test_study_with_a_geometry_cue_is_refused_with_the_fix(db, tmp_path):
    real = image_set_make(directory=tmp_path, name="fields", kind=ImageSet.Kind.REAL, size=96, height=64)
    generated = image_set_make(directory=tmp_path, name="gan", kind=ImageSet.Kind.GENERATED, model_name="g", seed=3)
    with pytest.raises(DesignInvalid) as refused:
        study_create(
            name="shapes", instructions="x", real_image_sets=[real], generated_image_sets=[generated],
            images_per_rater=4, practice_trials=0, corrupted_checks=0, repeat_checks=0,
        )
    assert any("padding would tell them apart" in p and "import_folder PATH --tile" in p for p in refused.value.problems)
    assert not ImageSet.objects.get(name="fields").real_in_studies.exists()


def test_everything_a_study_serves_has_one_length_and_one_set_of_headers(client, db, tmp_path):
    study = study_make(directory=tmp_path, canvas_width=80, canvas_height=60)
    rater, trials = started(study)
    kinds = {(t.image.image_set.kind, t.attention_check, t.is_practice) for t in trials}
    assert {k for k, _, _ in kinds} == {"real", "generated"} and {c for _, c, _ in kinds} == {"", "corrupted", "repeat"}
    assert any(p for _, _, p in kinds)
    lengths, header_sets = set(), set()
    for trial in trials:
        headers, body = fetch(client, rater, trial)
        lengths.add(len(body))
        header_sets.add(tuple(sorted((k, v) for k, v in headers.items() if k not in CLOCK_HEADERS)))
        assert png_chunk_types(body) == ["IHDR", "IDAT", "IEND"]
        with PILImage.open(io.BytesIO(body)) as image:
            assert (image.format, image.mode, image.size, image.info) == ("PNG", "RGB", (80, 60), {})
    with default_storage.open(study_mask_name(study=study), "rb") as mask:
        lengths.add(len(mask.read()))
    assert len(lengths) == 1 and len(header_sets) == 1
    headers = dict(header_sets.pop())
    assert headers["Content-Type"] == "image/png" and headers["Cache-Control"] == "private, max-age=3600"


def test_renders_are_made_when_the_study_opens_never_on_a_request(client, db, tmp_path):
    study = study_make(directory=tmp_path)
    images = {i.pk for s in [*study.real_image_sets.all(), *study.generated_image_sets.all()] for i in s.images.all()}
    assert set(Render.objects.filter(presentation=study.presentation.key).values_list("image_id", flat=True)) == images
    rater, trials = started(study)  # the check variants are rendered here, with the session
    before = media_files()
    for trial in trials:
        fetch(client, rater, trial)
    assert media_files() == before  # serving wrote nothing


def test_a_closed_study_without_renders_keeps_raters_out_politely(client, db, tmp_path):
    study = study_make(directory=tmp_path, is_open=False)
    assert not Render.objects.exists()
    study.is_open = True
    study.save()
    rater = study.raters.create()
    rater_profile_update(rater=rater, role="other", years_experience=1, specialty="", consented=False)
    with pytest.raises(ApplicationError, match="not rendered yet; run `manage.py study_render"):
        session_start(rater=rater)
    page = client.get(reverse("studies:trial", kwargs={"token": rater.token}))
    assert page.status_code == 503 and "not ready yet" in page.content.decode()


def test_checks_are_variants_whose_bytes_differ_from_the_original(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    corrupted = session.trials.get(attention_check="corrupted")
    repeat = session.trials.get(attention_check="repeat")
    _, damaged = fetch(client, profiled_rater, corrupted)
    _, repeated = fetch(client, profiled_rater, repeat)
    _, original = fetch(client, profiled_rater, repeat.repeat_of)
    with default_storage.open(Render.objects.get(image=corrupted.image).name, "rb") as fh:
        undamaged = fh.read()
    assert np.abs(pixels_of(damaged).astype(float) - pixels_of(undamaged).astype(float)).mean() > 40
    assert repeated != original and len(repeated) == len(original)
    flips = {"flip_h": lambda p: p[:, ::-1], "flip_v": lambda p: p[::-1], "rot180": lambda p: p[::-1, ::-1]}
    assert np.array_equal(pixels_of(repeated), flips[repeat.variant](pixels_of(original)))
    assert fetch(client, profiled_rater, corrupted)[1] == damaged  # seeded per trial, not per request


def test_answered_trials_get_the_mask_except_practice_feedback(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    practice = session.trials.filter(is_practice=True).first()
    main = session.trials.filter(is_practice=False, attention_check="").first()
    _, practice_image = fetch(client, profiled_rater, practice)
    _, main_image = fetch(client, profiled_rater, main)
    answer = Answer(judged_real=True, confidence=None, quality=3, client_ms=100)
    for trial in (practice, main):
        rating_submit(trial=Trial.objects.get(pk=trial.pk), answer=answer)
    with default_storage.open(study_mask_name(study=session.study), "rb") as fh:
        mask = fh.read()
    assert fetch(client, profiled_rater, practice)[1] == practice_image  # the feedback shows the image again
    assert fetch(client, profiled_rater, main)[1] == mask != main_image


def test_timed_study_serves_the_image_only_inside_its_window(client, db, tmp_path):
    study = study_make(directory=tmp_path, exposure_ms=300, practice_trials=0)
    rater, trials = started(study)
    trial = trials[0]
    with default_storage.open(trial.render, "rb") as fh:
        image = fh.read()
    with default_storage.open(study_mask_name(study=study), "rb") as fh:
        mask = fh.read()
    headers, first = fetch(client, rater, trial)
    assert first == image and headers["Cache-Control"] == "no-store"
    assert fetch(client, rater, trial)[1] == image  # a retry inside the window still gets it
    trial.refresh_from_db()
    window = timedelta(milliseconds=FIXATION_MS + 300 + WINDOW_GRACE_MS)
    # Time passes: move the opening back instead of sleeping.
    Trial.objects.filter(pk=trial.pk).update(window_opened_at=trial.window_opened_at - window - timedelta(milliseconds=1))
    after_headers, after = fetch(client, rater, trial)
    assert after == mask and len(after) == len(image)
    assert {k: v for k, v in after_headers.items() if k not in CLOCK_HEADERS} == {
        k: v for k, v in headers.items() if k not in CLOCK_HEADERS
    }
    # A reload of the trial page says the window is over, so the page shows the mask and fetches nothing.
    page = client.get(reverse("studies:trial", kwargs={"token": rater.token})).content.decode()
    assert 'data-window-closed="1"' in page and 'data-exposure-ms="300"' in page
    assert not Response.objects.exists()
