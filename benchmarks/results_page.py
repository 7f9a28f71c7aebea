"""The results page and every export of a synthetic study (default 100 raters x 200 trials =
20,000 responses): seconds per request, cold and warm, against the goals (< 5 s cold, < 1 s warm).

Set-up: a throw-away SQLite database (or ``DATABASE_URL``, an *empty scratch* database) and
Redis, then ``manage.py study_synthetic``. Every figure is one request through Django's test
``Client`` (the whole middleware stack, a logged-in staff user), with streamed bodies read to
the end, timed in a **fresh Python process** per URL (Django set up, nothing imported by a
request yet, empty cache):

* **cold**: the process's first request of the URL (the URLconf, the views and NumPy/SciPy
  are imported on the way, as after a deploy or a worker restart);
* **warm**: the same URL again in that process.

The page's default view is served from the stored results snapshot. Two more rows show
what that replaced and what it costs:

* **first view** (no snapshot yet): the page computes the snapshot in the request (cold);
* **baseline, recompute per view**: ``study_results`` computed in the request, as the page did
  before snapshots (the per-process cache only helped a second view in the same process).

Also measured: the time to create the study, and the snapshot job's computation alone.

    python benchmarks/results_page.py --json out.json
    python benchmarks/results_page.py --raters 10 --trials 60      # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from _env import ROOT, django_stack, machine

GOAL_COLD_S = 5.0
GOAL_WARM_S = 1.0
STAFF = "bench-staff"


def _urls(study_id: int) -> dict[str, str]:
    base = f"/results/{study_id}"
    urls = {"results page": f"{base}/", "page data (polled JSON)": f"{base}/data.json"}
    for name in ("responses", "images", "models", "marks"):
        for fmt in ("csv", "json"):
            urls[f"export {name}.{fmt}"] = f"{base}/{name}.{fmt}"
    urls["export manifest.json"] = f"{base}/manifest.json"
    return urls


def _child(url: str, repeats: int, baseline: bool) -> None:
    """In a fresh process: time ``url`` ``repeats`` times; print one JSON line."""
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")
    import django

    django.setup()
    from django.contrib.auth import get_user_model
    from django.test import Client

    client = Client(HTTP_HOST="localhost")
    client.force_login(get_user_model().objects.get(username=STAFF))
    if baseline:  # the page as it was: statistics computed in the request, no snapshot
        from ratingstudy.results import views

        def recompute(study, filters):
            version = views.selectors.study_data_version(study=study)
            return version.key, views.selectors.study_results(study=study, filters=filters), None

        views._results = recompute
    seconds, sizes = [], []
    for _ in range(repeats):
        began = time.perf_counter()
        response = client.get(url)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        seconds.append(time.perf_counter() - began)
        sizes.append(len(body))
        if response.status_code != 200:
            raise SystemExit(f"{url}: HTTP {response.status_code}: {body[:300]!r}")
    print(json.dumps({"url": url, "seconds": seconds, "bytes": sizes[-1]}))


def _measure(url: str, *, repeats: int = 2, baseline: bool = False) -> dict:
    command = [sys.executable, __file__, "--child", url, "--repeats", str(repeats)] + (["--baseline"] if baseline else [])
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, env=os.environ.copy())
    if done.returncode != 0:
        raise RuntimeError(f"measuring {url} failed:\n{done.stderr[-3000:]}{done.stdout[-500:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--raters", type=int, default=100)
    parser.add_argument("--trials", type=int, default=200)
    parser.add_argument("--json", help="write the figures to this file")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--repeats", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--baseline", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.repeats, args.baseline)
        return 0

    load_before = os.getloadavg()
    with django_stack():
        from django.contrib.auth import get_user_model
        from django.core.management import call_command

        from ratingstudy.results.models import ResultsSnapshot
        from ratingstudy.results.services import results_snapshot_refresh
        from ratingstudy.studies.models import Response, Study

        get_user_model().objects.create_user(username=STAFF, password="bench-pw-123456789", is_staff=True, is_superuser=True)
        began = time.perf_counter()
        call_command("study_synthetic", raters=args.raters, trials=args.trials, verbosity=0)
        create_s = time.perf_counter() - began
        study = Study.objects.get(name__startswith="synthetic")
        responses = Response.objects.filter(trial__session__study=study).count()
        urls = _urls(study.pk)

        baseline = _measure(urls["results page"], baseline=True)
        first_view = _measure(urls["results page"], repeats=1)  # computes and stores the snapshot
        assert ResultsSnapshot.objects.filter(study=study).exists(), "the first view stored no snapshot"
        rows = []
        for name, url in urls.items():
            figures = _measure(url)
            rows.append({"name": name, "url": url, "cold_s": figures["seconds"][0], "warm_s": figures["seconds"][1],
                         "bytes": figures["bytes"]})  # fmt: skip
            print(f"{name:28s} cold {figures['seconds'][0]:6.3f} s  warm {figures['seconds'][1]:6.3f} s  {figures['bytes']:>10,} B")
        began = time.perf_counter()
        results_snapshot_refresh(study_id=study.pk)
        job_s = time.perf_counter() - began

    worst_cold = max(r["cold_s"] for r in rows + [{"cold_s": first_view["seconds"][0]}])
    worst_warm = max(r["warm_s"] for r in rows)
    result = {
        "benchmark": "results_page",
        "machine": machine(),
        "load_before": load_before,
        "load_after": os.getloadavg(),
        "raters": args.raters,
        "trials": args.trials,
        "responses": responses,
        "create_seconds": create_s,
        "snapshot_job_seconds": job_s,
        "baseline_recompute": {"cold_s": baseline["seconds"][0], "warm_s": baseline["seconds"][1]},
        "first_view_cold_s": first_view["seconds"][0],
        "rows": rows,
        "goals": {
            "cold_s": GOAL_COLD_S,
            "warm_s": GOAL_WARM_S,
            "cold_met": worst_cold < GOAL_COLD_S,
            "warm_met": worst_warm < GOAL_WARM_S,
        },
    }
    print(f"{responses:,} responses; study created in {create_s:.1f} s; snapshot job {job_s:.2f} s")
    print(f"baseline (recompute per view): cold {baseline['seconds'][0]:.3f} s, warm {baseline['seconds'][1]:.3f} s; "
          f"first view (computes the snapshot) {first_view['seconds'][0]:.3f} s")  # fmt: skip
    print(f"worst cold {worst_cold:.3f} s (goal < {GOAL_COLD_S:g}), worst warm {worst_warm:.3f} s (goal < {GOAL_WARM_S:g})")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(result, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
