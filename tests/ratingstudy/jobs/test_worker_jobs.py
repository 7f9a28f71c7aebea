"""Jobs end to end with a real Redis and a real Celery worker subprocess.

Launched from the admin as a logged-in staff user, exactly as a researcher does.
"""

from __future__ import annotations

import hashlib
import time

import pytest
import torch
from django.core.files.storage import default_storage

from ratingstudy.jobs.models import Job
from tests.ratingstudy.jobs.helpers import TINY_TRAIN, wait_for, wait_status

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]


def launch(client, kind: str, data: dict) -> Job:
    before = set(Job.objects.values_list("pk", flat=True))
    response = client.post(f"/admin/jobs/job/launch/{kind}/", data)
    assert response.status_code == 302, response.context["form"].errors
    (job_id,) = set(Job.objects.values_list("pk", flat=True)) - before
    return Job.objects.get(pk=job_id)


def test_train_generate_evaluate_chain(celery_worker, staff_client, tiny_set):
    train = launch(staff_client, "train", {**TINY_TRAIN, "input_image_set": tiny_set.pk})
    train = wait_status(train.pk, {"succeeded", "failed"}, worker=celery_worker)
    assert train.status == "succeeded", train.traceback or train.error
    assert (
        train.progress["epoch"] == 2
        and train.progress["iteration"] == train.progress["iterations_per_epoch"]
    )
    assert len(train.history) >= 2 and set(train.history[-1]["losses"]) >= {"G_A", "D_A", "cycle_A"}
    assert train.device == "cpu" and train.worker_host and train.attempts == 1
    with default_storage.open(train.checkpoint, "rb") as fh:
        data = fh.read()
    assert hashlib.sha256(data).hexdigest() == train.checkpoint_sha256
    page = staff_client.get(f"/jobs/{train.pk}/checkpoint")
    assert page.status_code == 200 and b"".join(page.streaming_content) == data

    generate = launch(
        staff_client,
        "generate",
        {
            "parent": train.pk,
            "input_image_set": tiny_set.pk,
            "cfg_direction": "AtoB",
            "cfg_split": "test",
            "cfg_batch_size": 4,
        },
    )
    generate = wait_status(generate.pk, {"succeeded", "failed"}, worker=celery_worker)
    assert generate.status == "succeeded", generate.traceback or generate.error
    out = generate.output_image_set
    assert out.kind == "generated" and out.model_name
    images = list(out.images.select_related("source_image"))
    assert len(images) == 2  # the two benign test tiles, translated benign -> malignant
    for image in images:
        assert image.direction == "AtoB" and image.checkpoint_sha256 == train.checkpoint_sha256
        assert image.source_image.label == "benign" and image.source_image.split == "test"
        assert image.label == "malignant" and (image.width, image.height) == (32, 32)

    evaluate = launch(
        staff_client,
        "evaluate",
        {
            "parent": generate.pk,
            "cfg_seed": 0,
            "cfg_fcn_steps": 5,
            "cfg_feature_extractor": "auto",
        },
    )
    evaluate = wait_status(evaluate.pk, {"succeeded", "failed"}, worker=celery_worker)
    assert evaluate.status == "succeeded", evaluate.traceback or evaluate.error
    report = evaluate.metric_report
    assert report is not None and report.image_set_id == out.pk
    assert report.cost["device"] == "cpu" and report.cost["parameters"] > 0
    assert report.image_metrics.filter(name="translation.ssim").count() == 2
    assert evaluate.result["extractor"] == "efficientnet_lite0"


def test_cancel_reaches_running_training_and_leaves_checkpoint(
    celery_worker, staff_client, tiny_set
):
    job = launch(
        staff_client,
        "train",
        {**TINY_TRAIN, "input_image_set": tiny_set.pk, "cfg_n_epochs": 200, "cfg_batch_size": 1},
    )
    wait_for(
        lambda: Job.objects.get(pk=job.pk).progress.get("global_step", 0) >= 3,
        what="training to start",
        worker=celery_worker,
    )
    response = staff_client.post(f"/admin/jobs/job/{job.pk}/do/cancel/")
    assert response.status_code == 302
    cancelled_at = time.monotonic()
    job = wait_status(
        job.pk, {"cancelled", "failed", "succeeded"}, worker=celery_worker, timeout=60
    )
    assert job.status == "cancelled", job.traceback
    # stopped long before the 201 epochs, a few seconds after the request (the per-iteration
    # check itself is tested without timing in test_progress_writer_sees_cancel_every_iteration)
    assert time.monotonic() - cancelled_at < 20
    assert job.result["epochs_done"] < 201 and job.result["cancelled"] is True
    with default_storage.open(job.checkpoint, "rb") as fh:
        state = torch.load(fh, map_location="cpu", weights_only=False)
    assert state["complete"] is False and state["global_step"] == job.result["global_step"]


def test_sigkilled_worker_job_resumes_from_checkpoint(
    celery_worker, staff_client, tiny_set, settings
):
    settings.JOB_STALE_SECONDS = 6
    job = launch(
        staff_client,
        "train",
        {
            **TINY_TRAIN,
            "input_image_set": tiny_set.pk,
            "cfg_batch_size": 1,
            "cfg_n_epochs": 3,
            "cfg_n_epochs_decay": 1,
        },
    )
    # wait until the first epoch's checkpoint exists and the second epoch is under way
    wait_for(
        lambda: Job.objects.get(pk=job.pk).progress.get("epoch", 0) >= 2,
        what="epoch 2",
        worker=celery_worker,
    )
    celery_worker.kill()
    assert Job.objects.get(pk=job.pk).status == "running"  # the row does not know yet
    celery_worker.start()
    # the admin job list looks for lost workers each time it loads
    wait_for(
        lambda: staff_client.get("/admin/jobs/job/") and Job.objects.get(pk=job.pk).attempts >= 2,
        what="the lost job to be re-queued and picked up",
        worker=celery_worker,
        timeout=120,
    )
    job = wait_status(job.pk, {"succeeded", "failed"}, worker=celery_worker)
    assert job.status == "succeeded", job.traceback or job.error
    assert "resuming from latest.pt" in job.log_tail
    assert job.result["epochs_done"] == 4
    assert job.result["global_step"] == 4 * job.progress["iterations_per_epoch"]
    # the second attempt started from the epoch-1 checkpoint, not from scratch: the only
    # step the curve goes back to is one after that checkpoint
    steps = [point["step"] for point in job.history]
    per_epoch = job.progress["iterations_per_epoch"]
    drops = [(a, b) for a, b in zip(steps, steps[1:], strict=False) if b < a]
    assert len(drops) <= 1 and all(b > per_epoch for _, b in drops), steps
    assert steps[-1] == job.result["global_step"]
