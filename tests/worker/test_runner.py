"""The worker's progress adapter, without a worker: what it writes and when it cancels."""

from __future__ import annotations

import pytest

from ganlab.train.runtime import Progress
from ratingstudy.jobs.models import Job
from worker.runner import _progress_writer

pytestmark = pytest.mark.django_db


def progress(step: int, *, per_epoch: int = 100) -> Progress:
    return Progress(
        epoch=(step - 1) // per_epoch + 1,
        total_epochs=2,
        iteration=(step - 1) % per_epoch + 1,
        iterations_per_epoch=per_epoch,
        global_step=step,
        total_steps=2 * per_epoch,
        losses={"G_A": 1.0 / step},
        images_per_s=10.0,
        eta_s=1.0,
        elapsed_s=0.1 * step,
        lr=2e-4,
    )


def test_progress_writer_sees_cancel_every_iteration():
    job = Job.objects.create(kind="train", config={}, status="running")
    on_progress = _progress_writer(job, "cpu")
    assert on_progress(progress(1)) is False  # first call writes progress and a curve point
    assert on_progress(progress(2)) is False  # throttled: nothing written, flag still checked
    Job.objects.filter(pk=job.pk).update(cancel_requested=True)
    assert on_progress(progress(3)) is True  # the very next iteration stops training
    job.refresh_from_db()
    assert job.progress["global_step"] == 1 and len(job.history) == 1


def test_progress_writer_records_every_epoch_end():
    job = Job.objects.create(kind="train", config={}, status="running")
    on_progress = _progress_writer(job, "cpu")
    for step in (1, 2, 3, 4):
        on_progress(progress(step, per_epoch=2))
    job.refresh_from_db()
    assert [p["step"] for p in job.history] == [1, 2, 4]
    assert job.progress["global_step"] == 4 and job.device == "cpu"
