"""Thin Celery tasks: ids in, results written through ratingstudy services.

Heavy imports (torch, ganlab) happen inside ``worker.runner`` when a job runs, so
a worker starts fast and the web process, which only sends tasks by name, never
loads them. Both job tasks are ``acks_late`` with ``reject_on_worker_lost`` (set in
settings): a job whose worker dies is redelivered, and ``job_claim`` makes the
redelivery idempotent.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from celery.signals import worker_ready

from worker.celery import app


@app.task(name="worker.tasks.ping")
def ping(token: str) -> dict:
    """Round-trip check: proves the broker, a worker process and its database."""
    started = time.time()
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        (one,) = cursor.fetchone()
    return {
        "token": token,
        "hostname": socket.gethostname(),
        "pid": os.getpid(),
        "database": connection.vendor,
        "database_ok": one == 1,
        "torch_loaded": "torch" in sys.modules,
        "started": started,
    }


@app.task(name="worker.tasks.cpu_threads")
def cpu_threads() -> dict:
    """The CPU threads a job gets in this pool process: torch's intra-op threads once the
    worker's choice is applied (as :func:`worker.runner.run_job` does) and the OpenMP/MKL
    environment its child processes inherit. Loads torch."""
    from worker.threads import THREAD_ENV, torch_threads_apply

    return {
        "pid": os.getpid(),
        "torch_threads": torch_threads_apply(),
        "environment": {name: os.environ.get(name) for name in THREAD_ENV},
    }


@app.task(name="worker.tasks.run_gpu_job", bind=True)
def run_gpu_job(self, job_id: int) -> str:
    """Training, generation, classification: on the ``gpu`` queue (one task per GPU)."""
    from worker.runner import run_job

    return run_job(job_id, worker_host=self.request.hostname or socket.gethostname())


@app.task(name="worker.tasks.run_cpu_job", bind=True)
def run_cpu_job(self, job_id: int) -> str:
    """Evaluation: on the ``cpu`` queue."""
    from worker.runner import run_job

    return run_job(job_id, worker_host=self.request.hostname or socket.gethostname())


@worker_ready.connect
def _reap_lost_jobs(**_kwargs) -> None:
    """A worker that starts looks for jobs whose worker vanished and re-queues them."""
    from ratingstudy.jobs.services import jobs_reap_stale

    jobs_reap_stale()
