"""Reads of jobs for the admin and the progress endpoint."""

from __future__ import annotations

from typing import Any

from ratingstudy.jobs.models import Job


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
