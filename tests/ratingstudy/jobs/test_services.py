"""Job state changes without a worker: validation, cancel/resume rules, lost-worker reaping."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.configs import default_config
from ratingstudy.jobs.models import Job
from ratingstudy.jobs.services import job_cancel, job_claim, job_launch, job_resume, jobs_reap_stale

pytestmark = pytest.mark.django_db


@pytest.fixture
def sent(monkeypatch):
    """Capture what would be sent to the broker (these tests are about the database rows).

    A broker URL is configured (launching refuses without one) but never connected to.
    """
    from worker.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    calls = []
    monkeypatch.setattr(
        app, "send_task", lambda name, args, queue: calls.append((name, args, queue))
    )
    return calls


def test_launch_fills_defaults_and_enqueues_after_commit(
    tiny_set, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        job = job_launch(kind="train", config={"n_epochs": 2}, input_image_set=tiny_set)
    assert job.config == {**default_config("train"), "n_epochs": 2}
    assert sent == [("worker.tasks.run_gpu_job", [job.pk], "gpu")]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"n_epochs": 0}, "'n_epochs' must be at least 1"),
        ({"preset": "gan9000"}, "'preset' must be one of"),
        ({"batch_size": "4"}, "'batch_size' must be an integer"),
        ({"learning_rate": 1}, "unknown field"),
        ({"x_label": "malignant"}, "x_label and y_label must differ"),
        ({"split": "test", "image_size": 16}, "'image_size' must be at least 32"),
    ],
)
def test_bad_config_is_refused_naming_the_field(tiny_set, sent, config, message):
    with pytest.raises(ApplicationError, match=message):
        job_launch(kind="train", config=config, input_image_set=tiny_set)
    assert not Job.objects.exists()


def test_generate_needs_a_train_parent_with_checkpoint(tiny_set, sent):
    parent = Job.objects.create(kind="train", config={}, status="running")
    with pytest.raises(ApplicationError, match="has no checkpoint yet"):
        job_launch(kind="generate", config={}, parent=parent, input_image_set=tiny_set)


def test_cancel_queued_is_immediate_running_is_requested(sent):
    queued = Job.objects.create(kind="train", config={})
    running = Job.objects.create(kind="train", config={}, status="running")
    assert job_cancel(job=queued).status == "cancelled"
    job = job_cancel(job=running)
    assert job.status == "running" and job.cancel_requested
    with pytest.raises(ApplicationError, match="only queued or running"):
        job_cancel(job=queued)


def test_resume_requeues_failed_job(sent, django_capture_on_commit_callbacks):
    job = Job.objects.create(kind="evaluate", config={}, status="failed", error="boom")
    with django_capture_on_commit_callbacks(execute=True):
        job_resume(job=job)
    job.refresh_from_db()
    assert job.status == "queued" and job.error == ""
    assert sent == [("worker.tasks.run_cpu_job", [job.pk], "cpu")]
    with pytest.raises(ApplicationError, match="only failed or cancelled"):
        job_resume(job=job)


def test_duplicate_delivery_of_a_live_job_is_dropped():
    job = Job.objects.create(kind="train", config={})
    assert job_claim(job_id=job.pk, worker_host="a") is not None
    assert job_claim(job_id=job.pk, worker_host="b") is None  # still beating on "a"
    Job.objects.filter(pk=job.pk).update(status="succeeded")
    assert job_claim(job_id=job.pk, worker_host="b") is None


def test_lost_worker_is_requeued_then_failed_after_max_attempts(
    sent, settings, django_capture_on_commit_callbacks
):
    settings.JOB_STALE_SECONDS = 30
    settings.JOB_MAX_ATTEMPTS = 2
    old = timezone.now() - timedelta(seconds=31)
    job = Job.objects.create(
        kind="train", config={}, status="running", attempts=1, heartbeat_at=old, worker_host="w1"
    )
    fresh = Job.objects.create(
        kind="train", config={}, status="running", attempts=1, heartbeat_at=timezone.now()
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert [j.pk for j in jobs_reap_stale()] == [job.pk]
    job.refresh_from_db()
    assert job.status == "queued" and "w1 sent no heartbeat" in job.log_tail
    assert sent == [("worker.tasks.run_gpu_job", [job.pk], "gpu")]
    Job.objects.filter(pk=job.pk).update(status="running", attempts=2, heartbeat_at=old)
    jobs_reap_stale()
    job.refresh_from_db()
    assert job.status == "failed" and "gave up after 2 attempts" in job.error
    fresh.refresh_from_db()
    assert fresh.status == "running"


def test_launch_while_broker_is_down_fails_visibly_and_can_be_resumed(
    tiny_set, monkeypatch, django_capture_on_commit_callbacks
):
    from kombu.exceptions import OperationalError

    from worker.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")

    def broker_down(name, args, queue):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(app, "send_task", broker_down)
    with django_capture_on_commit_callbacks(execute=True):
        job = job_launch(kind="train", config={}, input_image_set=tiny_set)
    job.refresh_from_db()
    assert job.status == "failed"
    assert "could not reach the job broker" in job.error and "press Resume" in job.error
    sent = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue: sent.append(args))
    with django_capture_on_commit_callbacks(execute=True):
        job_resume(job=job)
    job.refresh_from_db()
    assert job.status == "queued" and sent == [[job.pk]]
