"""Experiments (sweeps) on real workers: a grid fans out as train jobs on the gpu queue, the
job chain generates and evaluates each model, the experiment page compares them on the
automatic metrics, cost and human scores, and cancelling the experiment cancels its jobs."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ratingstudy.jobs.models import Experiment, Job
from ratingstudy.jobs.selectors import experiment_comparison
from tests.ratingstudy.jobs.helpers import TINY_TRAIN, VIEWER_PERMISSIONS, staff_with, wait_for
from tests.scaleout.helpers import tiny_set

pytestmark = [pytest.mark.worker, pytest.mark.slow, pytest.mark.django_db(transaction=True)]

GRID_AXES = {"cfg_preset", "cfg_semi_supervised", "cfg_label_fraction", "cfg_seed"}


def sweep_form(name: str, real_set, **changes) -> dict:
    """The experiment launch form: two models (semi-supervised or not), tiny everything."""
    data = {
        "name": name,
        "input_image_set": real_set.pk,
        "grid_preset": ["cyclegan"],
        "grid_semi_supervised": ["no", "yes"],
        "grid_label_fraction": "1.0",
        "grid_seed": "0",
        **{k: v for k, v in TINY_TRAIN.items() if k not in GRID_AXES},
        "gen_direction": "AtoB",
        "gen_split": "test",
        "gen_batch_size": 4,
        "eval_seed": 0,
        "eval_fcn_steps": 5,
        "eval_feature_extractor": "auto",
    }
    data.update(changes)
    return data


def launch_experiment(client, data: dict) -> Experiment:
    response = client.post(reverse("admin:jobs_experiment_launch"), data)
    assert response.status_code == 302, response.context["form"].errors
    return Experiment.objects.get(name=data["name"])


def chain_done(experiment: Experiment, workers) -> bool:
    failed = experiment.jobs.filter(status__in=["failed", "cancelled"]).first()
    assert failed is None, f"{failed}: {failed.error}\n{failed.traceback}"
    return experiment.jobs.filter(kind="evaluate", status="succeeded").count() == 2


def test_sweep_fans_out_chains_and_compares_models_with_human_scores(machines, alice):
    from ratingstudy.studies.models import Trial
    from ratingstudy.studies.services import (
        Answer,
        rater_profile_update,
        raters_create,
        rating_submit,
        session_start,
        study_create,
    )

    real = tiny_set("tiny-sweep")
    experiment = launch_experiment(alice, sweep_form("sweep", real))
    trains = list(experiment.jobs.order_by("pk"))
    assert [(job.kind, job.queue) for job in trains] == [("train", "gpu")] * 2
    assert [job.config["semi_supervised"] for job in trains] == [False, True]

    wait_for(lambda: chain_done(experiment, machines), what="both chains", timeout=400,
             worker=machines["gpu"])  # fmt: skip
    generated = [
        job.output_image_set for job in experiment.jobs.filter(kind="generate").order_by("pk")
    ]
    names = [image_set.model_name for image_set in generated]
    assert names == ["sweep semi_supervised=no", "sweep semi_supervised=yes"]
    # the chain ran each step where it belongs: generate on the gpu machine, evaluate on cpu
    assert {job.worker_host for job in experiment.jobs.filter(kind="evaluate")} == {
        machines["cpu"].name
    }

    # rated: one rater answers every trial of a study over both models
    study = study_create(
        name="sweep study",
        instructions="Real or generated?",
        real_image_sets=[real],
        generated_image_sets=generated,
        images_per_rater=4,
        practice_trials=0,
        corrupted_checks=0,
        repeat_checks=0,
        is_open=True,
    )
    rater = raters_create(study=study, count=1)[0]
    rater_profile_update(
        rater=rater, role="pathologist", years_experience=5, specialty="breast", consented=True
    )
    for trial in Trial.objects.filter(session=session_start(rater=rater)).order_by("index"):
        rating_submit(
            trial=trial, answer=Answer(judged_real=False, confidence=None, quality=2, client_ms=800)
        )

    comparison = experiment_comparison(experiment=experiment)
    rows = {row["model"]: row for row in comparison["rows"]}
    assert sorted(rows) == names
    assert "translation.ssim" in comparison["metric_columns"]
    for row in rows.values():
        assert row["evaluate"].status == "succeeded"
        assert row["metrics"]["translation.ssim"] == pytest.approx(
            row["evaluate"].result["ssim_translation"]
        )
        assert row["cost"]["train_seconds"] > 0 and row["cost"]["parameters"] > 0
        (human,) = row["human"]
        assert human["study"] == study and human["mos"]["value"] == 2.0
    assert sum(row["human"][0]["n_responses"] for row in rows.values()) >= 1

    # a viewer sees the comparison page: both models, their metrics, cost and human scores
    viewer = type(alice)()
    viewer.force_login(staff_with("bob", *VIEWER_PERMISSIONS))
    page = viewer.get(reverse("admin:jobs_experiment_change", args=[experiment.pk]))
    assert page.status_code == 200
    html = page.content.decode()
    for name in names:
        assert html.count(name) >= 2  # in the metrics table and in the human-score table
    assert "translation.ssim" in html and "sweep study" in html
    assert "experiment-cancel" not in html  # a viewer gets no cancel button


def test_cancelling_an_experiment_cancels_its_jobs_and_stops_its_chain(machines, alice):
    real = tiny_set("tiny-sweep-cancel")
    experiment = launch_experiment(
        alice,
        sweep_form(
            "long sweep",
            real,
            grid_semi_supervised=["no"],
            grid_seed="0, 1",
            cfg_n_epochs=200,
            cfg_batch_size=1,
        ),
    )
    assert experiment.jobs.count() == 2
    running = wait_for(
        lambda: experiment.jobs.filter(status="running", progress__global_step__gte=2).first(),
        what="one train job of the sweep to run",
        worker=machines["gpu"],
    )
    queued = experiment.jobs.exclude(pk=running.pk).get()
    assert queued.status == "queued"  # the one gpu worker runs one job at a time

    # a viewer may not cancel it
    viewer = type(alice)()
    viewer.force_login(staff_with("bob", *VIEWER_PERMISSIONS))
    refused = viewer.post(reverse("admin:jobs_experiment_cancel", args=[experiment.pk]))
    assert refused.status_code == 403
    assert Experiment.objects.get(pk=experiment.pk).cancelled_at is None

    response = alice.post(reverse("admin:jobs_experiment_cancel", args=[experiment.pk]))
    assert response.status_code == 302
    queued.refresh_from_db()
    assert queued.status == "cancelled"  # at once
    running = wait_for(
        lambda: Job.objects.filter(pk=running.pk, status__in=["cancelled", "failed"]).first(),
        what="the running train job to stop",
        worker=machines["gpu"],
        timeout=60,
    )
    assert running.status == "cancelled", running.traceback
    assert running.result["epochs_done"] < 200
    experiment.refresh_from_db()
    assert experiment.is_cancelled
    # a cancelled train job never succeeds, and nothing follows it in the chain
    assert not experiment.jobs.exclude(kind="train").exists()
    assert not experiment.jobs.filter(status__in=["queued", "running"]).exists()
