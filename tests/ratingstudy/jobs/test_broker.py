"""No broker configured: jobs are refused at once, naming REDIS_URL; never a silent amqp default.

And when there is a broker but no worker on a queue, the job list says so.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest
from django.urls import reverse

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Job
from ratingstudy.jobs.services import job_launch
from ratingstudy.lib.processes import PROJECT_ROOT
from tests.ratingstudy.jobs.helpers import OPERATOR_PERMISSIONS, TINY_TRAIN, staff_with

pytestmark = pytest.mark.django_db


@pytest.fixture
def no_broker(monkeypatch):
    """This process as started without REDIS_URL (the fixtures may have configured one)."""
    from worker.celery import app

    monkeypatch.delenv("CELERY_BROKER_URL", raising=False)
    monkeypatch.setattr(app.conf, "broker_url", None)


def env_without_broker() -> dict[str, str]:
    return {
        name: value
        for name, value in os.environ.items()
        if name not in ("REDIS_URL", "CELERY_BROKER_URL", "CELERY_BROKER_WRITE_URL")
    }


def test_launch_without_broker_fails_at_once_naming_redis_url(tiny_set, no_broker):
    with pytest.raises(ApplicationError) as refused:
        job_launch(kind="train", config={"n_epochs": 1}, input_image_set=tiny_set)
    assert "REDIS_URL is not set" in refused.value.message
    assert "redis-server" in refused.value.message and "make run" in refused.value.message
    assert not Job.objects.exists()


def test_admin_launch_without_broker_shows_the_error_and_creates_nothing(
    client, tiny_set, no_broker
):
    client.force_login(staff_with("alice", *OPERATOR_PERMISSIONS))
    response = client.post(
        reverse("admin:jobs_job_launch", args=["train"]),
        {**TINY_TRAIN, "input_image_set": tiny_set.pk},
    )
    assert response.status_code == 200
    assert "REDIS_URL is not set" in response.content.decode()
    assert not Job.objects.exists()
    # and the job list says why no job can run
    page = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "REDIS_URL is not set" in page


def test_a_process_without_redis_url_never_tries_amqp():
    """A fresh process (nothing configured by fixtures) refuses to send, within seconds."""
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c",
         "from worker.celery import app; app.send_task('worker.tasks.ping', args=['x'])"],
        cwd=PROJECT_ROOT, env=env_without_broker(), capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert result.returncode != 0
    last_line = result.stderr.strip().splitlines()[-1]
    assert last_line.startswith("worker.celery.BrokerNotConfigured: REDIS_URL is not set")
    # refused before any connection: nothing tried AMQP's port or failed to connect
    assert "5672" not in result.stderr and "OperationalError" not in result.stderr
    assert time.monotonic() - started < 30


def test_a_worker_without_redis_url_exits_naming_it():
    result = subprocess.run(
        [sys.executable, "-m", "celery", "-A", "worker.celery", "worker", "--queues", "gpu",
         "--pool", "solo", "--without-gossip", "--without-mingle"],
        cwd=PROJECT_ROOT, env=env_without_broker(), capture_output=True, text=True, timeout=90,
    )  # fmt: skip
    assert result.returncode != 0
    assert "REDIS_URL is not set" in result.stdout + result.stderr


def test_job_list_says_when_no_worker_serves_a_queue(client, lab_broker, tiny_set, settings):
    """A broker with no worker at all: both queues are named, with the queued job counted
    and the command that starts a worker."""
    client.force_login(staff_with("alice", *OPERATOR_PERMISSIONS))
    Job.objects.create(kind="train", config={}, input_image_set=tiny_set)
    from django.core.cache import cache

    cache.clear()  # an earlier test's worker check is cached for a few seconds
    page = client.get(reverse("admin:jobs_job_changelist")).content.decode()
    assert "No live worker consumes the gpu queue: 1 queued job(s) wait for one" in page
    assert "No live worker consumes the cpu queue." in page
    assert "celery -A worker.celery worker -Q gpu" in page
    # the broadcast behind it is made once per few seconds, not once per page
    from ratingstudy.jobs.selectors import workers_live

    first = workers_live()
    assert first.workers == [] and first.error == ""
    assert workers_live().checked_at == first.checked_at
