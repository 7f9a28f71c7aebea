"""Load: N concurrent raters (default 100) each do a whole rating session against gunicorn +
PostgreSQL + Redis on this machine; afterwards the database must hold every answer sent
exactly once (exit 1 otherwise).

The study and the raters are created first through the studies services, on a
throw-away database (PostgreSQL when it answers, dropped afterwards; else SQLite).
Raters (locust, ``load/raters.py``) open their invitation, fill the profile, do the
practice (with feedback) and every trial: fetch the page and the image, think
(uniform ``--think`` seconds), submit and land on the next trial, up to the thank-you
page. Reported: requests per second (every HTTP request, redirects included) and
p50/p95/p99 of the submit-and-next round trip (POST the answer + GET the next trial
page). Goal (issue 8): p95 < 50 ms with 100 concurrent raters on 2 cores.

    python benchmarks/load/run.py                       # 100 raters
    python benchmarks/load/run.py --short --json out.json   # CI: 20 raters, short sessions
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from _env import machine
from load.stack import (
    ClientRun,
    StudyPlan,
    WebServer,
    answers_check,
    client_run,
    http_summary,
    lab_stack,
    latency_summary,
    study_seed,
)

GOAL_P95_MS = 50.0
SHORT_PLAN = StudyPlan(images_per_rater=6, practice=2, corrupted=1, repeats=1, canvas=256)
SHORT_THINK = (0.1, 0.4)


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    defaults = WebServer(log_dir=Path("."))
    parser.add_argument("--database", choices=("auto", "postgres", "sqlite"), default="auto",
                        help="auto: PostgreSQL when it answers (a throw-away database), else SQLite")
    parser.add_argument("--worker-class", choices=("gthread", "sync"), default=defaults.worker_class)
    parser.add_argument("--workers", type=int, default=defaults.workers, help="gunicorn workers (default 2 x cores + 1)")
    parser.add_argument("--threads", type=int, default=defaults.threads, help="threads per gthread worker")  # fmt: skip
    parser.add_argument("--front", choices=("none", "nginx"), default="none",
                        help="nginx: the documented deployment, nginx in front sending images and static files")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--raters", type=int, help="concurrent raters (default 100; 20 with --short)")
    parser.add_argument("--think", type=float, nargs=2, metavar=("MIN", "MAX"),
                        help="seconds a rater looks at each image (default 1 3; 0.1 0.4 with --short)")
    parser.add_argument("--spawn-rate", type=float, help="raters arriving per second (default raters/10)")
    parser.add_argument("--short", action="store_true", help="CI form: 20 raters, 10-trial sessions")
    parser.add_argument("--time-limit", type=float, default=900, help="hard stop for the raters, seconds")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_server_arguments(parser)
    args = parser.parse_args()
    raters = args.raters or (20 if args.short else 100)
    think = args.think or (SHORT_THINK if args.short else (1.0, 3.0))
    plan = SHORT_PLAN if args.short else StudyPlan()
    spawn_rate = args.spawn_rate or max(raters / (5 if args.short else 10), 1.0)

    with lab_stack(database=args.database) as lab:
        study_id, tokens = study_seed(name="load benchmark", raters=raters, plan=plan)
        server = WebServer(lab.var_dir / "log", workers=args.workers, threads=args.threads,
                           worker_class=args.worker_class, front=args.front)  # fmt: skip
        server.start()
        try:
            print(f"{raters} raters x {plan.trials} trials against {server.description} + {lab.database} "
                  f"(think {think[0]}-{think[1]} s, {spawn_rate:g} raters/s arriving)", flush=True)  # fmt: skip
            began = time.monotonic()
            results = client_run(
                ClientRun(host=server.url, mode="session", users=raters, tokens=tokens, spawn_rate=spawn_rate,
                          think_min=think[0], think_max=think[1], time_limit=args.time_limit),
                lab.var_dir, "load",
            )  # fmt: skip
            elapsed = time.monotonic() - began
        finally:
            server.stop()
        check = answers_check(study_id=study_id, results=[results], tokens=tokens)

    http = http_summary(results)
    ops = {name: latency_summary(results, name) for name in
           ("submit-and-next", "submit-and-feedback", "submit-and-finish", "after-feedback", "invitation", "profile")}  # fmt: skip
    images = [row[2] for row in results["http"] if row[0] == "image" and row[4] is None]
    rtt = ops["submit-and-next"]
    goal_met = rtt["p95_ms"] < GOAL_P95_MS
    print(f"machine: {machine()}")
    print(f"ran {elapsed:.1f} s: {http['requests']} HTTP requests, {http['failed']} failed, "
          f"{http['per_second']:.1f} req/s; {rtt['per_second']:.1f} submit-and-next/s")  # fmt: skip
    print(f"{'operation':<22}{'count':>7}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}")
    for name, row in ops.items():
        if row["count"]:
            print(f"{name:<22}{row['count']:>7}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}{row['p99_ms']:>9.1f}")
    if images:
        images.sort()
        print(f"{'image (GET)':<22}{len(images):>7}{images[len(images) // 2]:>9.1f}"
              f"{images[int(0.95 * (len(images) - 1))]:>9.1f}{images[int(0.99 * (len(images) - 1))]:>9.1f}")  # fmt: skip
    print(f"goal: submit-and-next p95 < {GOAL_P95_MS:.0f} ms with {raters} concurrent raters: "
          f"{rtt['p95_ms']:.1f} ms -> {'met' if goal_met else 'MISSED'}"
          + ("" if raters >= 100 else f" (only {raters} raters: not the goal's 100)"))  # fmt: skip
    for line in check.lines():
        print(line)
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "load",
            "machine": machine(),
            "server": server.description,
            "database": lab.database,
            "raters": raters,
            "trials_per_session": plan.trials,
            "think_s": list(think),
            "elapsed_s": elapsed,
            "http": http,
            "ops": ops,
            "goal_p95_ms": GOAL_P95_MS,
            "goal_met": goal_met,
            "answers": {"sent": check.sent, "stored": check.stored, "lost": len(check.lost),
                        "duplicated": len(check.duplicated), "unexpected": len(check.unexpected),
                        "altered": len(check.mismatched)},
            "sessions_completed": check.sessions_completed,
            "exactly_once": check.exactly_once,
            "all_completed": check.all_completed,
        }, indent=2))  # fmt: skip
    return 0 if check.exactly_once and check.all_completed else 1


if __name__ == "__main__":
    raise SystemExit(main())
