"""``seed_demo_study``: the demo study's link once the demo GAN made its images; never placeholders."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from ratingstudy.catalog.models import ImageSet
from ratingstudy.jobs.models import Job
from ratingstudy.studies.models import Rater, Study
from ratingstudy.studies.services import rater_revoke
from tests.ratingstudy.core.test_demo import chain_rows, small_demo_set
from tests.ratingstudy.studies.factories import image_set_make


def test_without_the_gans_images_it_says_what_the_demo_is_doing(db):
    train = chain_rows(small_demo_set(), train_status=Job.Status.RUNNING,
                       progress={"epoch": 12, "total_epochs": 120, "eta_s": 400})[1]  # fmt: skip
    with pytest.raises(CommandError, match=rf"does not exist yet: A worker is training .*job #{train.pk}.*epoch 12 of 120"):
        call_command("seed_demo_study")
    assert not Study.objects.exists()
    assert ImageSet.objects.filter(kind=ImageSet.Kind.GENERATED).count() == 0  # no placeholder


def test_link_to_the_gan_study_is_idempotent_and_reissued(db, tmp_path, client):
    demo_set = small_demo_set()
    experiment, train = chain_rows(demo_set, train_status=Job.Status.SUCCEEDED)
    for direction in ("AtoB", "BtoA"):
        Job.objects.create(
            kind=Job.Kind.GENERATE, parent=train, status=Job.Status.SUCCEEDED,
            experiment=experiment if direction == "AtoB" else None,
            config={"direction": direction, "split": "test", "batch_size": 16},
            output_image_set=image_set_make(directory=tmp_path, name=f"generated-{direction}",
                                            kind=ImageSet.Kind.GENERATED, model_name="demo", per_label=8),
        )  # fmt: skip
    earlier = call_command("seed_demo_study", base_url="http://lab.example:8000/")
    first = call_command("seed_demo_study", base_url="http://lab.example:8000")
    assert first.startswith("http://lab.example:8000/r/") and first != earlier
    assert client.get(urlsplit(earlier).path).status_code == 404  # only hashes are stored: re-issued
    assert Study.objects.count() == 1 and Rater.objects.count() == 1
    study = Study.objects.get()
    assert study.name == "Demo study" and study.is_open
    assert {s.model_name for s in study.generated_image_sets.all()} == {"demo"}
    assert "translations of the held-out demo tiles by the demo CycleGAN" in study.description
    page = client.get(urlsplit(first).path)
    assert page.status_code == 200 and "About you" in page.content.decode()
    # a revoked demo link is replaced by a fresh one; nothing else is duplicated
    rater_revoke(rater=Rater.objects.get())
    fresh = call_command("seed_demo_study")
    assert fresh.startswith("http://127.0.0.1:8000/r/") and urlsplit(fresh).path != urlsplit(first).path
    assert Study.objects.count() == 1 and Rater.objects.count() == 2
