"""The first-run demo: its status, each step of the chain, and the whole chain in seconds.

The fast tests build the job rows the worker would leave; ``test_demo_gan_runs_the_whole_chain``
trains, generates and evaluates for real (a one-epoch budget on a small demo set).
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from django.core.management import call_command

from ratingstudy.catalog.models import ImageSet
from ratingstudy.core.selectors import DEMO_IMAGE_SET, demo_status
from ratingstudy.core.services import (
    PLACEHOLDER_SET,
    PLACEHOLDER_STUDY,
    demo_advance,
    demo_invitation,
    demo_train_config,
)
from ratingstudy.jobs.models import Experiment, Job
from ratingstudy.results.models import MetricReport
from ratingstudy.studies.models import Study
from ratingstudy.studies.services import study_create
from tests.ratingstudy.studies.factories import image_set_make


def small_demo_set() -> ImageSet:
    """The demo tiles at the demo's size, fewer of them (``demo_image_set`` keeps an existing set)."""
    call_command(
        "seed_demo", name=DEMO_IMAGE_SET, size=64, train_per_class=8, test_per_class=8, verbosity=0
    )
    return ImageSet.objects.get(name=DEMO_IMAGE_SET)


def chain_rows(demo_set: ImageSet, *, train_status: str, progress: dict | None = None):
    experiment = Experiment.objects.create(
        name="demo", input_image_set=demo_set, grid={"preset": ["demo"]}
    )
    train = Job.objects.create(
        kind=Job.Kind.TRAIN,
        experiment=experiment,
        input_image_set=demo_set,
        status=train_status,
        config={"preset": "demo", **demo_train_config(minutes=8)},
        progress=progress or {},
        checkpoint="checkpoints/job-1/abc.pt" if train_status == Job.Status.SUCCEEDED else "",
    )
    return experiment, train


def test_status_says_what_is_happening(db):
    assert demo_status().stage == "not_started"
    assert "has not started" in demo_status().message
    experiment, train = chain_rows(small_demo_set(), train_status=Job.Status.QUEUED)
    status = demo_status()
    assert (status.stage, status.job, status.in_progress) == ("training", train, True)
    assert f"job #{train.pk} is queued" in status.message
    train.status = Job.Status.RUNNING
    train.progress = {"epoch": 37, "total_epochs": 120, "eta_s": 290.0}
    train.save()
    assert "epoch 37 of 120, about 5 min left" in demo_status().message
    train.status, train.error = Job.Status.FAILED, "RuntimeError: out of memory\nTraceback..."
    train.save()
    status = demo_status()
    assert status.stage == "failed" and not status.in_progress
    assert f"training (job #{train.pk}) failed: RuntimeError: out of memory. Resume it" in status.message


def test_demo_config_is_the_recipe_and_fits_the_minutes():
    default = demo_train_config()
    assert (default["image_size"], default["ngf"], default["ndf"], default["batch_size"]) == (64, 16, 16, 4)
    # 8.6 min x 14.9 pairs/s (measured on 2 cores) / 64 pairs per epoch
    assert (default["n_epochs"], default["n_epochs_decay"]) == (60, 60)
    assert default["checkpoint_every"] == 120
    assert demo_train_config(minutes=4.3)["n_epochs"] + demo_train_config(minutes=4.3)["n_epochs_decay"] == 60
    tiny = demo_train_config(minutes=0.01)
    assert (tiny["n_epochs"], tiny["n_epochs_decay"]) == (1, 0)


def test_advance_generates_both_directions_then_opens_the_study(db, redis_url, tmp_path, client):
    demo_set = small_demo_set()
    # an earlier version's placeholder study, which must go away once the real one opens
    placeholder = image_set_make(
        directory=tmp_path, name=PLACEHOLDER_SET, kind=ImageSet.Kind.GENERATED, per_label=8
    )
    study_create(
        name=PLACEHOLDER_STUDY, instructions="x", real_image_sets=[demo_set],
        generated_image_sets=[placeholder], images_per_rater=4, practice_trials=0, is_open=True,
    )  # fmt: skip
    experiment, train = chain_rows(demo_set, train_status=Job.Status.SUCCEEDED)
    chained = Job.objects.create(
        kind=Job.Kind.GENERATE, experiment=experiment, parent=train, status=Job.Status.RUNNING,
        config={"direction": "AtoB", "split": "test", "batch_size": 16},
    )  # fmt: skip
    status = demo_advance()
    other = Job.objects.get(kind=Job.Kind.GENERATE, parent=train, config__direction="BtoA")
    assert other.experiment is None and other.input_image_set == demo_set
    assert status.stage == "generating" and status.job in (chained, other)
    assert demo_advance().stage == "generating"  # idempotent: nothing launched twice
    assert Job.objects.filter(kind=Job.Kind.GENERATE).count() == 2

    for job in (chained, other):
        job.output_image_set = image_set_make(
            directory=tmp_path, name=f"generated-job{job.pk}", kind=ImageSet.Kind.GENERATED,
            model_name="demo", per_label=8, seed=job.pk,
        )  # fmt: skip
        job.status = Job.Status.SUCCEEDED
        job.save()
    status = demo_advance()
    assert status.stage == "ready" and not status.in_progress
    study = Study.objects.get(name="Demo study")
    assert status.study == study and study.is_open
    assert {s.model_name for s in study.generated_image_sets.all()} == {"demo"}
    assert list(study.real_image_sets.all()) == [demo_set]
    assert "32 images generated by the demo CycleGAN" in status.message
    assert not Study.objects.filter(name=PLACEHOLDER_STUDY).exists()
    assert not ImageSet.objects.filter(name=PLACEHOLDER_SET).exists()

    first = demo_invitation(base_url="http://lab.example:8000/")
    assert first.startswith("http://lab.example:8000/r/")
    page = client.get(urlsplit(first).path)
    assert page.status_code == 200
    again = call_command("seed_demo_study", base_url="http://lab.example:8000")
    assert again != first and client.get(urlsplit(first).path).status_code == 404
    assert client.get(urlsplit(again).path).status_code == 200


def test_seed_demo_study_explains_that_the_gan_is_not_ready(db):
    from django.core.management.base import CommandError

    with pytest.raises(CommandError, match="the demo study does not exist yet: The demo has not started"):
        call_command("seed_demo_study")


def test_home_page_shows_the_demo_and_reloads_while_it_runs(db, client, admin_client):
    chain_rows(small_demo_set(), train_status=Job.Status.RUNNING, progress={"epoch": 3, "total_epochs": 10, "eta_s": 60})
    page = client.get("/").content.decode()
    assert "epoch 3 of 10, about 1 min left" in page and 'http-equiv="refresh"' in page
    assert "/admin/jobs/job/" not in page  # job links only for staff
    staff_page = admin_client.get("/").content.decode()
    assert "/admin/jobs/job/" in staff_page


@pytest.mark.slow
def test_demo_gan_runs_the_whole_chain(transactional_db, redis_url, client, settings, tmp_path):
    settings.JOBS_DIR = tmp_path / "jobs"  # the jobs run in this process: keep their files here
    small_demo_set()
    link = call_command("demo_gan", minutes=0.01, base_url="http://testserver")
    assert client.get(urlsplit(link).path).status_code == 200
    experiment = Experiment.objects.get(name="demo")
    train = experiment.jobs.get(kind=Job.Kind.TRAIN)
    assert train.status == Job.Status.SUCCEEDED and train.config["n_epochs"] == 1
    assert train.result["epochs_done"] == 1 and train.worker_host.startswith("demo_gan@")
    generates = Job.objects.filter(kind=Job.Kind.GENERATE, parent=train)
    assert {j.config["direction"]: j.status for j in generates} == {
        "AtoB": Job.Status.SUCCEEDED,
        "BtoA": Job.Status.SUCCEEDED,
    }
    atob = generates.get(config__direction="AtoB")
    assert atob.output_image_set.images.count() == 8  # the 8 held-out benign tiles, translated
    assert atob.output_image_set.images.first().width == 64
    evaluate = Job.objects.get(kind=Job.Kind.EVALUATE)
    assert evaluate.status == Job.Status.SUCCEEDED and evaluate.parent == atob
    report = MetricReport.objects.get(image_set=atob.output_image_set)
    assert report.model_name == "demo" and report.cost["parameters"] == 1_338_344
    status = demo_status()
    assert status.stage == "ready" and status.evaluation == Job.Status.SUCCEEDED
    # again: nothing is trained twice, only a fresh link
    again = call_command("demo_gan", base_url="http://testserver")
    assert again != link and Job.objects.count() == 4
