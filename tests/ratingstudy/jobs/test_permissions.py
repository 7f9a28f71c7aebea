"""Who may do what with jobs, over every job URL and action.

alice operates jobs (``jobs.operate_job`` + ``jobs.view_job``), bob may only look
(``jobs.view_job``), charlie is staff with no permission; anonymous visitors and raters
are sent to the login page. Viewing needs ``jobs.view_job``; every action (launch,
cancel, resume, retry, checkpoint download, experiment launch and cancel) needs
``jobs.operate_job``.
"""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.urls import reverse

from ratingstudy.jobs.models import Experiment, Job
from tests.ratingstudy.jobs.helpers import (
    OPERATOR_PERMISSIONS,
    TINY_TRAIN,
    VIEWER_PERMISSIONS,
    staff_with,
)

pytestmark = pytest.mark.django_db

PEOPLE = {
    "alice": OPERATOR_PERMISSIONS,
    "bob": VIEWER_PERMISSIONS,
    "charlie": (),
}


@pytest.fixture
def sent(monkeypatch):
    """Sends to the broker are captured: these tests are about who may cause them."""
    from worker.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")  # answers nothing
    calls = []
    monkeypatch.setattr(app, "send_task", lambda name, args, queue: calls.append(args[0]))
    return calls


@pytest.fixture
def job(tiny_set) -> Job:
    name = default_storage.save("checkpoints/job-test/latest.pt", ContentFile(b"weights"))
    return Job.objects.create(
        kind="train",
        config={},
        input_image_set=tiny_set,
        checkpoint=name,
        checkpoint_sha256="0" * 64,
    )


@pytest.fixture
def experiment(job) -> Experiment:
    experiment = Experiment.objects.create(name="sweep", grid={"seed": [0]})
    Job.objects.filter(pk=job.pk).update(experiment=experiment)
    return experiment


def login(client, who: str):
    client.force_login(staff_with(who, *PEOPLE[who]))
    return client


def view_urls(job: Job, experiment: Experiment) -> list[str]:
    return [
        reverse("admin:jobs_job_changelist"),
        reverse("admin:jobs_job_change", args=[job.pk]),
        reverse("admin:jobs_job_workers"),
        reverse("jobs:progress", args=[job.pk]),
        reverse("admin:jobs_experiment_changelist"),
        reverse("admin:jobs_experiment_change", args=[experiment.pk]),
    ]


def operator_gets(job: Job) -> list[str]:
    return [
        *(reverse("admin:jobs_job_launch", args=[kind]) for kind in Job.Kind.values),
        reverse("admin:jobs_experiment_launch"),
        reverse("jobs:checkpoint", args=[job.pk]),
    ]


def state(job: Job) -> tuple:
    job.refresh_from_db()
    return (job.status, job.cancel_requested, Job.objects.count(), Experiment.objects.count())


@pytest.mark.parametrize("who", ["alice", "bob"])
def test_viewers_see_jobs_experiments_and_workers(client, who, job, experiment, sent):
    login(client, who)
    for url in view_urls(job, experiment):
        response = client.get(url)
        assert response.status_code == 200, (who, url, response.status_code)
    assert client.get(reverse("jobs:progress", args=[job.pk])).json()["status"] == "queued"


def test_charlie_staff_without_permissions_sees_nothing(client, job, experiment, sent):
    login(client, "charlie")
    for url in view_urls(job, experiment) + operator_gets(job):
        assert client.get(url).status_code == 403, url


@pytest.mark.parametrize("who", ["bob", "charlie"])
def test_only_operators_act(client, who, job, experiment, tiny_set, sent):
    login(client, who)
    before = state(job)
    for url in operator_gets(job):
        assert client.get(url).status_code == 403, (who, url)
    posts = [
        (reverse("admin:jobs_job_launch", args=["train"]), {**TINY_TRAIN, "input_image_set": tiny_set.pk}),
        *((reverse("admin:jobs_job_control", args=[job.pk, verb]), {}) for verb in ("cancel", "resume", "retry")),
        (reverse("admin:jobs_experiment_launch"), {"name": "x", "input_image_set": tiny_set.pk}),
        (reverse("admin:jobs_experiment_cancel", args=[experiment.pk]), {}),
    ]  # fmt: skip
    for url, data in posts:
        assert client.post(url, data).status_code == 403, (who, url)
    # the changelist's bulk actions: charlie is refused the page, bob is offered none (the
    # list comes back as it is)
    for action in ("cancel_jobs", "resume_jobs", "retry_jobs"):
        response = client.post(
            reverse("admin:jobs_job_changelist"),
            {"action": action, "_selected_action": [job.pk]},
        )
        assert response.status_code == (403 if who == "charlie" else 200), (who, action)
    assert state(job) == before and sent == []
    experiment.refresh_from_db()
    assert experiment.cancelled_at is None
    if who == "bob":
        page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
        assert 'id="job-cancel"' not in page and "Download checkpoint" not in page
        listing = client.get(reverse("admin:jobs_job_changelist")).content.decode()
        assert "Launch train" not in listing and 'value="cancel_jobs"' not in listing


def test_alice_launches_cancels_resumes_retries_and_downloads(
    client, job, experiment, tiny_set, sent, django_capture_on_commit_callbacks
):
    login(client, "alice")
    page = client.get(reverse("admin:jobs_job_change", args=[job.pk])).content.decode()
    assert 'id="job-cancel"' in page and "Download checkpoint" in page
    download = client.get(reverse("jobs:checkpoint", args=[job.pk]))
    assert download.status_code == 200 and b"".join(download.streaming_content) == b"weights"
    for url in operator_gets(job):
        assert client.get(url).status_code == 200, url

    with django_capture_on_commit_callbacks(execute=True):
        launched = client.post(
            reverse("admin:jobs_job_launch", args=["train"]),
            {**TINY_TRAIN, "input_image_set": tiny_set.pk},
        )
    assert launched.status_code == 302 and Job.objects.count() == 2
    assert client.post(reverse("admin:jobs_job_control", args=[job.pk, "cancel"])).status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("admin:jobs_job_control", args=[job.pk, "resume"]))
        client.post(reverse("admin:jobs_job_control", args=[job.pk, "retry"]))
    job.refresh_from_db()
    assert job.status == "queued" and Job.objects.count() == 3
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:jobs_job_changelist"),
            {"action": "cancel_jobs", "_selected_action": [job.pk]},
        )
    assert response.status_code == 302
    job.refresh_from_db()
    assert job.status == "cancelled"
    response = client.post(reverse("admin:jobs_experiment_cancel", args=[experiment.pk]))
    assert response.status_code == 302
    experiment.refresh_from_db()
    assert experiment.is_cancelled
    assert len(sent) == 3  # the launch, the resume and the retry reached the broker


def test_alice_launches_an_experiment_grid(
    client, tiny_set, sent, django_capture_on_commit_callbacks
):
    login(client, "alice")
    data = {
        "name": "grid",
        "input_image_set": tiny_set.pk,
        "grid_preset": ["cyclegan"],
        "grid_semi_supervised": ["no", "yes"],
        "grid_label_fraction": "1.0, 0.5",
        "grid_seed": "0",
        **{k: v for k, v in TINY_TRAIN.items()
           if k not in ("cfg_preset", "cfg_label_fraction", "cfg_seed")},
        "gen_direction": "AtoB", "gen_split": "test", "gen_batch_size": 4,
        "eval_seed": 0, "eval_fcn_steps": 5, "eval_feature_extractor": "auto",
    }  # fmt: skip
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(reverse("admin:jobs_experiment_launch"), data)
    assert response.status_code == 302, response.context["form"].errors
    experiment = Experiment.objects.get(name="grid")
    jobs = experiment.jobs.order_by("pk")
    assert [(j.config["semi_supervised"], j.config["label_fraction"]) for j in jobs] == [
        (False, 1.0), (False, 0.5), (True, 1.0), (True, 0.5),
    ]  # fmt: skip
    assert {j.queue for j in jobs} == {"gpu"} and sorted(sent) == [j.pk for j in jobs]


@pytest.mark.parametrize("who", ["anonymous", "rater"])
def test_non_staff_is_sent_to_the_login_page(client, django_user_model, job, experiment, who):
    if who == "rater":
        client.force_login(django_user_model.objects.create_user("someone", password="x-123456"))
    for url in view_urls(job, experiment) + operator_gets(job):
        response = client.get(url)
        assert response.status_code == 302 and "/admin/login/" in response["Location"], url
    job.refresh_from_db()
    assert job.status == Job.Status.QUEUED and not job.cancel_requested
