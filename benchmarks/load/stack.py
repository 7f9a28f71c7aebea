"""The lab's web stack on this machine, for the load, round-trip and fault scripts.

* a throw-away database: a fresh PostgreSQL database created on the server of
  ``DATABASE_URL`` (or 127.0.0.1:5432) and dropped afterwards, or SQLite in a
  temporary folder (``benchmarks/_env.django_stack`` makes it);
* Redis (``REDIS_URL`` or embedded) and a private ``VAR_DIR``, from ``django_stack``;
* gunicorn serving ``ratingstudy.wsgi`` with ``DEBUG=0`` and collected static files;
* a rating study seeded through the studies services, and the check afterwards
  that every answer the raters sent is stored exactly once.

Rater traffic comes from ``load/raters.py`` (locust), run as a subprocess so that
gevent's monkey-patching never reaches this process or the database checks.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BENCHMARKS = Path(__file__).resolve().parents[1]
ROOT = BENCHMARKS.parent
RATERS_CLIENT = Path(__file__).resolve().parent / "raters.py"
LOCAL_POSTGRES = "postgres://postgres@127.0.0.1:5432/postgres"


# --- database -------------------------------------------------------------------------------


def postgres_server_url() -> str:
    """Where throw-away databases are created: DATABASE_URL's server when it is PostgreSQL
    (CI points it at the machine's server), else the local default."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return url.split("?", 1)[0].rsplit("/", 1)[0] + "/postgres"
    return LOCAL_POSTGRES


def postgres_answers(server_url: str) -> bool:
    import psycopg

    try:
        with psycopg.connect(server_url, connect_timeout=3):
            return True
    except psycopg.Error:
        return False


def database_choice(requested: str) -> str:
    """``postgres`` or ``sqlite`` for ``auto`` | ``postgres`` | ``sqlite``; postgres must answer."""
    if requested == "sqlite":
        return "sqlite"
    if postgres_answers(postgres_server_url()):
        return "postgres"
    if requested == "postgres":
        raise SystemExit(f"PostgreSQL at {postgres_server_url()} does not answer; use --database sqlite")
    print(f"note: PostgreSQL at {postgres_server_url()} does not answer; using SQLite", flush=True)
    return "sqlite"


@contextlib.contextmanager
def throwaway_database(kind: str) -> Iterator[str]:
    """Yield a DATABASE_URL for a new, empty database (dropped afterwards), or "" for SQLite."""
    if kind == "sqlite":
        yield ""
        return
    import psycopg
    from psycopg import sql

    server = postgres_server_url()
    name = f"ganlab_bench_{os.getpid()}_{secrets.token_hex(3)}"
    with psycopg.connect(server, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    try:
        yield server.rsplit("/", 1)[0] + "/" + name
    finally:
        with contextlib.suppress(Exception):
            from django.db import connections

            connections.close_all()
        with psycopg.connect(server, autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


@dataclass
class Lab:
    """A configured Django on a throw-away database, with Redis and a private VAR_DIR."""

    env: dict[str, str]
    database: str  # "postgres" or "sqlite"

    @property
    def var_dir(self) -> Path:
        return Path(self.env["VAR_DIR"])


@contextlib.contextmanager
def lab_stack(*, database: str = "auto", extra_env: dict[str, str] | None = None) -> Iterator[Lab]:
    """Django on a throw-away database (see :func:`throwaway_database`), migrated, with
    static files collected and ``DEBUG=0`` for every process started from here."""
    sys.path.insert(0, str(BENCHMARKS))
    from _env import django_stack

    kind = database_choice(database)
    with throwaway_database(kind) as url:
        if url:
            os.environ["DATABASE_URL"] = url
        else:
            os.environ.pop("DATABASE_URL", None)
        os.environ["DEBUG"] = "0"
        os.environ["LOG_LEVEL"] = "WARNING"
        os.environ.update(extra_env or {})
        with django_stack() as env:
            from django.core.management import call_command

            call_command("collectstatic", interactive=False, verbosity=0)
            env = {**env, "DATABASE_URL": os.environ["DATABASE_URL"], "DEBUG": "0"}
            yield Lab(env=env, database=kind)


# --- web server -----------------------------------------------------------------------------


@dataclass
class WebServer:
    """gunicorn serving the lab on 127.0.0.1, in its own process group (so kill -9 takes
    the master and every worker at once).

    ``gthread`` by default: keep-alive connections from many raters are parked in the
    poller instead of holding a worker (sync workers suit only a buffering proxy in
    front), and threads overlap the time a request waits for PostgreSQL.
    """

    log_dir: Path
    workers: int = 2 * (os.cpu_count() or 1) + 1
    threads: int = 4
    worker_class: str = "gthread"
    port: int = 0
    process: subprocess.Popen | None = None
    starts: int = 0
    #: "nginx": a private nginx in front (the documented deployment): it sends the rater images
    #: itself (X-Accel-Redirect) and the static files; "none": clients talk to gunicorn.
    front: str = "none"
    nginx: object | None = None

    @property
    def url(self) -> str:
        return self.nginx.url if self.nginx is not None else f"http://127.0.0.1:{self.port}"

    @property
    def description(self) -> str:
        threads = f" x {self.threads} threads" if self.worker_class == "gthread" else ""
        front = "nginx (1 worker, images by X-Accel-Redirect) -> " if self.front == "nginx" else ""
        return f"{front}gunicorn {self.worker_class}, {self.workers} workers{threads}"

    def start(self, *, timeout: float = 90.0, warm: bool = True) -> None:
        from ratingstudy.lib.processes import free_port, stop_process

        self.port = self.port or free_port()
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = open(self.log_dir / "gunicorn.log", "ab")  # noqa: SIM115 (the child keeps it)
        command = [
            sys.executable, "-m", "gunicorn", "ratingstudy.wsgi:application",
            "--bind", f"127.0.0.1:{self.port}",
            "--workers", str(self.workers),
            "--worker-class", self.worker_class,
            "--threads", str(self.threads),
            "--backlog", "2048",
            "--timeout", "60",
            "--graceful-timeout", "10",
            "--keep-alive", "5",
            "--log-level", "warning",
            "--preload",  # import Django once in the master: every worker forks ready to serve
        ]  # fmt: skip
        env = os.environ.copy()
        if self.front == "nginx":
            from ratingstudy.lib.nginx import ACCEL_PREFIX

            env["RATER_IMAGE_ACCEL_PREFIX"] = ACCEL_PREFIX
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.starts += 1
        deadline = time.monotonic() + timeout
        while not self._answers():
            if self.process.poll() is not None:
                raise RuntimeError(f"gunicorn exited with {self.process.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                stop_process(self.process)
                raise RuntimeError(f"gunicorn did not answer within {timeout:.0f} s:\n{self.log_tail()}")
            time.sleep(0.1)
        if self.front == "nginx" and self.nginx is None:
            from django.conf import settings

            from ratingstudy.lib.nginx import Nginx

            self.nginx = Nginx(
                run_dir=self.log_dir / "nginx", port=free_port(), upstream=f"127.0.0.1:{self.port}",
                media_root=Path(settings.MEDIA_ROOT), static_root=Path(settings.STATIC_ROOT),
            ).start()  # fmt: skip
        if warm:
            self.warm_up()

    def _answers(self, path: str = "/health") -> bool:
        try:
            with urllib.request.urlopen(self.url + path, timeout=10) as response:
                return response.status == 200
        except urllib.error.HTTPError:
            return True  # it answered (a 404 for the warm-up's unknown invitation)
        except (urllib.error.URLError, OSError):
            return False

    def warm_up(self) -> None:
        """Let every worker thread import the rater views once (an unknown invitation: 404),
        so the first raters do not pay for imports. Connections are spread over workers by
        the kernel, so a few rounds of concurrent requests reach them all in practice."""
        from concurrent.futures import ThreadPoolExecutor

        slots = self.workers * (self.threads if self.worker_class == "gthread" else 1)
        with ThreadPoolExecutor(max_workers=slots) as pool:
            list(pool.map(lambda _: self._answers("/r/warm-up/"), range(4 * slots)))

    def kill(self) -> None:
        """kill -9 the master and all its workers."""
        from ratingstudy.lib.processes import kill_process

        kill_process(self.process)

    def stop(self) -> None:
        from ratingstudy.lib.processes import stop_process

        if self.process is not None:
            stop_process(self.process)
        if self.nginx is not None:
            self.nginx.stop()
            self.nginx = None

    def cpu_seconds(self) -> float:
        """CPU time (user + system) used so far by the master and its live workers (and nginx's, in front)."""
        import psutil

        processes = []
        roots = [self.process] + ([self.nginx.process] if self.nginx is not None else [])
        for root in roots:
            try:
                master = psutil.Process(root.pid)
                processes += [master, *master.children(recursive=True)]
            except psutil.NoSuchProcess:
                continue
        total = 0.0
        for process in processes:
            with contextlib.suppress(psutil.NoSuchProcess):
                times = process.cpu_times()
                total += times.user + times.system
        return total

    def log_tail(self, chars: int = 3000) -> str:
        path = self.log_dir / "gunicorn.log"
        return path.read_text(errors="replace")[-chars:] if path.exists() else ""


# --- study ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyPlan:
    """The design the benchmark raters go through (a session has
    ``practice + images_per_rater + corrupted + repeats`` trials)."""

    images_per_rater: int = 20
    practice: int = 4
    corrupted: int = 1
    repeats: int = 2
    canvas: int = 384  # square canvas the demo tiles are fitted to

    @property
    def trials(self) -> int:
        return self.practice + self.images_per_rater + self.corrupted + self.repeats


def study_seed(*, name: str, raters: int, plan: StudyPlan) -> tuple[int, list[str]]:
    """Create an open study over the demo images and ``raters`` invitations, through the
    studies services; returns the study id and the invitation tokens."""
    from django.core.management import call_command

    from ratingstudy.catalog.models import ImageSet
    from ratingstudy.studies.models import Study
    from ratingstudy.studies.services import raters_create, study_create

    call_command("seed_demo", verbosity=0)  # real: the demo tiles
    _benchmark_generated_set()  # "generated": demo tiles of another seed (the load is the point, not a GAN)
    study = Study.objects.filter(name=name).first() or study_create(
        name=name,
        instructions="Load benchmark: say whether each image is real or generated, and rate its quality.",
        real_image_sets=list(ImageSet.objects.filter(kind=ImageSet.Kind.REAL)),
        generated_image_sets=list(ImageSet.objects.filter(kind=ImageSet.Kind.GENERATED)),
        task=Study.Task.BOTH,
        images_per_rater=plan.images_per_rater,
        practice_trials=plan.practice,
        corrupted_checks=plan.corrupted,
        repeat_checks=plan.repeats,
        canvas_width=plan.canvas,
        canvas_height=plan.canvas,
        is_open=True,
    )
    return study.pk, [rater.token for rater in raters_create(study=study, count=raters, note="benchmark")]


BENCHMARK_GENERATED = "benchmark-generated"


def _benchmark_generated_set():
    """Demo tiles drawn with another seed, standing in for generated images in the load benchmarks."""
    import tempfile
    from pathlib import Path

    from ganlab.data.demo import LABELS, demo_tile
    from ganlab.data.imageio import encode_png
    from ratingstudy.catalog.models import Image, ImageSet
    from ratingstudy.catalog.services import ImageEntry, image_set_import

    existing = ImageSet.objects.filter(name=BENCHMARK_GENERATED).first()
    if existing:
        return existing
    size = Image.objects.filter(image_set__name="demo-tiles").values_list("width", flat=True).first() or 128
    with tempfile.TemporaryDirectory() as tmp:
        entries = []
        for label in LABELS:
            for index in range(16):
                path = Path(tmp) / f"{label}_{index:04d}.png"
                path.write_bytes(encode_png(demo_tile(label, index, size, seed=1)))
                entries.append(ImageEntry(path=path, source_path=path.name, label=label, domain=label))
        return image_set_import(
            name=BENCHMARK_GENERATED, kind=ImageSet.Kind.GENERATED, source=ImageSet.Source.DEMO,
            model_name="benchmark-placeholder", entries=entries,
            description="Load-benchmark stand-in for generated images: demo tiles drawn with seed 1, not GAN output.",
        )  # fmt: skip


def sessions_prestart(*, tokens: list[str]) -> None:
    """Fill the profile and draw the session of each rater (as their first visit would)."""
    from ratingstudy.studies.models import Rater, token_digest
    from ratingstudy.studies.services import rater_profile_update, session_start

    for rater in Rater.objects.select_related("study").filter(token_hash__in=[token_digest(t) for t in tokens]):
        rater_profile_update(rater=rater, role="pathologist", years_experience=10, specialty="", consented=True)
        session_start(rater=rater, user_agent="benchmark")


def responses_stored(*, study_id: int) -> int:
    from ratingstudy.studies.models import Response

    return Response.objects.filter(trial__session__study_id=study_id).count()


# --- the raters (locust, in a subprocess) ------------------------------------------------------


@dataclass
class ClientRun:
    """Arguments of one ``raters.py`` run (see its docstring for the modes)."""

    host: str
    mode: str  # "session" | "answer" | "health"
    users: int
    tokens: list[str] = field(default_factory=list)
    spawn_rate: float = 0.0  # users per second; 0 = all at once
    think_min: float = 0.0
    think_max: float = 0.0
    duration: float = 0.0  # answer/health modes: seconds of traffic
    time_limit: float = 600.0  # hard stop of the whole client
    fetch_images: bool = True
    one_request: bool = True  # answers as the page's script sends them (False: plain form post + redirect)
    step_timeout: float = 60.0  # how long a rater keeps retrying one step
    seed: int = 0


def client_start(run: ClientRun, work_dir: Path, tag: str) -> tuple[subprocess.Popen, Path]:
    """Start ``raters.py`` for ``run``; returns the process and where it will write its results."""
    work_dir.mkdir(parents=True, exist_ok=True)
    config, results = work_dir / f"{tag}-config.json", work_dir / f"{tag}-results.json"
    config.write_text(json.dumps(run.__dict__))
    results.unlink(missing_ok=True)
    log = open(work_dir / f"{tag}-client.log", "wb")  # noqa: SIM115 (the child keeps it)
    process = subprocess.Popen(
        [sys.executable, str(RATERS_CLIENT), str(config), str(results)],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )  # fmt: skip
    log.close()
    return process, results


def client_finish(process: subprocess.Popen, results: Path, *, timeout: float) -> dict[str, Any]:
    """Wait for a ``raters.py`` run (killing it after ``timeout``) and load its results."""
    from ratingstudy.lib.processes import kill_process

    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_process(process)
    log = results.parent / results.name.replace("-results.json", "-client.log")
    if process.returncode != 0 or not results.exists():
        tail = log.read_text(errors="replace")[-3000:] if log.exists() else ""
        raise RuntimeError(f"the locust client exited with {process.returncode}:\n{tail}")
    return json.loads(results.read_text())


def client_run(run: ClientRun, work_dir: Path, tag: str) -> dict[str, Any]:
    process, results = client_start(run, work_dir, tag)
    return client_finish(process, results, timeout=run.time_limit + 60)


# --- figures --------------------------------------------------------------------------------


def percentile(sorted_values: list[float], q: float) -> float:
    """The q-th percentile (0-100) by linear interpolation between closest ranks."""
    if not sorted_values:
        return float("nan")
    position = (len(sorted_values) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(sorted_values) - 1)
    return sorted_values[low] + (sorted_values[high] - sorted_values[low]) * (position - low)


def latency_summary(results: dict[str, Any], op: str, *, skip_seconds: float = 0.0) -> dict[str, float]:
    """Count, throughput (per second over the measured window) and p50/p95/p99 (ms) of the
    successful ``op`` operations that started at least ``skip_seconds`` after the client began
    (the warm-up is left out)."""
    start = results["t0"] + skip_seconds
    rows = [row for row in results["ops"] if row[0] == op and row[3] and row[1] >= start]
    window = max(max((row[1] + row[2] / 1000 for row in rows), default=start) - start, 1e-9)
    times = sorted(row[2] for row in rows)
    return {
        "count": len(rows),
        "per_second": len(rows) / window,
        "p50_ms": percentile(times, 50),
        "p95_ms": percentile(times, 95),
        "p99_ms": percentile(times, 99),
        "window_s": window,
    }


def http_summary(results: dict[str, Any], *, skip_seconds: float = 0.0) -> dict[str, float]:
    """All HTTP requests the raters made: count, failures and requests per second."""
    start = results["t0"] + skip_seconds
    rows = [row for row in results["http"] if row[1] >= start]
    ok = [row for row in rows if row[4] is None]
    window = max(max((row[1] + row[2] / 1000 for row in rows), default=start) - start, 1e-9)
    return {"requests": len(rows), "failed": len(rows) - len(ok), "per_second": len(ok) / window, "window_s": window}


# --- exactly once ---------------------------------------------------------------------------


@dataclass
class AnswerCheck:
    """What the database holds compared with what the raters sent."""

    sent: int = 0
    confirmed: int = 0
    retried: int = 0
    stored: int = 0
    lost: list[str] = field(default_factory=list)  # confirmed to the rater, not stored
    duplicated: list[str] = field(default_factory=list)  # more than one response to a trial
    unexpected: list[str] = field(default_factory=list)  # stored, but no rater sent it
    mismatched: list[str] = field(default_factory=list)  # stored, but not what was sent
    unconfirmed_missing: list[str] = field(default_factory=list)  # sent, never confirmed, not stored
    sessions_completed: int = 0
    sessions_expected: int = 0
    rater_failures: list[str] = field(default_factory=list)

    @property
    def exactly_once(self) -> bool:
        return not (self.lost or self.duplicated or self.unexpected or self.mismatched)

    @property
    def all_completed(self) -> bool:
        return self.sessions_completed == self.sessions_expected and not self.rater_failures

    def lines(self) -> list[str]:
        """PASS/FAIL lines for the report."""

        def sample(items: list[str]) -> str:
            return ", ".join(items[:5]) + (" ..." if len(items) > 5 else "")

        out = [
            f"{'PASS' if self.exactly_once else 'FAIL'} every answer sent is stored exactly once: "
            f"{self.sent} sent ({self.retried} retried), {self.stored} stored, "
            f"{len(self.lost)} lost, {len(self.duplicated)} duplicated, "
            f"{len(self.unexpected)} unexpected, {len(self.mismatched)} altered"
        ]
        for label, items in (
            ("lost (confirmed but not stored)", self.lost),
            ("duplicated", self.duplicated),
            ("stored but never sent", self.unexpected),
            ("stored with other values than sent", self.mismatched),
        ):
            if items:
                out.append(f"     {label}: {sample(items)}")
        out.append(
            f"{'PASS' if self.all_completed else 'FAIL'} sessions completed: "
            f"{self.sessions_completed} of {self.sessions_expected}"
        )
        if self.unconfirmed_missing:
            out.append(f"     {len(self.unconfirmed_missing)} answers were never confirmed and are not stored")
        out += [f"     rater failed: {reason}" for reason in self.rater_failures[:10]]
        return out


def answers_check(*, study_id: int, results: list[dict[str, Any]], tokens: list[str]) -> AnswerCheck:
    """Compare the answers the raters sent (trial token + client-side id, which the client
    puts in ``client_ms``) with the responses in the database."""
    from ratingstudy.studies.models import Response, Session, token_digest

    check = AnswerCheck(sessions_expected=len(tokens))
    sent: dict[str, dict[str, Any]] = {}
    for result in results:
        check.rater_failures += result["rater_failures"]
        for answer in result["answers"]:
            check.sent += 1
            check.confirmed += answer["confirmed"]
            check.retried += answer["attempts"] > 1
            previous = sent.get(answer["trial"])
            if previous is not None and previous["client_id"] != answer["client_id"]:
                check.rater_failures.append(f"the client answered trial {answer['trial']} twice")
            sent[answer["trial"]] = answer
    rows = list(
        Response.objects.filter(trial__session__study_id=study_id).values_list(
            "trial__token", "judged_real", "quality", "confidence", "client_ms"
        )
    )
    check.stored = len(rows)
    per_trial = Counter(row[0] for row in rows)
    check.duplicated = sorted(token for token, count in per_trial.items() if count > 1)
    check.unexpected = sorted(token for token in per_trial if token not in sent)
    for row in rows:
        answer = sent.get(row[0])
        if answer is not None:
            expected = (answer["judged_real"], answer["quality"], answer["confidence"], answer["client_id"])
            if tuple(row[1:]) != expected:
                check.mismatched.append(row[0])
    for token, answer in sent.items():
        if token not in per_trial:
            (check.lost if answer["confirmed"] else check.unconfirmed_missing).append(token)
    completed_raters = {token for result in results for token in result["completed"]}
    token_of = {token_digest(token): token for token in tokens}  # only hashes are stored
    finished_in_db = {
        token_of[digest]
        for digest in Session.objects.filter(rater__token_hash__in=token_of, completed_at__isnull=False).values_list(
            "rater__token_hash", flat=True
        )
    }
    check.sessions_completed = len(completed_raters & finished_in_db)
    for token in sorted(completed_raters - finished_in_db):
        check.rater_failures.append(f"rater {token[:8]}... saw the completion page but the session is not complete")
    return check
