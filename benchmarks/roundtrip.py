"""Rating round trip under load: a minimal Django view (``/health``) vs our submit-and-next,
on the same gunicorn + PostgreSQL + Redis, with the same number of concurrent clients.

* **ours**: submit-and-next, what a rater waits for after pressing Next, as the trial
  page's script sends it: one POST that stores the answer (``rating_submit``: one
  response per trial, enforced by the database) and returns the next trial's body.
* **plain**: the same answer as a plain form post (no script): POST, then the
  redirect's GET of the next trial page (two HTTP requests). This was the only way
  before answers returned the next trial, so it is the before/after baseline.
* **baseline**: ``GET /health``, a view returning a constant JSON through the same
  middleware, server and workers.

Two phases, each measured for ``--duration`` seconds after ``--warmup`` seconds:

1. **saturation**: ``--concurrency`` clients (default 100) send back to back, no
   think time: the highest throughput of each (round trips/s vs requests/s).
   Goal: ours at least half the throughput of the minimal view.
2. **rater pace**: the same number of clients pausing ``--think`` seconds between
   operations as raters do (ours also fetches each trial's image, as a browser does).
   Goal: submit-and-next p95 < 50 ms with 100 concurrent raters on 2 cores.

The load generator (locust, one process) runs on the same machine and takes CPU
from the server, more so for the cheap baseline. Sessions are started before each
phase (profile + drawn trials), so only answering is measured. Afterwards every
answer sent must be stored exactly once (exit 1 otherwise).

    python benchmarks/roundtrip.py
    python benchmarks/roundtrip.py --quick --json out.json
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

from _env import machine
from load.run import GOAL_P95_MS, add_server_arguments
from load.stack import (
    ClientRun,
    StudyPlan,
    WebServer,
    answers_check,
    client_run,
    lab_stack,
    latency_summary,
    sessions_prestart,
    study_seed,
)

GOAL_RATIO = 0.5
PLAN = StudyPlan(images_per_rater=60, practice=0, corrupted=1, repeats=2, canvas=384)
MAX_EXPECTED_ANSWERS_PER_S = 500  # sizes the pool of started sessions for the saturation phase


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--concurrency", type=int, default=100, help="concurrent clients (default 100)")
    parser.add_argument("--duration", type=float, help="measured seconds per phase and endpoint (default 20; 6 quick)")
    parser.add_argument("--warmup", type=float, help="seconds left out at the start of each run (default 3; 2 quick)")
    parser.add_argument("--think", type=float, nargs=2, default=(1.0, 3.0), metavar=("MIN", "MAX"),
                        help="rater pace: seconds between operations (default 1 3)")  # fmt: skip
    parser.add_argument("--no-images", action="store_true",
                        help="rater pace without fetching trial images (shows what the images cost)")
    parser.add_argument("--quick", action="store_true", help="smoke run: short phases")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    add_server_arguments(parser)
    args = parser.parse_args()
    duration = args.duration or (6.0 if args.quick else 20.0)
    warmup = args.warmup if args.warmup is not None else (2.0 if args.quick else 3.0)
    users = args.concurrency
    # Two saturation runs (plain, ours) draw on the pool: each half of it.
    saturation_sessions = 2 * (users + math.ceil(MAX_EXPECTED_ANSWERS_PER_S * (duration + warmup) / PLAN.trials))

    with lab_stack(database=args.database) as lab:
        study_id, tokens = study_seed(name="round trip benchmark", raters=2 * users + saturation_sessions, plan=PLAN)
        paced_plain_tokens, paced_tokens, saturation_tokens = tokens[:users], tokens[users : 2 * users], tokens[2 * users :]
        began = time.monotonic()
        sessions_prestart(tokens=tokens)
        print(f"started {len(tokens)} sessions of {PLAN.trials} trials in {time.monotonic() - began:.1f} s", flush=True)
        server = WebServer(lab.var_dir / "log", workers=args.workers, threads=args.threads,
                           worker_class=args.worker_class, front=args.front)  # fmt: skip
        server.start()
        print(f"{server.description} + {lab.database}, {users} concurrent clients, "
              f"{warmup:g} s warm-up + {duration:g} s per run", flush=True)  # fmt: skip
        common = {"host": server.url, "users": users, "duration": warmup + duration, "time_limit": warmup + duration + 120}
        half = len(saturation_tokens) // 2
        pace = {"think_min": args.think[0], "think_max": args.think[1]}
        runs = {
            "saturation": {
                "baseline": ClientRun(mode="health", **common),
                "plain": ClientRun(mode="answer", tokens=saturation_tokens[:half], fetch_images=False,
                                   one_request=False, **common),
                "ours": ClientRun(mode="answer", tokens=saturation_tokens[half:], fetch_images=False, **common),
            },
            "paced": {
                "baseline": ClientRun(mode="health", **pace, **common),
                "plain": ClientRun(mode="answer", tokens=paced_plain_tokens, fetch_images=not args.no_images,
                                   one_request=False, **pace, **common),
                "ours": ClientRun(mode="answer", tokens=paced_tokens, fetch_images=not args.no_images, **pace, **common),
            },
        }  # fmt: skip
        results, figures = [], {}
        try:
            for phase, pair in runs.items():
                figures[phase] = {}
                for side, run in pair.items():
                    cpu_before = server.cpu_seconds()
                    result = client_run(run, lab.var_dir, f"{phase}-{side}")
                    server_cpu = server.cpu_seconds() - cpu_before
                    results.append(result)
                    op = "health" if side == "baseline" else "submit-and-next"  # plain: POST + redirect's GET
                    figures[phase][side] = row = latency_summary(result, op, skip_seconds=warmup)
                    all_ops = sum(1 for r in result["ops"] if r[0] == op and r[3])
                    row["server_cpu_ms_per_op"] = 1000 * server_cpu / max(all_ops, 1)
                    row["client_cpu_s"] = result["client_cpu_s"]
                    figures[phase][side]["failures"] = result["rater_failures"][:5]
                    figures[phase][side]["sessions_ran_out"] = result.get("exhausted", False)
        finally:
            server.stop()
        ours_results = [r for r in results if r["answers"]]
        check = answers_check(study_id=study_id, results=ours_results, tokens=[])

    saturation, paced = figures["saturation"], figures["paced"]
    ratio = saturation["ours"]["per_second"] / saturation["baseline"]["per_second"]
    p95 = paced["ours"]["p95_ms"]
    ratio_met, p95_met = ratio >= GOAL_RATIO, p95 < GOAL_P95_MS
    print(f"machine: {machine()}")
    print(f"{'':34}{'per s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}{'n':>7}{'CPU ms/op':>11}")
    for phase, title in (("saturation", "saturation (no think time)"),
                         ("paced", f"rater pace (think {args.think[0]:g}-{args.think[1]:g} s"
                                   f"{', no images' if args.no_images else ', images fetched'})")):  # fmt: skip
        print(title)
        for side, label in (("baseline", "minimal view GET /health"), ("plain", "plain post (POST + GET)"),
                            ("ours", "submit-and-next (one POST)")):  # fmt: skip
            row = figures[phase][side]
            print(f"  {label:<32}{row['per_second']:>9.1f}{row['p50_ms']:>9.1f}{row['p95_ms']:>9.1f}"
                  f"{row['p99_ms']:>9.1f}{row['count']:>7}{row['server_cpu_ms_per_op']:>11.1f}")  # fmt: skip
            if row["failures"]:
                print(f"    FAILURES: {row['failures']}")
            if row["sessions_ran_out"]:
                print("    note: the started sessions ran out before the end; throughput is a lower bound")
    cpu_ratio = saturation["baseline"]["server_cpu_ms_per_op"] / saturation["ours"]["server_cpu_ms_per_op"]
    one_vs_plain = saturation["ours"]["per_second"] / saturation["plain"]["per_second"]
    cpu_plain_ratio = saturation["plain"]["server_cpu_ms_per_op"] / saturation["ours"]["server_cpu_ms_per_op"]
    print("CPU ms/op: gunicorn CPU time per operation over the whole run (images included at rater pace)")
    print(f"throughput ours/minimal (saturation): {ratio:.2f} (goal >= {GOAL_RATIO}: {'met' if ratio_met else 'MISSED'}); "
          f"server CPU cost ratio minimal/ours: {cpu_ratio:.2f}")
    print(f"one request vs plain post: {one_vs_plain:.2f}x throughput, {cpu_plain_ratio:.2f}x less server CPU per answer, "
          f"p95 at rater pace {paced['plain']['p95_ms']:.1f} -> {p95:.1f} ms")
    print(f"submit-and-next p95 at rater pace with {users} clients: {p95:.1f} ms "
          f"(goal < {GOAL_P95_MS:.0f} ms: {'met' if p95_met else 'MISSED'})"
          + ("" if users >= 100 else f" -- {users} clients, not the goal's 100"))  # fmt: skip
    print(f"p95 ratio ours/minimal at rater pace: {p95 / paced['baseline']['p95_ms']:.1f}x")
    for line in check.lines()[:1]:
        print(line)
    failed = any(figures[p][s]["failures"] for p in figures for s in figures[p])
    if args.json:
        args.json.write_text(json.dumps({
            "benchmark": "roundtrip",
            "machine": machine(),
            "server": server.description,
            "database": lab.database,
            "concurrency": users,
            "duration_s": duration,
            "warmup_s": warmup,
            "think_s": list(args.think),
            "paced_images": not args.no_images,
            "saturation": saturation,
            "paced": paced,
            "throughput_ratio": ratio,
            "server_cpu_ratio": cpu_ratio,
            "one_vs_plain_throughput": one_vs_plain,
            "one_vs_plain_cpu": cpu_plain_ratio,
            "goals": {"throughput_ratio": GOAL_RATIO, "ratio_met": ratio_met,
                      "p95_ms": GOAL_P95_MS, "p95_met": p95_met},
            "exactly_once": check.exactly_once,
        }, indent=2))  # fmt: skip
    return 0 if check.exactly_once and not failed else 1


if __name__ == "__main__":
    raise SystemExit(main())
