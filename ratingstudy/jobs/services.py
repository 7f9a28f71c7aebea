"""Writes to jobs: launch, cancel, resume, retry (web side) and claim, progress,
checkpoints, finish (worker side); experiments (sweeps): launch, cancel, and the
chain that follows each train job with a generate and an evaluate job. Every state
change goes through here.

Dispatch happens after the surrounding transaction commits, so a worker never
receives an id whose row it cannot see yet.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from ratingstudy.catalog.models import ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.jobs.configs import validate_fields, validate_grid, validate_job_config
from ratingstudy.jobs.models import Comparison, Experiment, Job

log = logging.getLogger(__name__)

#: Celery task name per queue; the web process sends by name and never imports the tasks.
TASK_FOR_QUEUE = {"gpu": "worker.tasks.run_gpu_job", "cpu": "worker.tasks.run_cpu_job"}
HISTORY_LIMIT = 5000  # loss-curve points kept on the row (older ones are thinned)
LOG_TAIL_CHARS = 20_000


def broker_check() -> None:
    """Refuse at once when no broker is configured (``REDIS_URL`` unset), saying how to start one."""
    from worker.celery import BrokerNotConfigured, app  # light: imports no torch

    try:
        app.broker_required()
    except BrokerNotConfigured as exc:
        raise ApplicationError(str(exc)) from exc


def job_dispatch(*, job: Job) -> None:
    """Send the job's id to its queue once the current transaction commits.

    When the broker cannot be reached the job is marked failed with a message that
    says so, instead of staying "queued" with no message on the way: the researcher
    presses Resume once Redis is back.
    """
    job_id, queue = job.pk, job.queue
    transaction.on_commit(lambda: _send(job_id=job_id, queue=queue))


def _send(*, job_id: int, queue: str) -> None:
    from worker.celery import app  # light: imports no torch and not worker.tasks

    try:
        app.send_task(TASK_FOR_QUEUE[queue], args=[job_id], queue=queue)
    except Exception as exc:  # kombu raises OperationalError and socket errors
        log.exception("could not enqueue job %s", job_id)
        Job.objects.filter(pk=job_id, status=Job.Status.QUEUED).update(
            status=Job.Status.FAILED,
            finished_at=timezone.now(),
            error=f"could not reach the job broker ({type(exc).__name__}: {exc}); "
            "start Redis or check REDIS_URL, then press Resume",
        )


def job_launch(
    *,
    kind: str,
    config: dict[str, Any],
    user=None,
    input_image_set: ImageSet | None = None,
    parent: Job | None = None,
    experiment: Experiment | None = None,
) -> Job:
    """Validate and create a job, then enqueue it after commit (refused when there is no broker)."""
    broker_check()
    if kind not in Job.Kind.values:
        raise ApplicationError(
            f"unknown job kind {kind!r}; choose one of {', '.join(Job.Kind.values)}"
        )
    config = validate_job_config(
        kind=kind, config=config, input_image_set=input_image_set, parent=parent
    )
    with transaction.atomic():
        job = Job.objects.create(
            kind=kind,
            config=config,
            created_by=user if user is not None and user.is_authenticated else None,
            input_image_set=input_image_set,
            parent=parent,
            experiment=experiment,
        )
        job_dispatch(job=job)
    return job


def job_cancel(*, job: Job) -> Job:
    """Cancel a queued job at once; ask a running one to stop after its current iteration."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status == Job.Status.QUEUED:
            job.status = Job.Status.CANCELLED
            job.finished_at = timezone.now()
            job.cancel_requested = True
        elif job.status == Job.Status.RUNNING:
            job.cancel_requested = True
        else:
            raise ApplicationError(
                f"job #{job.pk} is {job.status}; only queued or running jobs can be cancelled"
            )
        job.save(update_fields=["status", "finished_at", "cancel_requested"])
    return job


def job_resume(*, job: Job) -> Job:
    """Re-queue a failed or cancelled job; training continues from its last checkpoint."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job.pk)
        if job.status not in (Job.Status.FAILED, Job.Status.CANCELLED):
            raise ApplicationError(
                f"job #{job.pk} is {job.status}; only failed or cancelled jobs can be resumed"
            )
        job.status = Job.Status.QUEUED
        job.cancel_requested = False
        job.error = ""
        job.finished_at = None
        job.save(update_fields=["status", "cancel_requested", "error", "finished_at"])
        job_dispatch(job=job)
    return job


def job_retry(*, job: Job, user=None) -> Job:
    """Start the same job again from scratch, as a new job with the same inputs."""
    return job_launch(
        kind=job.kind,
        config=job.config,
        user=user,
        input_image_set=job.input_image_set,
        parent=job.parent,
        experiment=job.experiment,
    )


# --- worker side -------------------------------------------------------------------------


def job_claim(*, job_id: int, worker_host: str) -> Job | None:
    """Mark the job running on this worker, or return None when it must not run.

    A task may be delivered more than once (``acks_late``, redelivery after a lost
    worker, a resume): finished jobs and jobs another worker is still beating for
    are left alone.
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().filter(pk=job_id).first()
        if job is None:
            log.warning("job %s does not exist; message dropped", job_id)
            return None
        if job.is_finished:
            return None
        if job.status == Job.Status.RUNNING and not job.is_stale():
            log.info("job %s is running on %s; duplicate delivery dropped", job_id, job.worker_host)
            return None
        now = timezone.now()
        job.status = Job.Status.RUNNING
        job.attempts += 1
        job.worker_host = worker_host
        job.started_at = job.started_at or now
        job.heartbeat_at = now
        job.error = ""
        job.traceback = ""
        job.save()
    return job


def job_heartbeat(*, job_id: int) -> bool:
    """Record that the worker is alive; returns whether cancellation was requested."""
    Job.objects.filter(pk=job_id, status=Job.Status.RUNNING).update(heartbeat_at=timezone.now())
    return Job.objects.filter(pk=job_id, cancel_requested=True).exists()


def job_progress_record(
    *,
    job_id: int,
    progress: dict[str, Any],
    history_point: dict[str, Any] | None = None,
    device: str = "",
) -> bool:
    """Store the latest progress (and a loss-curve point); returns whether to cancel."""
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.progress = progress
        if history_point is not None:
            job.history.append(history_point)
            if len(job.history) > HISTORY_LIMIT:
                job.history = job.history[::2]
        if device:
            job.device = device
        job.heartbeat_at = timezone.now()
        job.save(update_fields=["progress", "history", "device", "heartbeat_at"])
        return job.cancel_requested


def job_checkpoint_record(*, job_id: int, name: str, sha256: str) -> str:
    """Point the job at a checkpoint stored under ``name``; returns the name it replaced.

    A training worker records every checkpoint it uploads, so that a worker on another
    machine can resume the job from storage (and the admin can download it).
    """
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        previous = job.checkpoint
        job.checkpoint, job.checkpoint_sha256 = name, sha256
        job.save(update_fields=["checkpoint", "checkpoint_sha256"])
    return previous


def job_log(*, job_id: int, line: str) -> None:
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.log_tail = (job.log_tail + line.rstrip() + "\n")[-LOG_TAIL_CHARS:]
        job.save(update_fields=["log_tail"])


def job_finish(
    *,
    job_id: int,
    status: str,
    result: dict[str, Any] | None = None,
    error: str = "",
    traceback: str = "",
    **outputs: Any,
) -> Job:
    """Close a job as succeeded, failed or cancelled, with its outputs."""
    if status not in Job.FINISHED:
        raise ValueError(f"job_finish needs a final status, got {status!r}")
    with transaction.atomic():
        job = Job.objects.select_for_update().get(pk=job_id)
        job.status = status
        job.finished_at = timezone.now()
        job.error = error
        job.traceback = traceback
        if result is not None:
            job.result = result
        for name, value in outputs.items():
            setattr(job, name, value)
        job.save()
        if status == Job.Status.SUCCEEDED:
            _experiment_advance(job=job)
    return job


def jobs_reap_stale(*, now=None) -> list[Job]:
    """Find running jobs whose worker vanished; resume them or, after too many tries, fail them.

    Called when a worker starts, from the admin job list, and by ``manage.py reap_jobs``.
    """
    reaped = []
    for job in Job.objects.filter(status=Job.Status.RUNNING):
        if not job.is_stale(now=now):
            continue
        with transaction.atomic():
            job = Job.objects.select_for_update().get(pk=job.pk)
            if not job.is_stale(now=now):
                continue
            silent = int(
                ((now or timezone.now()) - (job.heartbeat_at or job.created_at)).total_seconds()
            )
            note = f"worker {job.worker_host or '?'} sent no heartbeat for {silent} s"
            if job.cancel_requested:
                job.status, job.finished_at = Job.Status.CANCELLED, timezone.now()
                job.error = f"{note}; it had been asked to cancel"
            elif job.attempts >= settings.JOB_MAX_ATTEMPTS:
                job.status, job.finished_at = Job.Status.FAILED, timezone.now()
                job.error = f"{note}; gave up after {job.attempts} attempts (JOB_MAX_ATTEMPTS)"
            else:
                job.status = Job.Status.QUEUED
                job.log_tail = (
                    job.log_tail + f"{note}; re-queued to resume from its last checkpoint\n"
                )[-LOG_TAIL_CHARS:]
                job_dispatch(job=job)
            job.save()
            reaped.append(job)
    return reaped


# --- experiments (sweeps) -------------------------------------------------------------------


def experiment_launch(
    *,
    name: str,
    input_image_set: ImageSet,
    grid: dict[str, list],
    train_config: dict[str, Any] | None = None,
    generate_config: dict[str, Any] | None = None,
    evaluate_config: dict[str, Any] | None = None,
    comparison: Comparison | None = None,
    description: str = "",
    user=None,
) -> Experiment:
    """Create an experiment and fan its grid out as train jobs on the ``gpu`` queue.

    Every combination of the grid's values (``Experiment.GRID_AXES``) with the shared
    ``train_config`` becomes one train job; when one succeeds, the job chain launches its
    generate job (``generate_config``, over ``input_image_set``) and then its evaluate job.
    Every grid point is validated before anything is created; one bad point refuses all.
    """
    broker_check()
    if Experiment.objects.filter(name=name).exists():
        raise ApplicationError(f"an experiment named {name!r} already exists; choose another name")
    grid = validate_grid(grid=grid, axes=Experiment.GRID_AXES)
    train_config = dict(train_config or {})
    both = sorted(set(grid) & set(train_config))
    if both:
        raise ApplicationError(
            f"{both} are grid axes and fixed train settings at once; give each in one place"
        )
    experiment = Experiment(
        name=name,
        comparison=comparison,
        description=description,
        input_image_set=input_image_set,
        grid=grid,
        train_config=train_config,
        generate_config=validate_fields(kind="generate", config=generate_config or {}),
        evaluate_config=validate_fields(kind="evaluate", config=evaluate_config or {}),
        created_by=user if user is not None and user.is_authenticated else None,
    )
    configs = [
        validate_job_config(
            kind="train",
            config={**train_config, **dict(zip(grid, values, strict=True))},
            input_image_set=input_image_set,
            parent=None,
        )
        for values in itertools.product(*grid.values())
    ]
    too_long = [n for n in map(experiment.model_name_for, configs) if len(n) > 100]
    if too_long:
        raise ApplicationError(
            f"model names such as {too_long[0]!r} exceed 100 characters; shorten the experiment name"
        )
    with transaction.atomic():
        experiment.save()
        for config in configs:
            job_launch(
                kind=Job.Kind.TRAIN,
                config=config,
                user=user,
                input_image_set=input_image_set,
                experiment=experiment,
            )
    return experiment


def experiment_cancel(*, experiment: Experiment) -> list[Job]:
    """Cancel an experiment: its queued and running jobs are cancelled and its chain stops."""
    with transaction.atomic():
        experiment = Experiment.objects.select_for_update().get(pk=experiment.pk)
        if experiment.is_cancelled:
            raise ApplicationError(f"experiment {experiment.name!r} is already cancelled")
        experiment.cancelled_at = timezone.now()
        experiment.save(update_fields=["cancelled_at"])
        active = experiment.jobs.filter(status__in=[Job.Status.QUEUED, Job.Status.RUNNING])
        return [job_cancel(job=job) for job in active.order_by("pk")]


#: The job the chain launches after a job of each kind succeeds.
_CHAIN_NEXT = {Job.Kind.TRAIN: Job.Kind.GENERATE, Job.Kind.GENERATE: Job.Kind.EVALUATE}


def _experiment_advance(*, job: Job) -> Job | None:
    """Launch the next job of an experiment's chain after ``job`` succeeded (once).

    Called inside :func:`job_finish`'s transaction, which holds the row lock of ``job``,
    so a finish delivered twice cannot launch two children.
    """
    next_kind = _CHAIN_NEXT.get(job.kind)
    if job.experiment_id is None or next_kind is None:
        return None
    experiment = job.experiment
    if experiment.is_cancelled or job.children.filter(kind=next_kind).exists():
        return None
    try:
        child = job_launch(
            kind=next_kind,
            config=(
                experiment.generate_config
                if next_kind == Job.Kind.GENERATE
                else experiment.evaluate_config
            ),
            user=job.created_by,
            input_image_set=experiment.input_image_set if next_kind == Job.Kind.GENERATE else None,
            parent=job,
            experiment=experiment,
        )
    except ApplicationError as exc:
        job.log_tail = (job.log_tail + f"experiment chain stopped: {exc.message}\n")[
            -LOG_TAIL_CHARS:
        ]
        job.save(update_fields=["log_tail"])
        return None
    job.log_tail = (job.log_tail + f"experiment chain: launched {child}\n")[-LOG_TAIL_CHARS:]
    job.save(update_fields=["log_tail"])
    return child
