"""Export N tidy response rows (default 1,000,000): our streaming export against a plain
``csv.writer`` loop over the same query rows.

* **ours**: the real code path. The staff-only view ``export_responses`` is called with a
  staff user; the ``StreamingHttpResponse`` it returns is consumed chunk by chunk and
  written to a file, as a WSGI server would (``response_export_rows`` over
  ``QuerySet.iterator(chunk_size=...)``, rater pseudonyms, attention-check flags,
  ``csv_chunks`` batches, UTF-8 encoding).
* **plain**: ``response_export_queryset(study).iterator(chunk_size=...)`` -- the same SQL,
  the same rows -- into ``csv.writer(file).writerow`` one row at a time.

Each is measured in a fresh subprocess: wall seconds and peak resident memory
(``VmHWM`` from ``/proc/self/status``, else ``ru_maxrss``; it includes the interpreter,
Django and NumPy, so the peak before the export starts is reported beside it). The data are
generated in bulk (``executemany`` from generators) into a SQLite file under a temporary
directory, or into ``--database-url`` (an *empty scratch* database: it is migrated and
filled). Goal: peak memory under 300 MB and ours within 2x of plain.

    python benchmarks/export.py                         # 1,000,000 rows
    python benchmarks/export.py --rows 100000 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TRIALS_PER_SESSION = 200
IMAGES_PER_SET = 500
MODELS = ("plain-cyclegan", "resnet50-cyclegan", "vgg16-cyclegan", "efficientnet-lite0-cyclegan")
GOAL_PEAK_MB = 300
GOAL_RATIO = 2.0


def _setup_django(database_url: str, var_dir: str) -> None:
    os.environ["DATABASE_URL"] = database_url
    os.environ["VAR_DIR"] = var_dir
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "ratingstudy.settings")
    import django

    django.setup()


def _rss_mb() -> float:
    """Peak resident memory of this process in MB: ``VmHWM`` where /proc has it (it starts
    afresh at ``exec``, whereas ``ru_maxrss`` carries over the parent's peak through
    fork+exec on Linux), else ``ru_maxrss``."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    scale = 1024 * 1024 if sys.platform == "darwin" else 1024  # bytes on macOS, kB on Linux
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / scale


def _insert(table: str, columns: list[str], rows) -> None:
    """``executemany`` from a generator: the rows never sit in a list."""
    from django.db import connection

    sql = f"INSERT INTO {connection.ops.quote_name(table)} ({', '.join(connection.ops.quote_name(c) for c in columns)}) VALUES ({', '.join(['%s'] * len(columns))})"
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


def generate(n_rows: int) -> int:
    """A study with ``n_rows`` answered trials (sessions of 200: 4 practice, a corrupted and
    a repeat check); returns the study id."""
    import numpy as np
    from django.db import transaction
    from django.utils import timezone

    from ratingstudy.catalog.models import Image, ImageSet
    from ratingstudy.studies.models import Rater, Response, Session, Study, Trial

    rng = np.random.default_rng(0)
    with transaction.atomic():
        study = Study.objects.create(name="export benchmark", instructions="-", seed=1)
        sets = [ImageSet.objects.create(name="real", kind=ImageSet.Kind.REAL, source=ImageSet.Source.DEMO)]
        sets += [ImageSet.objects.create(name=m, kind=ImageSet.Kind.GENERATED, source=ImageSet.Source.GENERATED, model_name=m) for m in MODELS]
        study.real_image_sets.set(sets[:1])
        study.generated_image_sets.set(sets[1:])
        Image.objects.bulk_create(
            Image(
                image_set=s, file=f"images/{s.pk}/{i}.png", sha256=f"{s.pk:032d}{i:032d}", original_sha256="0" * 64,
                label=("benign", "malignant")[i % 2], source_path=f"{s.name}/{i:05d}.png", width=256, height=256,
            )  # fmt: skip
            for s in sets
            for i in range(IMAGES_PER_SET)
        )
        image_ids = np.array(Image.objects.filter(image_set__in=sets).values_list("id", flat=True))
        n_sessions = -(-n_rows // TRIALS_PER_SESSION)
        now = timezone.now()
        Rater.objects.bulk_create(
            Rater(study=study, token_hash=f"bench-{i:012d}", role=("pathologist", "resident")[i % 2], years_experience=i % 30, specialty="breast")
            for i in range(n_sessions)
        )
        raters = list(Rater.objects.filter(study=study).order_by("id").values_list("id", flat=True))
        Session.objects.bulk_create(Session(rater_id=r, study=study, seed=r) for r in raters)
        sessions = list(Session.objects.filter(study=study).order_by("id").values_list("id", flat=True))

        trial_table = Trial._meta.db_table
        first_trial = (Trial.objects.order_by("-id").values_list("id", flat=True).first() or 0) + 1

        def trials():
            trial_id = first_trial
            for s, session in enumerate(sessions):
                count = min(TRIALS_PER_SESSION, n_rows - s * TRIALS_PER_SESSION)
                picks = rng.choice(image_ids, size=count, replace=False)
                base = trial_id
                for index in range(count):
                    check, repeat_of, variant = "", None, ""
                    if index == count - 2 and count > 20:
                        check = variant = "corrupted"
                    elif index == count - 1 and count > 20:
                        check, repeat_of, variant = "repeat", base + 10, "flip_h"
                    yield (
                        trial_id, session, index, int(picks[index]), f"t{trial_id:021d}", index < 4, False, check,
                        repeat_of, variant, f"served/bench/{trial_id}.png", "", "", now,
                    )  # fmt: skip
                    trial_id += 1

        columns = [
            "id", "session_id", "index", "image_id", "token", "is_practice", "is_qualification", "attention_check",
            "repeat_of_id", "variant", "render", "render_right", "real_side", "shown_at",
        ]  # fmt: skip
        _insert(trial_table, columns, trials())

        def responses():
            quality = rng.integers(1, 6, size=n_rows)
            judged = rng.random(n_rows) < 0.5
            ms = rng.integers(300, 9000, size=n_rows)
            for k in range(n_rows):
                yield (
                    first_trial + k, bool(judged[k]), int(1 + k % 3), int(quality[k]), "", "", "", "[]", int(ms[k]),
                    int(ms[k]) + 40, now + dt.timedelta(milliseconds=k),
                )  # fmt: skip

        columns = [
            "trial_id", "judged_real", "confidence", "quality", "choice", "diagnosis", "subtype", "marks", "client_ms",
            "server_ms", "created_at",
        ]  # fmt: skip
        _insert(Response._meta.db_table, columns, responses())
    return study.pk


def child(mode: str, study_id: int, out_path: str) -> dict:
    """Runs in a subprocess: export once and report seconds, peak memory and size."""
    from django.contrib.auth.models import User
    from django.test import RequestFactory

    from ratingstudy.results import views
    from ratingstudy.results.export_selectors import RESPONSE_COLUMNS, response_export_queryset
    from ratingstudy.studies.models import Study

    study = Study.objects.get(pk=study_id)
    before = _rss_mb()
    start = time.perf_counter()
    if mode == "ours":
        request = RequestFactory().get(f"/results/{study_id}/responses.csv")
        request.user = User(username="bench", is_staff=True, is_active=True, is_superuser=True)
        response = views.export_responses(request, study_id=study_id, fmt="csv")
        with open(out_path, "wb") as sink:
            for chunk in response.streaming_content:
                sink.write(chunk)
    else:
        with open(out_path, "w", newline="") as sink:
            writer = csv.writer(sink)
            writer.writerow(list(RESPONSE_COLUMNS))
            for row in response_export_queryset(study=study).iterator(chunk_size=5000):
                writer.writerow(row)
    seconds = time.perf_counter() - start
    with open(out_path, "rb") as written:
        lines = sum(chunk.count(b"\n") for chunk in iter(lambda: written.read(1 << 20), b""))
    return {
        "mode": mode,
        "seconds": seconds,
        "peak_rss_mb": _rss_mb(),
        "rss_before_export_mb": before,
        "bytes": os.path.getsize(out_path),
        "rows": lines - 1,
    }


def _run_child(mode: str, study_id: int, database_url: str, var_dir: str, out_path: str) -> dict:
    result = subprocess.run(
        [sys.executable, __file__, "--child", mode, "--study", str(study_id), "--database-url", database_url, "--var-dir", var_dir, "--out", out_path],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"{mode} export failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000, help="responses to generate and export (default 1,000,000)")
    parser.add_argument("--database-url", help="an EMPTY scratch database to fill (default: SQLite file in a temp dir)")
    parser.add_argument("--repeat", type=int, default=1, help="measure each side this many times, keep the fastest")
    parser.add_argument("--json", type=Path, help="also write the results here as JSON")
    parser.add_argument("--child", choices=("ours", "plain"), help=argparse.SUPPRESS)
    parser.add_argument("--study", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--var-dir", help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.child:
        _setup_django(args.database_url, args.var_dir)
        print(json.dumps(child(args.child, args.study, args.out)))
        return

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        database_url = args.database_url or f"sqlite:///{tmp}/bench.sqlite3"
        _setup_django(database_url, tmp)
        from django.core.management import call_command

        start = time.perf_counter()
        call_command("migrate", verbosity=0)
        study_id = generate(args.rows)
        from django.db import connections

        connections.close_all()
        print(f"generated {args.rows:,} responses in {time.perf_counter() - start:.1f} s ({database_url.split(':')[0]})")

        best: dict[str, dict] = {}
        for _ in range(args.repeat):
            for mode in ("plain", "ours"):
                run = _run_child(mode, study_id, database_url, tmp, f"{tmp}/{mode}.csv")
                if mode not in best or run["seconds"] < best[mode]["seconds"]:
                    best[mode] = run
        ours, plain = best["ours"], best["plain"]
        ratio = ours["seconds"] / plain["seconds"]
        print(f"{'':8}{'seconds':>10}{'rows/s':>12}{'peak RSS MB':>14}{'RSS before MB':>15}{'MB written':>12}")
        for run in (plain, ours):
            print(
                f"{run['mode']:8}{run['seconds']:10.2f}{run['rows'] / run['seconds']:12,.0f}{run['peak_rss_mb']:14.1f}"
                f"{run['rss_before_export_mb']:15.1f}{run['bytes'] / 1e6:12.1f}"
            )
        memory_ok = ours["peak_rss_mb"] < GOAL_PEAK_MB
        ratio_ok = ratio <= GOAL_RATIO
        print(f"ratio ours/plain: {ratio:.2f}x (goal <= {GOAL_RATIO}x: {'met' if ratio_ok else 'MISSED'}); "
              f"peak memory {ours['peak_rss_mb']:.0f} MB (goal < {GOAL_PEAK_MB} MB: {'met' if memory_ok else 'MISSED'})")  # fmt: skip
        if ours["rows"] != args.rows or plain["rows"] != args.rows:
            raise SystemExit(f"row counts differ from {args.rows}: ours {ours['rows']}, plain {plain['rows']}")
        if args.json:
            report = {
                "benchmark": "export",
                "rows": args.rows,
                "database": database_url.split(":")[0],
                "machine": {"platform": platform.platform(), "python": platform.python_version(), "cpus": os.cpu_count()},
                "plain": plain,
                "ours": ours,
                "ratio": ratio,
                "goals": {"peak_rss_mb": GOAL_PEAK_MB, "ratio": GOAL_RATIO, "memory_met": memory_ok, "ratio_met": ratio_ok},
            }
            args.json.write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
