"""Shared set-up for benchmarks that need the web stack: a private VAR_DIR with a
migrated SQLite database (or DATABASE_URL), Redis (REDIS_URL or embedded) and
optionally a real Celery worker, all torn down afterwards."""

from __future__ import annotations

import contextlib
import os
import platform
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def machine() -> str:
    """A short description of where the figures were measured."""
    cpu = platform.processor() or platform.machine()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    gpu = ""
    with contextlib.suppress(Exception):
        import torch

        if torch.cuda.is_available():
            gpu = f", GPU {torch.cuda.get_device_name(0)}"
    return f"{os.cpu_count()} x {cpu}{gpu}"


@contextlib.contextmanager
def django_stack(*, worker: bool = False) -> Iterator[dict[str, str]]:
    """Configure Django on a throw-away database; start Redis and (optionally) a worker."""
    from ratingstudy.lib.processes import start_celery_worker, start_embedded_redis, stop_process

    with tempfile.TemporaryDirectory(prefix="ganlab-bench-") as tmp:
        var = Path(tmp)
        env = {"VAR_DIR": str(var), "MEDIA_ROOT": str(var / "media"), "JOBS_DIR": str(var / "jobs")}
        if "DATABASE_URL" not in os.environ:
            env["DATABASE_URL"] = f"sqlite:///{var / 'bench.sqlite3'}"
        redis = None
        if not os.environ.get("REDIS_URL"):
            redis = start_embedded_redis(var / "redis")
            env["REDIS_URL"] = redis.url
        os.environ.update(env)
        os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")
        import django

        django.setup()
        from django.core.management import call_command

        call_command("migrate", verbosity=0)
        proc = None
        try:
            if worker:
                proc = start_celery_worker(env=env, log_file=var / "worker.log")
                _wait_for_worker()
            yield env
        finally:
            if proc is not None:
                stop_process(proc)
            if redis is not None:
                redis.stop()


def _wait_for_worker(timeout: float = 60) -> None:
    import time

    from worker.celery import app

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if app.control.ping(timeout=0.5):
            return
    raise RuntimeError("celery worker did not start")


def run_quiet(args: list[str]) -> subprocess.CompletedProcess:
    return subprocess.run(args, cwd=ROOT, capture_output=True, text=True, check=True)
