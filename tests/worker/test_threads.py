"""A worker gives torch its share of the cores: real workers report the threads their tasks see."""

from __future__ import annotations

import time

import pytest
import torch
from torch.utils.data import DataLoader, Dataset

from ratingstudy.lib.processes import start_celery_worker, stop_process
from worker.threads import torch_threads_for, worker_cores


@pytest.mark.parametrize(
    ("cores", "concurrency", "setting", "expected"),
    [(2, 1, 0, 2), (2, 2, 0, 1), (2, 3, 0, 1), (16, 3, 0, 5), (16, 1, 0, 16), (2, 2, 3, 3)],
)
def test_threads_are_the_cores_divided_by_the_pool_unless_set(
    cores, concurrency, setting, expected
):
    assert torch_threads_for(cores=cores, concurrency=concurrency, setting=setting) == expected


class _ThreadsSeen(Dataset):
    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> int:
        return torch.get_num_threads()


def test_data_loader_workers_run_one_thread_each():
    """Loader processes add no OpenMP pools of their own to a training job (torch sets 1)."""
    seen = [int(value) for value in DataLoader(_ThreadsSeen(), num_workers=1)]
    assert seen == [1, 1]


def _start_worker(env: dict, root, node: str, *, concurrency: int, torch_threads: int | None):
    """A worker on its own queue ``node``, with OMP_NUM_THREADS=7 inherited (to be replaced)."""
    machine = root / node
    machine.mkdir(parents=True, exist_ok=True)
    log_file = machine / "worker.log"
    process = start_celery_worker(
        env={**env, "VAR_DIR": str(machine / "var"), "OMP_NUM_THREADS": "7"},
        queues=node,
        hostname=f"{node}@%h",
        concurrency=concurrency,
        torch_threads=torch_threads,
        log_file=log_file,
    )
    return process, log_file


def _reply(task, node: str, log_file, process, timeout: float = 90) -> dict:
    """The task's result once the worker (still starting, perhaps) has run it."""
    result = task.apply_async(queue=node)
    deadline = time.monotonic() + timeout
    while not result.ready():
        if process.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"worker {node} did not answer; log:\n{log_file.read_text()[-3000:]}")
        time.sleep(0.2)
    return result.get(timeout=1)


def test_real_workers_give_each_pool_process_its_share_of_the_cores(
    redis_url, database_url, settings, tmp_path
):
    """Default: cores // concurrency; WORKER_TORCH_THREADS overrides it (with a warning when the
    pool then asks for more threads than cores). The inherited OMP_NUM_THREADS=7 is replaced."""
    from worker.celery import app
    from worker.tasks import cpu_threads

    cores = worker_cores()
    shared = torch_threads_for(cores=cores, concurrency=2)
    oversized = cores + 1
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
    }
    workers = {
        "threads-default": _start_worker(
            env, tmp_path, "threads-default", concurrency=2, torch_threads=None
        ),
        "threads-set": _start_worker(
            env, tmp_path, "threads-set", concurrency=1, torch_threads=oversized
        ),
    }
    try:
        default = _reply(
            cpu_threads,
            "threads-default",
            workers["threads-default"][1],
            workers["threads-default"][0],
        )
        chosen = _reply(
            cpu_threads, "threads-set", workers["threads-set"][1], workers["threads-set"][0]
        )
        assert default["torch_threads"] == shared
        assert set(default["environment"].values()) == {str(shared)}
        assert chosen["torch_threads"] == oversized
        assert set(chosen["environment"].values()) == {str(oversized)}

        log_default = workers["threads-default"][1].read_text()
        assert (
            f"torch CPU threads per pool process: {shared} ({cores} cores // concurrency 2)"
            in log_default
        )
        log_set = workers["threads-set"][1].read_text()
        assert f"torch CPU threads per pool process: {oversized} (WORKER_TORCH_THREADS)" in log_set
        assert (
            f"1 pool processes x {oversized} threads = {oversized} threads on {cores} cores"
            in log_set
        )

        replies = app.control.broadcast("lab_status", reply=True, timeout=2.0)
        status = {name.split("@")[0]: body for reply in replies for name, body in reply.items()}
        assert (
            status["threads-default"]["torch_threads"],
            status["threads-default"]["concurrency"],
        ) == (shared, 2)
        assert status["threads-set"]["torch_threads"] == oversized
        assert status["threads-set"]["cores"] == cores
    finally:
        for process, _log in workers.values():
            stop_process(process)


@pytest.mark.django_db
def test_a_job_applies_the_workers_threads_and_logs_them(monkeypatch):
    from ratingstudy.jobs.models import Job
    from worker import threads
    from worker.runner import run_job

    monkeypatch.setattr(threads, "_chosen", 1)
    previous = torch.get_num_threads()
    job = Job.objects.create(kind="generate", config={})  # no parent: fails after the claim
    try:
        run_job(job.pk, worker_host="w1@test")
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(previous)
    job.refresh_from_db()
    assert "attempt 1 on w1@test: 1 torch CPU thread(s)" in job.log_tail
