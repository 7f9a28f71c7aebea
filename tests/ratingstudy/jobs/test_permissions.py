"""Only staff can launch or see jobs: every job URL refuses others."""

from __future__ import annotations

import pytest

from ratingstudy.jobs.models import Job

pytestmark = pytest.mark.django_db


def job_urls(job: Job) -> list[tuple[str, str]]:
    return [
        ("get", "/admin/jobs/job/"),
        ("get", f"/admin/jobs/job/{job.pk}/change/"),
        ("get", "/admin/jobs/job/launch/train/"),
        ("post", "/admin/jobs/job/launch/train/"),
        ("post", f"/admin/jobs/job/{job.pk}/do/cancel/"),
        ("get", f"/jobs/{job.pk}/progress.json"),
        ("get", f"/jobs/{job.pk}/checkpoint"),
    ]


@pytest.fixture
def job() -> Job:
    return Job.objects.create(kind="train", config={}, checkpoint="checkpoints/x.pt")


@pytest.mark.parametrize("who", ["anonymous", "rater"])
def test_non_staff_is_refused_everywhere(client, django_user_model, job, who):
    if who == "rater":
        client.force_login(django_user_model.objects.create_user("someone", password="x-123456"))
    for method, url in job_urls(job):
        response = getattr(client, method)(url)
        assert response.status_code in (302, 403), (method, url, response.status_code)
        if response.status_code == 302:
            assert "/admin/login/" in response["Location"], (url, response["Location"])
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested


def test_staff_sees_job_pages(client, django_user_model, job):
    client.force_login(
        django_user_model.objects.create_user("r", password="x-123456", is_staff=True)
    )
    assert client.get("/admin/jobs/job/").status_code == 200
    assert client.get(f"/admin/jobs/job/{job.pk}/change/").status_code == 200
    assert client.get("/admin/jobs/job/launch/train/").status_code == 200
    assert client.get(f"/jobs/{job.pk}/progress.json").json()["status"] == "queued"
