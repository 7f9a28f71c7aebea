"""Reads of jobs for the admin and the progress endpoint: job progress, the live
workers (Celery remote control), and experiments compared on metrics, cost and
human scores."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.core.cache import cache
from django.utils import timezone

from ratingstudy.jobs.models import Experiment, Job


def job_progress_payload(*, job: Job) -> dict[str, Any]:
    """What the auto-refreshing admin page shows: status, progress, loss curve, log tail."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "cancel_requested": job.cancel_requested,
        "attempts": job.attempts,
        "progress": job.progress,
        "history": job.history,
        "log_tail": job.log_tail[-4000:],
        "error": job.error,
        "device": job.device,
        "worker_host": job.worker_host,
        "heartbeat_at": job.heartbeat_at.isoformat() if job.heartbeat_at else None,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "checkpoint_sha256": job.checkpoint_sha256,
        "output_image_set": job.output_image_set.name if job.output_image_set else None,
        "result": job.result,
    }


# --- live workers (the admin's worker monitor) ---------------------------------------------

#: Broadcast replies are cached this long per web process: the monitor and the job list
#: may be reloaded often, and each broadcast waits the whole timeout for replies.
WORKERS_CACHE_SECONDS = 5
WORKERS_CACHE_KEY = "jobs:workers-live"
INSPECT_TIMEOUT_SECONDS = 1.0
#: How to start a worker for each queue (README "Jobs on GPUs").
WORKER_COMMANDS = {
    "gpu": "CUDA_VISIBLE_DEVICES=0 .venv/bin/celery -A worker.celery worker -Q gpu "
    "--concurrency 1 -n gpu0@%h",
    "cpu": ".venv/bin/celery -A worker.celery worker -Q cpu --concurrency 2 -n cpu@%h",
}


@dataclass(frozen=True)
class LiveWorker:
    """One worker that answered the broadcast: its queues, running jobs and device."""

    name: str
    queues: list[str]
    jobs: list[Job]
    device: dict[str, Any]
    pid: int | None = None
    concurrency: int | None = None
    torch_threads: int | None = None
    cores: int | None = None
    uptime_s: int | None = None

    @property
    def device_label(self) -> str:
        device = self.device
        if device.get("kind") != "cuda":
            return f"CPU ({device.get('name') or 'unknown'})"
        gib = 1024**3
        return (
            f"{device['name']} (GPU {device['index']}): "
            f"{device['memory_used_bytes'] / gib:.1f} of {device['memory_total_bytes'] / gib:.1f} GiB "
            f"in use, {device['utilization_percent']}% busy"
        )


@dataclass(frozen=True)
class WorkersSnapshot:
    checked_at: datetime
    workers: list[LiveWorker] = field(default_factory=list)
    error: str = ""

    @property
    def queues_served(self) -> set[str]:
        return {queue for worker in self.workers for queue in worker.queues}


def _broadcast_status(timeout: float) -> dict[str, Any]:
    """Every worker's ``lab_status`` reply (see worker/monitor.py), or why there is none."""
    from kombu.utils.url import maybe_sanitize_url

    from ratingstudy.lib.processes import redis_answers
    from worker.celery import BrokerNotConfigured, app  # light: imports no torch

    checked_at = timezone.now()
    try:
        url = app.broker_required()
    except BrokerNotConfigured as exc:
        return {"checked_at": checked_at, "replies": [], "error": str(exc)}
    # A dead broker would hold the page for several connection retries; one PING says it.
    if url.startswith(("redis://", "rediss://")) and not redis_answers(url, timeout=timeout):
        return {
            "checked_at": checked_at,
            "replies": [],
            "error": f"the job broker at {maybe_sanitize_url(url)} does not answer: start Redis "
            "or correct REDIS_URL; queued jobs wait until it is back",
        }
    try:
        replies = app.control.broadcast("lab_status", reply=True, timeout=timeout) or []
    except Exception as exc:  # kombu raises OperationalError and socket errors
        return {
            "checked_at": checked_at,
            "replies": [],
            "error": f"could not ask the workers through {maybe_sanitize_url(url)}: {exc}",
        }
    return {"checked_at": checked_at, "replies": replies, "error": ""}


def workers_live(*, timeout: float = INSPECT_TIMEOUT_SECONDS) -> WorkersSnapshot:
    """The workers alive now (cached for :data:`WORKERS_CACHE_SECONDS`), with their jobs."""
    from worker.celery import app

    key = f"{WORKERS_CACHE_KEY}:{app.conf.broker_url or '-'}"
    status = cache.get(key)
    if status is None:
        status = _broadcast_status(timeout)
        cache.set(key, status, WORKERS_CACHE_SECONDS)
    entries = sorted(
        (name, reply) for answer in status["replies"] for name, reply in answer.items()
    )
    job_ids = {
        request["args"][0]
        for _, reply in entries
        for request in reply.get("active", [])
        if request.get("task", "").startswith("worker.tasks.run_") and request.get("args")
    }
    jobs = Job.objects.in_bulk(job_ids)
    workers = [
        LiveWorker(
            name=name,
            queues=list(reply.get("queues", [])),
            jobs=[
                jobs[request["args"][0]]
                for request in reply.get("active", [])
                if request.get("args") and request["args"][0] in jobs
            ],
            device=reply.get("device") or {"kind": "unknown", "name": "did not say"},
            pid=reply.get("pid"),
            concurrency=reply.get("concurrency"),
            torch_threads=reply.get("torch_threads"),
            cores=reply.get("cores"),
            uptime_s=reply.get("uptime_s"),
        )
        for name, reply in entries
    ]
    return WorkersSnapshot(checked_at=status["checked_at"], workers=workers, error=status["error"])


def queue_unserved_message(*, queue: str, waiting: int) -> str:
    """What to do when no live worker consumes ``queue`` (and ``waiting`` jobs wait on it)."""
    waits = f": {waiting} queued job(s) wait for one" if waiting else ""
    return (
        f"No live worker consumes the {queue} queue{waits}. Start one on a machine that "
        f"reaches this database, Redis and storage: {WORKER_COMMANDS[queue]}"
    )


def queue_warnings(*, snapshot: WorkersSnapshot) -> list[str]:
    """Why queued jobs may not start: no broker, or no live worker on their queue."""
    if snapshot.error:
        return [snapshot.error]
    queued = Counter(
        Job(kind=kind).queue
        for kind in Job.objects.filter(status=Job.Status.QUEUED).values_list("kind", flat=True)
    )
    return [
        queue_unserved_message(queue=queue, waiting=queued[queue])
        for queue in Job.QUEUES
        if queue not in snapshot.queues_served
    ]


# --- experiments ---------------------------------------------------------------------------


def _latest_child(children: dict[int, list[Job]], job: Job | None, kind: str) -> Job | None:
    """The job's newest child of ``kind``, preferring one that succeeded."""
    if job is None:
        return None
    mine = [child for child in children.get(job.pk, []) if child.kind == kind]
    succeeded = [child for child in mine if child.status == Job.Status.SUCCEEDED]
    return max(succeeded or mine, key=lambda child: child.pk, default=None)


def _cost(train: Job, report) -> dict[str, Any]:
    """What a model cost to train: from its evaluation report, else from the train job."""
    if report is not None and report.cost:
        return report.cost
    trained = train.result or {}
    return {
        "parameters": sum(trained.get("parameter_counts", {}).values()) or None,
        "train_seconds": trained.get("train_seconds"),
        "images_per_s": trained.get("images_per_s"),
        "peak_gpu_mem_bytes": trained.get("peak_gpu_mem_bytes"),
        "device": trained.get("device", train.device),
    }


def _report_metrics(report) -> dict[str, float]:
    """Headline metrics of a stored report: its ``aggregates`` when it has them; a ganlab
    evaluation report keeps them on the model's entry instead (per-image values left out)."""
    from ratingstudy.results.reports import flatten_numbers, model_section, report_aggregates

    metrics = report_aggregates(report.report, report.model_name)
    if metrics:
        return metrics
    section = model_section(report.report, report.model_name)
    figures = {key: value for key, value in section.items() if key != "per_image"}
    return {
        name: value
        for name, value in flatten_numbers(figures)
        if ".per_image" not in f".{name}"
    }


def experiment_comparison(*, experiment: Experiment) -> dict[str, Any]:
    """One row per model of the experiment's grid: its jobs, automatic metrics, cost and,
    for every study that rated its generated images, the human scores (from
    :func:`ratingstudy.results.selectors.study_results`)."""
    from ratingstudy.results.reports import metric_sort_key
    from ratingstudy.results.selectors import study_results
    from ratingstudy.studies.models import Study

    jobs = list(
        experiment.jobs.select_related("output_image_set", "metric_report").order_by("pk")
    )
    children: dict[int, list[Job]] = {}
    for job in jobs:
        if job.parent_id is not None:
            children.setdefault(job.parent_id, []).append(job)
    rows = []
    for train in (job for job in jobs if job.kind == Job.Kind.TRAIN):
        generate = _latest_child(children, train, Job.Kind.GENERATE)
        evaluate = _latest_child(children, generate, Job.Kind.EVALUATE)
        image_set = generate.output_image_set if generate else None
        report = evaluate.metric_report if evaluate else None
        rows.append(
            {
                "model": image_set.model_name
                if image_set
                else experiment.model_name_for(train.config),
                "point": experiment.point_of(train.config),
                "train": train,
                "generate": generate,
                "evaluate": evaluate,
                "image_set": image_set,
                "metrics": _report_metrics(report) if report else {},
                "cost": _cost(train, report),
                "human": [],
            }
        )
    set_ids = [row["image_set"].pk for row in rows if row["image_set"]]
    studies = list(
        Study.objects.filter(generated_image_sets__in=set_ids).distinct().order_by("pk")
    )
    by_model = {row["model"]: row for row in rows}
    for study in studies:
        for result in study_results(study=study)["models"]:
            row = by_model.get(result["name"])
            if row is None:
                continue
            row["human"].append(
                {
                    "study": study,
                    "mos": result["mos"],
                    "judged_real": result["judged_real"],
                    "n_responses": result["n_responses"],
                    "n_raters": result["n_raters"],
                }
            )
    metric_columns = sorted({m for row in rows for m in row["metrics"]}, key=metric_sort_key)
    for row in rows:
        row["metric_values"] = [row["metrics"].get(name) for name in metric_columns]
    statuses = Counter(job.status for job in jobs)
    return {
        "experiment": experiment,
        "axes": [axis for axis in Experiment.GRID_AXES if axis in experiment.grid],
        "rows": rows,
        "metric_columns": metric_columns,
        "studies": studies,
        "job_counts": dict(sorted(statuses.items())),
    }
