"""Enqueue-to-start latency of a lab job vs a no-op Celery task, same Redis, same worker.

* baseline: ``send_task("worker.tasks.ping")``; latency = the task's first line - send time.
* ours: ``job_launch`` of a tiny training job (row insert, commit, on-commit send,
  worker claim with a row lock); latency = ``Job.started_at`` - the launch call.

Each sample waits for the previous one to finish so the worker is idle when the
message arrives. Prints medians and the ratio; ``--json PATH`` writes the figures.

    python benchmarks/dispatch.py --samples 15
"""

from __future__ import annotations

import argparse
import json
import statistics
import time

from _env import django_stack, machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=15)
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    with django_stack(worker=True):
        from django.core.management import call_command

        from ratingstudy.catalog.models import ImageSet
        from ratingstudy.jobs.models import Job
        from ratingstudy.jobs.services import job_launch
        from worker.celery import app

        call_command("seed_demo", "--train-per-class", "2", "--test-per-class", "1", "--size", "32", verbosity=0)
        image_set = ImageSet.objects.get(name="demo-tiles")
        tiny = {"preset": "cyclegan", "encoder_weights": "random", "ngf": 4, "ndf": 4, "image_size": 32,
                "batch_size": 2, "n_epochs": 1, "n_epochs_decay": 0}

        app.send_task("worker.tasks.ping", args=["warm-up"]).get(timeout=60)
        job_launch(kind="train", config=tiny, input_image_set=image_set)  # warm-up: imports torch
        _wait_all_finished(Job)

        noop, ours = [], []
        for i in range(args.samples):
            sent = time.time()
            reply = app.send_task("worker.tasks.ping", args=[str(i)]).get(timeout=60)
            noop.append(reply["started"] - sent)
            launched = time.time()
            job = job_launch(kind="train", config=tiny, input_image_set=image_set)
            _wait_all_finished(Job)
            job.refresh_from_db()
            ours.append(job.started_at.timestamp() - launched)
    result = {
        "benchmark": "dispatch",
        "machine": machine(),
        "samples": args.samples,
        "noop_task_median_ms": 1000 * statistics.median(noop),
        "job_median_ms": 1000 * statistics.median(ours),
    }
    result["ratio"] = result["job_median_ms"] / result["noop_task_median_ms"]
    print(f"machine: {result['machine']}")
    print(f"{'enqueue -> start':<28}{'median ms':>12}")
    print(f"{'no-op Celery task':<28}{result['noop_task_median_ms']:>12.1f}")
    print(f"{'lab job (launch -> claim)':<28}{result['job_median_ms']:>12.1f}")
    print(f"ratio job / no-op: {result['ratio']:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


def _wait_all_finished(Job, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while Job.objects.exclude(status__in=Job.FINISHED).exists():
        if time.monotonic() > deadline:
            raise RuntimeError("a benchmark job did not finish")
        time.sleep(0.02)


if __name__ == "__main__":
    raise SystemExit(main())
