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
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

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


#: Before a row, a 1-minute load average above this share of the cores means the machine is
#: busy, unless the CPUs are nearly idle right now (below ``IDLE_NOW``): the load average
#: decays over a minute, so it still counts the previous row's (or the baseline's) own work.
BUSY_LOAD_PER_CORE = 0.5
IDLE_NOW = 0.25


def cpu_busy_now(seconds: float = 0.5) -> float | None:
    """Share of all CPUs busy over the next ``seconds`` (from ``/proc/stat``; None elsewhere).

    Measured while the benchmark itself waits, so it is what other processes use now,
    unlike the load average, which still carries a minute of the previous row's work.
    """

    def totals() -> tuple[int, int]:
        fields = [
            int(value) for value in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
        ]
        idle = fields[3] + fields[4]  # idle + iowait
        return sum(fields[:8]) - idle, sum(fields[:8])

    try:
        busy_before, total_before = totals()
        time.sleep(seconds)
        busy_after, total_after = totals()
    except (OSError, ValueError, IndexError):
        return None
    return (busy_after - busy_before) / max(1, total_after - total_before)


def load_before(row: str) -> dict[str, Any]:
    """Print the load average before benchmark ``row``, warn when the machine is busy, and return
    the figures for the JSON: ``load_1m/5m/15m``, ``cores``, ``cpu_busy_now`` (share, see
    :func:`cpu_busy_now`) and ``busy`` (load average above ``BUSY_LOAD_PER_CORE`` x cores
    while the CPUs are in use now)."""
    one, five, fifteen = os.getloadavg()
    cores = os.cpu_count() or 1
    now = cpu_busy_now()
    busy = one > BUSY_LOAD_PER_CORE * cores and (now is None or now >= IDLE_NOW)
    now_text = "" if now is None else f", CPU {now:.0%} busy in the last 0.5 s"
    print(
        f"load average before {row}: {one:.2f} {five:.2f} {fifteen:.2f} on {cores} cores{now_text}",
        flush=True,
    )
    if busy:
        print(
            f"WARNING: the machine is busy before {row} (load {one:.2f} > {BUSY_LOAD_PER_CORE:g} x {cores} "
            f"cores{now_text}): its figures may be low. Run benchmarks alone (other agents: under "
            "flock /tmp/ganlab-cpu.lock).",
            flush=True,
        )
    return {
        "load_1m": one,
        "load_5m": five,
        "load_15m": fifteen,
        "cores": cores,
        "cpu_busy_now": now,
        "busy": busy,
    }


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


def rows_chosen(parser, available: list, keys: str | None, *, device: str) -> list:
    """The rows named in ``--rows`` (comma-separated keys), always after the first (baseline) row."""
    if not keys:
        return available
    wanted = keys.split(",")
    unknown = sorted(set(wanted) - {row.key for row in available})
    if unknown:
        parser.error(f"unknown --rows {unknown}; on {device}: {[row.key for row in available]}")
    return [available[0], *(row for row in available[1:] if row.key in wanted)]
