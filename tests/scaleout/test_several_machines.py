"""The lab as deployed on several machines, on real engines.

An S3-compatible server (moto in server mode) holds every file; a ``gpu`` worker and a
``cpu`` worker run as on separate machines: own node names, queues, ``VAR_DIR``,
``JOBS_DIR`` and media root, sharing only the database, the broker and the bucket with
this process (the web side). Nothing travels through a local disk path.
"""

from __future__ import annotations

import csv
import hashlib
import io
import signal
from pathlib import Path

import psutil
import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.urls import reverse

from ratingstudy.jobs.models import Job
from tests.ratingstudy.jobs.helpers import TINY_TRAIN, wait_for
from tests.scaleout.helpers import finished, launch, tiny_set
from worker.monitor import device_report

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def files_under(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.is_file()) if root.exists() else []


def test_import_train_generate_rate_export_through_s3(machines, alice, s3_storage, lab_workers):
    from ratingstudy.studies.models import Trial
    from ratingstudy.studies.services import (
        Answer,
        rater_profile_update,
        raters_create,
        rating_submit,
        session_start,
        study_create,
    )

    web_media = Path(settings.MEDIA_ROOT)
    web_files_before = files_under(web_media)
    real = tiny_set("tiny-s3")
    # imported into the bucket, not onto this machine's disk
    assert real.images.count() == 12
    assert {image.file.name for image in real.images.all()} <= set(s3_storage.keys("images/"))

    train = finished(
        launch(alice, "train", {**TINY_TRAIN, "input_image_set": real.pk}), machines["gpu"]
    )
    assert train.worker_host == machines["gpu"].name
    stored = s3_storage.client.get_object(Bucket=s3_storage.bucket, Key=train.checkpoint)
    assert hashlib.sha256(stored["Body"].read()).hexdigest() == train.checkpoint_sha256
    # the intermediate checkpoints uploaded during training were replaced by the final one
    assert s3_storage.keys(f"checkpoints/job-{train.pk}/") == [train.checkpoint]

    generate = finished(
        launch(
            alice,
            "generate",
            {"parent": train.pk, "cfg_direction": "AtoB", "cfg_split": "test", "cfg_batch_size": 4},
        ),
        machines["gpu"],
    )
    generated = generate.output_image_set
    assert generated.images.count() == 2
    assert {image.file.name for image in generated.images.all()} <= set(s3_storage.keys())

    evaluate = finished(
        launch(
            alice,
            "evaluate",
            {"parent": generate.pk, "cfg_seed": 0, "cfg_fcn_steps": 5,
             "cfg_feature_extractor": "auto"},
        ),  # fmt: skip
        machines["cpu"],
    )
    # the chain crossed machines: training and generation on gpu-a, evaluation on cpu-a
    assert generate.worker_host == machines["gpu"].name
    assert evaluate.worker_host == machines["cpu"].name
    assert evaluate.metric_report.image_metrics.filter(name="translation.ssim").count() == 2

    # served to a rater: every render goes to the bucket when the study is created
    study = study_create(
        name="s3 study",
        instructions="Real or generated?",
        real_image_sets=[real],
        generated_image_sets=[generated],
        images_per_rater=2,
        practice_trials=0,
        corrupted_checks=0,
        repeat_checks=0,
        is_open=True,
    )
    rater = raters_create(study=study, count=1)[0]
    rater_profile_update(
        rater=rater, role="pathologist", years_experience=5, specialty="breast", consented=True
    )
    session = session_start(rater=rater)
    trial = Trial.objects.filter(session=session).order_by("index").first()
    rater_client = type(alice)()
    page = rater_client.get(
        reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token})
    )
    assert page.status_code == 200 and page["Content-Type"] == "image/png"
    served = b"".join(page.streaming_content) if page.streaming else page.content
    assert trial.render in s3_storage.keys("served/")
    with default_storage.open(trial.render, "rb") as fh:
        assert served == fh.read()
    rating_submit(
        trial=trial, answer=Answer(judged_real=True, confidence=None, quality=4, client_ms=900)
    )

    exporter = type(alice)()
    exporter.force_login(staff_superuser())
    export = exporter.get(f"/results/{study.pk}/responses.csv")
    assert export.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(export.streaming_content).decode())))
    assert len(rows) == 1 and rows[0]["quality"] == "4"

    # no local disk was shared: this process wrote nothing under its media root, the
    # workers wrote nothing under theirs, and each machine's job folders are its own
    assert files_under(web_media) == web_files_before
    for node in ("gpu-a", "cpu-a"):
        assert files_under(lab_workers.media_root(node)) == []
    gpu_jobs = {p.name for p in lab_workers.jobs_dir("gpu-a").iterdir()}
    cpu_jobs = {p.name for p in lab_workers.jobs_dir("cpu-a").iterdir()}
    assert {f"job-{train.pk}", f"job-{generate.pk}"} <= gpu_jobs
    assert cpu_jobs == {f"job-{evaluate.pk}"}


def staff_superuser():
    from django.contrib.auth import get_user_model

    return get_user_model().objects.create_superuser("root", "root@localhost", "pw-123456")


def changelist_says(client, text: str) -> bool:
    """The admin job list (which also reaps lost jobs) shows ``text`` (its worker check is
    cached a few seconds, so callers poll)."""
    return text in client.get(reverse("admin:jobs_job_changelist")).content.decode()


def test_sigkilled_gpu_machine_job_resumes_on_another_from_the_stored_checkpoint(
    machines, alice, s3_storage, lab_workers, settings
):
    settings.JOB_STALE_SECONDS = 6  # the job list's reaper, in this process
    real = tiny_set("tiny-s3-failover")
    job = launch(
        alice,
        "train",
        {**TINY_TRAIN, "input_image_set": real.pk, "cfg_batch_size": 1, "cfg_n_epochs": 10,
         "cfg_n_epochs_decay": 1},
    )  # fmt: skip
    first = machines["gpu"]
    # the epoch-1 checkpoint is in the bucket and epoch 2 is under way on gpu-a
    running = wait_for(
        lambda: Job.objects.filter(pk=job.pk, progress__epoch__gte=2)
        .exclude(checkpoint="")
        .first(),
        what="epoch 2 with a stored checkpoint",
        worker=first,
    )
    assert running.checkpoint in s3_storage.keys(f"checkpoints/job-{job.pk}/")

    # the monitor lists both machines: queues, the running job, the device
    monitor = alice.get(reverse("admin:jobs_job_workers"))
    assert monitor.status_code == 200
    workers = {worker.name: worker for worker in monitor.context["snapshot"].workers}
    assert workers[first.name].queues == ["gpu"]
    assert [j.pk for j in workers[first.name].jobs] == [job.pk]
    # the device the worker reports is this machine's (the CPU here, a GPU where there is one)
    assert workers[first.name].device["kind"] == device_report()["kind"]
    assert workers[machines["cpu"].name].queues == ["cpu"]
    assert workers[machines["cpu"].name].jobs == []
    page = monitor.content.decode()
    assert first.name in page and f"Train job #{job.pk}" in page
    assert workers[first.name].device_label in page

    # Freeze the training where it is, so that a fast machine cannot finish the job before the kill.
    for child in psutil.Process(first.process.pid).children(recursive=True):
        child.send_signal(signal.SIGSTOP)
    first.kill()
    assert Job.objects.get(pk=job.pk).status == "running"  # the row does not know yet
    # the job list explains why nothing will pick the job up
    wait_for(
        lambda: changelist_says(alice, "No live worker consumes the gpu queue"),
        what="the job list to say that no worker serves the gpu queue",
        timeout=30,
    )
    assert not changelist_says(alice, "No live worker consumes the cpu queue")

    second = lab_workers.start("gpu-b", queues="gpu", env=s3_storage.worker_env)
    machines["gpu"] = second
    wait_for(
        lambda: changelist_says(alice, "Jobs") and Job.objects.get(pk=job.pk).attempts >= 2,
        what="the lost job to be re-queued and picked up by gpu-b",
        worker=second,
        timeout=120,
    )
    job = finished(job, second)
    assert job.worker_host == second.name
    # gpu-b took the checkpoint from the bucket and pointed it at its own input copies
    assert "downloaded from storage; its input paths now point at this machine" in job.log_tail
    assert job.result["epochs_done"] == 11
    steps = [point["step"] for point in job.history]
    per_epoch = job.progress["iterations_per_epoch"]
    drops = [(a, b) for a, b in zip(steps, steps[1:], strict=False) if b < a]
    # resumed after a stored epoch checkpoint, not from scratch
    assert len(drops) <= 1 and all(b > per_epoch for _, b in drops), steps
    assert steps[-1] == job.result["global_step"]
    # gpu-b never saw gpu-a's folder: it downloaded the checkpoint into its own
    assert (lab_workers.jobs_dir("gpu-b") / f"job-{job.pk}" / "latest.pt").is_file()
    assert s3_storage.keys(f"checkpoints/job-{job.pk}/") == [job.checkpoint]
