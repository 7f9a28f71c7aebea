"""Experiments without a worker: grid validation, fan-out, the job chain, cancellation."""

from __future__ import annotations

import re

import pytest

from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.models import Experiment, Job
from ratingstudy.jobs.services import (
    experiment_cancel,
    experiment_launch,
    job_checkpoint_record,
    job_finish,
)

pytestmark = pytest.mark.django_db

TINY = {"ngf": 8, "ndf": 8, "image_size": 32, "n_epochs": 1, "n_epochs_decay": 0}


@pytest.fixture
def sent(monkeypatch):
    from worker.celery import app

    monkeypatch.setattr(app.conf, "broker_url", "redis://127.0.0.1:1/0")
    calls = []
    monkeypatch.setattr(
        app, "send_task", lambda name, args, queue: calls.append((name, args[0], queue))
    )
    return calls


def launch(tiny_set, **changes) -> Experiment:
    arguments = {
        "name": "sweep",
        "input_image_set": tiny_set,
        "grid": {"semi_supervised": [False, True], "seed": [0, 1]},
        "train_config": TINY,
        "generate_config": {"batch_size": 4},
        "evaluate_config": {"fcn_steps": 5},
        **changes,
    }
    return experiment_launch(**arguments)


def test_grid_fans_out_one_train_job_per_point_on_the_gpu_queue(
    tiny_set, sent, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        experiment = launch(tiny_set)
    jobs = list(experiment.jobs.order_by("pk"))
    assert [(j.config["semi_supervised"], j.config["seed"]) for j in jobs] == [
        (False, 0), (False, 1), (True, 0), (True, 1),
    ]  # fmt: skip
    assert all(j.kind == "train" and j.config["ngf"] == 8 for j in jobs)
    assert sent == [("worker.tasks.run_gpu_job", j.pk, "gpu") for j in jobs]
    assert experiment.generate_config["batch_size"] == 4
    assert experiment.evaluate_config["fcn_steps"] == 5
    assert [experiment.model_name_for(j.config) for j in jobs] == [
        "sweep semi_supervised=no seed=0",
        "sweep semi_supervised=no seed=1",
        "sweep semi_supervised=yes seed=0",
        "sweep semi_supervised=yes seed=1",
    ]


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"grid": {"lr": [1, 2]}}, "grid axes ['lr'] cannot vary"),
        ({"grid": {"seed": []}}, "grid axis 'seed' needs a non-empty list"),
        ({"grid": {"seed": [1, 1]}}, "lists a value twice"),
        ({"grid": {"label_fraction": [1.0, 1.5]}}, "'label_fraction' must be at most 1.0"),
        ({"grid": {"preset": ["gan9000"]}}, "'preset' must be one of"),
        ({"grid": {"seed": list(range(65))}}, "the grid has 65 points; at most 64"),
        ({"train_config": {**TINY, "seed": 3}, "grid": {"seed": [0, 1]}}, "grid axes and fixed"),
        ({"train_config": {"n_epochs": 0}}, "'n_epochs' must be at least 1"),
        ({"generate_config": {"direction": "sideways"}}, "'direction' must be one of"),
        ({"name": "x" * 90}, "exceed 100 characters"),
    ],
)
def test_bad_grid_or_config_refuses_the_whole_experiment(tiny_set, sent, changes, message):
    with pytest.raises(ApplicationError, match=re.escape(message)):
        launch(tiny_set, **changes)
    assert not Experiment.objects.exists() and not Job.objects.exists() and sent == []


def test_chain_follows_train_with_generate_then_evaluate_once(
    tiny_set, sent, django_capture_on_commit_callbacks
):
    experiment = launch(tiny_set, grid={"seed": [0]})
    train = experiment.jobs.get()
    assert experiment.model_name_for(train.config) == "sweep"  # one point: the name alone
    with django_capture_on_commit_callbacks(execute=True):
        job_finish(job_id=train.pk, status="succeeded", checkpoint="checkpoints/x.pt")
        job_finish(job_id=train.pk, status="succeeded", checkpoint="checkpoints/x.pt")  # twice
    generate = Job.objects.get(parent=train)
    assert generate.kind == "generate" and generate.experiment == experiment
    assert generate.input_image_set == tiny_set and generate.config["batch_size"] == 4
    assert "experiment chain: launched Generate job" in Job.objects.get(pk=train.pk).log_tail

    with django_capture_on_commit_callbacks(execute=True):
        job_finish(job_id=generate.pk, status="succeeded", output_image_set=tiny_set)
    evaluate = Job.objects.get(parent=generate)
    assert evaluate.kind == "evaluate" and evaluate.config["fcn_steps"] == 5
    with django_capture_on_commit_callbacks(execute=True):
        job_finish(job_id=evaluate.pk, status="succeeded")
    assert Job.objects.count() == 3
    # what the chain sent (the train job itself was launched outside the captured commits)
    assert sent == [
        ("worker.tasks.run_gpu_job", generate.pk, "gpu"),
        ("worker.tasks.run_cpu_job", evaluate.pk, "cpu"),
    ]


def test_failed_or_cancelled_jobs_and_cancelled_experiments_stop_the_chain(tiny_set, sent):
    experiment = launch(tiny_set, grid={"seed": [0, 1]})
    first, second = experiment.jobs.order_by("pk")
    job_finish(job_id=first.pk, status="failed", error="boom")
    experiment_cancel(experiment=experiment)
    job_finish(job_id=second.pk, status="succeeded", checkpoint="checkpoints/x.pt")
    assert Job.objects.count() == 2


def test_chain_step_that_cannot_launch_is_logged_not_raised(tiny_set, sent):
    experiment = launch(tiny_set, grid={"seed": [0]})
    train = experiment.jobs.get()
    # a train job that finished without a checkpoint cannot be followed by a generate job
    job_finish(job_id=train.pk, status="succeeded")
    train.refresh_from_db()
    assert train.status == "succeeded"
    assert "experiment chain stopped" in train.log_tail and "has no checkpoint" in train.log_tail


def test_cancel_cancels_queued_jobs_and_asks_running_ones_to_stop(tiny_set, sent):
    experiment = launch(tiny_set)
    running, queued, done, failed = experiment.jobs.order_by("pk")
    Job.objects.filter(pk=running.pk).update(status="running")
    Job.objects.filter(pk=done.pk).update(status="succeeded")
    Job.objects.filter(pk=failed.pk).update(status="failed")
    cancelled = experiment_cancel(experiment=experiment)
    assert [job.pk for job in cancelled] == [running.pk, queued.pk]
    statuses = dict(experiment.jobs.values_list("pk", "status"))
    assert statuses == {
        running.pk: "running", queued.pk: "cancelled", done.pk: "succeeded", failed.pk: "failed"
    }
    assert Job.objects.get(pk=running.pk).cancel_requested
    with pytest.raises(ApplicationError, match="already cancelled"):
        experiment_cancel(experiment=experiment)


def test_checkpoint_record_returns_what_it_replaced():
    job = Job.objects.create(kind="train", config={})
    assert job_checkpoint_record(job_id=job.pk, name="checkpoints/job-1/a.pt", sha256="a") == ""
    assert (
        job_checkpoint_record(job_id=job.pk, name="checkpoints/job-1/b.pt", sha256="b")
        == "checkpoints/job-1/a.pt"
    )
    job.refresh_from_db()
    assert (job.checkpoint, job.checkpoint_sha256) == ("checkpoints/job-1/b.pt", "b")
