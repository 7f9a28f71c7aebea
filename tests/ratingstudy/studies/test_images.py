"""What the browser receives for a trial image: same format, size and headers, no metadata."""

from __future__ import annotations

import io

import numpy as np
from django.urls import reverse
from PIL import Image as PILImage

from ratingstudy.catalog.models import ImageSet
from ratingstudy.studies.blinding import png_chunk_types
from ratingstudy.studies.services import rater_profile_update, session_start, study_create
from tests.ratingstudy.studies.factories import image_set_make

VARYING_HEADERS = {"Content-Length", "Expires"}


def fetch(client, rater, trial) -> tuple[dict[str, str], bytes]:
    response = client.get(reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token}))
    assert response.status_code == 200
    return dict(response.headers), response.content


def test_real_generated_and_corrupted_images_look_alike_on_the_wire(client, db, tmp_path):
    # Planted difference in the stored files: real 96x64, generated 64x64, different stored PNG settings.
    real = image_set_make(directory=tmp_path, name="real", kind=ImageSet.Kind.REAL, size=96, height=64)
    generated = image_set_make(directory=tmp_path, name="gan", kind=ImageSet.Kind.GENERATED, model_name="g", seed=3)
    study = study_create(
        name="wire", instructions="x", real_image_sets=[real], generated_image_sets=[generated],
        images_per_rater=4, practice_trials=2, corrupted_checks=1, repeat_checks=1, image_size=80, is_open=True,
    )
    rater = study.raters.create()
    rater_profile_update(rater=rater, role="other", years_experience=1, specialty="", consented=False)
    trials = list(session_start(rater=rater).trials.select_related("image__image_set"))
    headers_seen, kinds = set(), set()
    for trial in trials:
        headers, body = fetch(client, rater, trial)
        kinds.add((trial.image.image_set.kind, trial.attention_check))
        assert headers["Content-Type"] == "image/png"
        assert int(headers["Content-Length"]) == len(body)
        assert "no-store" in headers["Cache-Control"]
        headers_seen.add(tuple(sorted((k, v) for k, v in headers.items() if k not in VARYING_HEADERS)))
        with PILImage.open(io.BytesIO(body)) as image:
            assert (image.format, image.mode, image.size) == ("PNG", "RGB", (80, 80))
            assert image.info == {}
        assert png_chunk_types(body) == []
    assert len(headers_seen) == 1  # identical header names and values for every image
    assert {kind for kind, _ in kinds} == {"real", "generated"}


def test_corrupted_check_is_visibly_damaged(client, profiled_rater):
    session = session_start(rater=profiled_rater)
    corrupted = session.trials.get(attention_check="corrupted")
    original = session.trials.filter(image=corrupted.image).exclude(pk=corrupted.pk).first()
    _, bad = fetch(client, profiled_rater, corrupted)
    _, good = fetch(client, profiled_rater, original)
    difference = np.abs(
        np.asarray(PILImage.open(io.BytesIO(bad)), dtype=float) - np.asarray(PILImage.open(io.BytesIO(good)), dtype=float)
    )
    assert difference.mean() > 40
    # Fetching again gives the same bytes (the damage is seeded per trial, not per request).
    assert fetch(client, profiled_rater, corrupted)[1] == bad


def test_served_image_is_rendered_once_then_read_from_storage(client, db, tmp_path):
    from django.core.files.storage import default_storage

    from ratingstudy.studies import rendering

    real = image_set_make(directory=tmp_path, name="r1", kind=ImageSet.Kind.REAL, size=64)
    generated = image_set_make(directory=tmp_path, name="g1", kind=ImageSet.Kind.GENERATED, model_name="g", seed=5)
    study = study_create(
        name="cache", instructions="x", real_image_sets=[real], generated_image_sets=[generated],
        images_per_rater=4, practice_trials=0, corrupted_checks=1, repeat_checks=0, image_size=48, is_open=True,
    )
    rater = study.raters.create()
    rater_profile_update(rater=rater, role="other", years_experience=1, specialty="", consented=False)
    trials = list(session_start(rater=rater).trials.select_related("image"))
    served = {}
    for trial in trials:
        _, served[trial.pk] = fetch(client, rater, trial)
        seed = trial.pk if trial.attention_check == "corrupted" else None
        name = f"served/{trial.image.sha256}-48{f'-c{seed}' if seed else ''}.png"
        assert default_storage.exists(name)
        with trial.image.file.open("rb") as fh:  # the same bytes as rendering afresh
            assert served[trial.pk] == rendering.served_png(fh.read(), size=48, corrupt_seed=seed)
    # later requests send the stored rendering: they work even with the sources gone
    for trial in trials:
        if default_storage.exists(trial.image.file.name):
            default_storage.delete(trial.image.file.name)
    for trial in trials:
        assert fetch(client, rater, trial)[1] == served[trial.pk]
