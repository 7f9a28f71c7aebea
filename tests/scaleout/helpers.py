"""Helpers for the scale-out tests: a tiny real set, launching from the admin, waiting."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.urls import reverse

from ratingstudy.catalog.models import ImageSet
from ratingstudy.jobs.models import Job
from tests.ratingstudy.jobs.helpers import wait_status


def tiny_set(name: str) -> ImageSet:
    """4+4 training and 2+2 test tiles of 32 px (imported through the default storage)."""
    call_command(
        "seed_demo", "--train-per-class", "4", "--test-per-class", "2", "--size", "32",
        "--name", name, stdout=io.StringIO(),
    )  # fmt: skip
    return ImageSet.objects.get(name=name)


def launch(client, kind: str, data: dict) -> Job:
    """Launch a job through the admin form, as a researcher does; returns the new job."""
    before = set(Job.objects.values_list("pk", flat=True))
    response = client.post(reverse("admin:jobs_job_launch", args=[kind]), data)
    assert response.status_code == 302, response.context["form"].errors
    (job_id,) = set(Job.objects.values_list("pk", flat=True)) - before
    return Job.objects.get(pk=job_id)


def finished(job: Job, worker) -> Job:
    """Wait for the job to end and require that it succeeded."""
    job = wait_status(job.pk, {"succeeded", "failed", "cancelled"}, worker=worker)
    assert job.status == "succeeded", job.traceback or job.error
    return job
