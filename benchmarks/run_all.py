"""``make bench``: run every benchmark as a subprocess with ``--json`` and print ONE table:
benchmark | baseline | ours | ratio | goal | met?, with the machine it ran on.

Each benchmark's figures come from its own JSON through a small adapter below; a script
in ``benchmarks/`` without an adapter still runs and shows as a row saying so. A
benchmark that crashes, times out or writes no JSON is an error row, and the others go
on. The load average is printed before each benchmark, with a warning when the machine
is busy (above 0.5 x cores), and goes into the table and the JSON. Everything (the rows
and each benchmark's raw JSON) is written to ``benchmarks/results/latest.json``. Exit
status 1 when any benchmark errored or failed a correctness check (missed speed goals
are reported, not errors).

    python benchmarks/run_all.py               # full sizes (tens of minutes on 2 cores)
    python benchmarks/run_all.py --quick       # smoke run with small sizes
    python benchmarks/run_all.py --only roundtrip --only dispatch
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from _env import ROOT, load_before, machine

BENCHMARKS = Path(__file__).resolve().parent
RESULTS = BENCHMARKS / "results" / "latest.json"


@dataclass
class Row:
    benchmark: str
    baseline: str = "-"
    ours: str = "-"
    ratio: str = "-"
    goal: str = "-"
    met: bool | None = None  # None: no goal, or not measured
    error: str = ""
    correctness: bool = False  # a missed goal here (data lost, job stuck) fails the run
    load: str = "-"  # 1-minute load average before the benchmark started; BUSY above 0.5 x cores

    @property
    def met_text(self) -> str:
        if self.error:
            return "ERROR"
        return {True: "met", False: "MISSED", None: "-"}[self.met]


Adapter = Callable[[dict[str, Any]], list[Row]]


@dataclass
class Benchmark:
    name: str
    script: str  # relative to benchmarks/
    adapt: Adapter | None
    args: list[str] = field(default_factory=list)
    quick_args: list[str] = field(default_factory=list)
    timeout: float = 3600
    quick_timeout: float = 600
    #: exit status 1 with figures written means a failed correctness check, not a crash
    checks_correctness: bool = False


# --- adapters: one per benchmark JSON format ---------------------------------------------------


def _fmt(value: float, unit: str = "") -> str:
    if value != value:  # NaN
        return "n/a"
    digits = 0 if abs(value) >= 100 else 1 if abs(value) >= 10 else 2
    return f"{value:,.{digits}f}{unit}"


def adapt_train_step(data: dict[str, Any]) -> list[Row]:
    rows = data["rows"]
    if not rows:
        return [Row("training step", error="no row measured")]
    reference, gpu = rows[0], any(row["setup"].get("amp") == "bf16" for row in rows)
    where = f"{data['image_size']}px, {data['device']}"
    out = []
    for row in rows[1:]:
        fast = row["name"].startswith("fast path")
        goal = (2.0 if gpu else 1.0) if fast else None
        peak = row.get("percent_of_peak")  # GPU rows (issue 14): >= 25% of the bf16 dense peak
        out.append(Row(
            benchmark=f"training step: {row['name']} ({where})",
            baseline=f"{reference['name']}: {_fmt(reference['images_per_s'])} img/s",
            ours=f"{_fmt(row['images_per_s'])} img/s, {row['tflops']:.3f} TFLOP/s"
            + (f" = {peak:.1f}% of bf16 peak" if peak is not None else ""),
            ratio=f"{row['speedup']:.2f}x img/s",
            goal=">= 25% of bf16 dense peak" if peak is not None else "-" if goal is None
            else f">= {goal:g}x img/s ({'GPU' if gpu else 'CPU: no slower'})",
            met=peak >= 25 if peak is not None else None if goal is None else row["speedup"] >= goal,
        ))  # fmt: skip
    return out


def adapt_metrics(data: dict[str, Any]) -> list[Row]:
    rows = data["rows"]
    reference = rows[0]
    out = []
    for row in rows[1:]:
        cpu32 = row["name"] == "ganlab torch CPU float32"
        worst = max(row["max_abs_diff"].values())
        out.append(Row(
            benchmark=f"SSIM+PSNR+MSE: {row['name']} ({data['pairs']} pairs {data['size']}px)",
            baseline=f"scikit-image loop: {_fmt(reference['pairs_per_second'])} pairs/s",
            ours=f"{_fmt(row['pairs_per_second'])} pairs/s (max |diff| {worst:.1e})",
            ratio=f"{row['speedup_vs_skimage']:.2f}x",
            goal=">= 5x on CPU" if cpu32 else "-",
            met=row["speedup_vs_skimage"] >= 5 if cpu32 else None,
        ))  # fmt: skip
    return out


def adapt_generation(data: dict[str, Any]) -> list[Row]:
    rows = data["rows"]
    loop = rows[0]
    gpu_goal = data["device"].startswith("cuda") and data["size"] == 256  # issue 14: >= 2,000 img/s
    out = [
        Row(
            benchmark=f"generation G_A: {row['name']} ({data['size']}px, {data['device']})",
            baseline=f"{loop['name']}: {_fmt(loop['images_per_s'])} img/s",
            ours=f"{_fmt(row['images_per_s'])} img/s",
            ratio=f"{row['ratio']:.2f}x img/s",
            goal=">= 2,000 img/s" if gpu_goal else "-",
            met=row["images_per_s"] >= 2000 if gpu_goal else None,
        )
        for row in rows[1:]
    ]
    e2e = data.get("end_to_end") or {"rows": []}
    for row in e2e["rows"][1:]:  # generate(), PNG files to PNG files, against one thread
        same = row["same_files_as_one_thread"]
        out.append(Row(
            benchmark=f"generate() {e2e['preset']} {e2e['size']}px: {row['name']} ({data['device']})",
            baseline=f"one thread: {_fmt(e2e['rows'][0]['images_per_s'])} img/s",
            ours=f"{_fmt(row['images_per_s'])} img/s" + ("" if same is None else ", same files" if same else ", FILES DIFFER"),
            ratio=f"{row['ratio']:.2f}x img/s",
            goal="same files" if same is not None else "-",
            met=same, correctness=same is not None,
        ))  # fmt: skip
    return out


def adapt_gpu_chain(data: dict[str, Any]) -> list[Row]:
    jobs = ", ".join(f"{j['kind']} {j['run_s'] or 0:.1f} s" for j in data["jobs"])
    return [Row(
        benchmark=f"train -> generate -> evaluate as Celery jobs ({data['mode']} sizes)",
        ours=f"chain {data['chain_seconds']:.1f} s ({jobs}); training {data['train_images_per_s'] or 0:.1f} img/s",
        goal="every job succeeds", met=data["ok"], correctness=True,
    )]  # fmt: skip


def adapt_export(data: dict[str, Any]) -> list[Row]:
    plain, ours, goals = data["plain"], data["ours"], data["goals"]
    return [
        Row(
            benchmark=f"CSV export, {data['rows']:,} responses ({data['database']}): time",
            baseline=f"csv.writer loop: {_fmt(plain['seconds'], ' s')}",
            ours=f"streaming view: {_fmt(ours['seconds'], ' s')}",
            ratio=f"{data['ratio']:.2f}x time",
            goal=f"<= {goals['ratio']:g}x time",
            met=goals["ratio_met"],
        ),
        Row(
            benchmark=f"CSV export, {data['rows']:,} responses: peak memory",
            baseline=f"csv.writer loop: {_fmt(plain['peak_rss_mb'], ' MB')}",
            ours=f"{_fmt(ours['peak_rss_mb'], ' MB')} (before export {_fmt(ours['rss_before_export_mb'], ' MB')})",
            ratio=f"{ours['peak_rss_mb'] / plain['peak_rss_mb']:.2f}x",
            goal=f"< {goals['peak_rss_mb']} MB",
            met=goals["memory_met"],
        ),
    ]


def adapt_dispatch(data: dict[str, Any]) -> list[Row]:
    return [Row(
        benchmark=f"job dispatch, enqueue -> start (median of {data['samples']})",
        baseline=f"no-op Celery task: {_fmt(data['noop_task_median_ms'], ' ms')}",
        ours=f"lab job: {_fmt(data['job_median_ms'], ' ms')}",
        ratio=f"{data['ratio']:.2f}x latency",
    )]  # fmt: skip


def adapt_roundtrip(data: dict[str, Any]) -> list[Row]:
    sat, paced, goals = data["saturation"], data["paced"], data["goals"]
    front = " behind nginx" if data["server"].startswith("nginx") else ""
    rows = [
        Row(
            benchmark=f"answer: one request vs the plain form post (POST + GET){front}, saturation",
            baseline=f"plain post: {_fmt(sat['plain']['per_second'])}/s, "
                     f"{_fmt(sat['plain']['server_cpu_ms_per_op'], ' ms')} server CPU each",
            ours=f"one request: {_fmt(sat['ours']['per_second'])}/s, "
                 f"{_fmt(sat['ours']['server_cpu_ms_per_op'], ' ms')} server CPU each",
            ratio=f"{data['one_vs_plain_throughput']:.2f}x throughput",
        ),
        Row(
            benchmark=f"answer: one request vs the plain form post{front}, {data['concurrency']} raters at pace: p95",
            baseline=f"plain post: p95 {_fmt(paced['plain']['p95_ms'], ' ms')}",
            ours=f"one request: p95 {_fmt(paced['ours']['p95_ms'], ' ms')}",
            ratio=f"{paced['plain']['p95_ms'] / paced['ours']['p95_ms']:.1f}x faster",
        ),
        Row(
            benchmark=f"rating round trip at saturation{front}, {data['concurrency']} clients: throughput",
            baseline=f"GET /health: {_fmt(sat['baseline']['per_second'])} req/s",
            ours=f"submit-and-next: {_fmt(sat['ours']['per_second'])}/s "
                 f"({_fmt(sat['ours']['server_cpu_ms_per_op'], ' ms')} server CPU each)",
            ratio=f"{data['throughput_ratio']:.2f}x",
            goal=f">= {goals['throughput_ratio']:g}x",
            met=goals["ratio_met"],
        ),
        Row(
            benchmark=f"rating round trip{front}, {data['concurrency']} raters (think {data['think_s'][0]:g}-"
                      f"{data['think_s'][1]:g} s{'' if data.get('paced_images', True) else ', no images'}): p95",
            baseline=f"GET /health: p95 {_fmt(paced['baseline']['p95_ms'], ' ms')}",
            ours=f"submit-and-next: p50 {_fmt(paced['ours']['p50_ms'], ' ms')}, p95 "
                 f"{_fmt(paced['ours']['p95_ms'], ' ms')}, p99 {_fmt(paced['ours']['p99_ms'], ' ms')}",
            ratio=f"{paced['ours']['p95_ms'] / paced['baseline']['p95_ms']:.1f}x p95",
            goal=f"p95 < {goals['p95_ms']:g} ms" + ("" if data["concurrency"] >= 100 else " at 100 clients"),
            met=goals["p95_met"] if data["concurrency"] >= 100 else None,
        ),
    ]  # fmt: skip
    if not data["exactly_once"]:
        rows.append(Row("rating round trip: answers stored exactly once", met=False, correctness=True,
                        ours="answers lost or duplicated"))
    return rows


def adapt_load(data: dict[str, Any]) -> list[Row]:
    rtt, answers = data["ops"]["submit-and-next"], data["answers"]
    intact = data["exactly_once"] and data["all_completed"]
    return [
        Row(
            benchmark=f"load: {data['raters']} raters x {data['trials_per_session']} trials, whole sessions",
            ours=f"{_fmt(data['http']['per_second'])} req/s; submit-and-next p50 {_fmt(rtt['p50_ms'], ' ms')}, "
                 f"p95 {_fmt(rtt['p95_ms'], ' ms')}, p99 {_fmt(rtt['p99_ms'], ' ms')}",
            goal=f"p95 < {data['goal_p95_ms']:g} ms" + ("" if data["raters"] >= 100 else " at 100 raters"),
            met=data["goal_met"] if data["raters"] >= 100 else None,
        ),
        Row(
            benchmark="load: every answer sent stored exactly once",
            ours=f"{answers['sent']} sent, {answers['stored']} stored, {answers['lost']} lost, "
                 f"{answers['duplicated']} duplicated; {data['sessions_completed']}/{data['raters']} sessions done",
            goal="none lost or duplicated",
            met=intact,
            correctness=True,
        ),
    ]  # fmt: skip


def adapt_faults(data: dict[str, Any]) -> list[Row]:
    return [
        Row(
            benchmark=f"fault: {name}",
            ours=f"{sum(c['ok'] for c in s['checks'])}/{len(s['checks'])} checks passed in {s['seconds']:.0f} s"
                 + "".join(f"; FAILED: {c['text'][:80]}" for c in s["checks"] if not c["ok"]),
            goal="nothing lost, duplicated or stuck",
            met=s["passed"],
            correctness=True,
        )  # fmt: skip
        for name, s in data["scenarios"].items()
    ]


def adapt_results_page(data: dict[str, Any]) -> list[Row]:
    goals, base = data["goals"], data["baseline_recompute"]
    size = f"{data['responses']:,} responses"
    rows = [Row(
        benchmark=f"results page, first view ({size}, computes the snapshot): cold",
        baseline=f"recompute per view: {_fmt(base['cold_s'], ' s')}",
        ours=_fmt(data["first_view_cold_s"], " s"),
        ratio=f"{data['first_view_cold_s'] / base['cold_s']:.2f}x time",
        goal=f"< {goals['cold_s']:g} s",
        met=data["first_view_cold_s"] < goals["cold_s"],
    )]
    for row in data["rows"]:
        page = row["name"] == "results page"
        rows.append(Row(
            benchmark=f"results: {row['name']} ({size}): cold / warm",
            baseline=f"recompute per view: {_fmt(base['cold_s'], ' s')} / {_fmt(base['warm_s'], ' s')}" if page else "-",
            ours=f"{_fmt(row['cold_s'], ' s')} / {_fmt(row['warm_s'], ' s')}",
            ratio=f"{row['warm_s'] / base['warm_s']:.2f}x warm time" if page else f"{row['warm_s'] / goals['warm_s']:.2f}x warm goal",
            goal=f"< {goals['cold_s']:g} s / < {goals['warm_s']:g} s",
            met=row["cold_s"] < goals["cold_s"] and row["warm_s"] < goals["warm_s"],
        ))
    return rows  # fmt: skip


def adapt_unknown(data: dict[str, Any]) -> list[Row]:
    return [Row(benchmark="?", error=f"no adapter in run_all.py for this JSON (keys: {', '.join(sorted(data))[:120]})")]


REGISTRY = [
    Benchmark("train_step", "train_step.py", adapt_train_step,
              quick_args=["--size", "64", "--warmup", "1", "--iters", "1"]),
    Benchmark("metrics", "metrics.py", adapt_metrics, quick_args=["--pairs", "50", "--size", "128"]),
    Benchmark("generation", "generation.py", adapt_generation,
              quick_args=["--images", "8", "--size", "64", "--e2e-images", "32"]),
    Benchmark("gpu_chain", "gpu_chain.py", adapt_gpu_chain, quick_args=["--tiny"], checks_correctness=True),
    Benchmark("export", "export.py", adapt_export, quick_args=["--rows", "20000"]),
    Benchmark("dispatch", "dispatch.py", adapt_dispatch, quick_args=["--samples", "3"]),
    Benchmark("roundtrip", "roundtrip.py", adapt_roundtrip, quick_args=["--quick"], checks_correctness=True),
    # The documented deployment: nginx in front sends the images (needs nginx installed).
    Benchmark("roundtrip_nginx", "roundtrip.py", adapt_roundtrip, args=["--front", "nginx"],
              quick_args=["--quick", "--front", "nginx"], checks_correctness=True),
    Benchmark("load", "load/run.py", adapt_load, quick_args=["--short"], checks_correctness=True),
    Benchmark("faults", "faults/run.py", adapt_faults, quick_args=["--short"], checks_correctness=True),
    Benchmark("results_page", "results_page.py", adapt_results_page, quick_args=["--raters", "10", "--trials", "60"]),
]  # fmt: skip


#: Scripts that are not part of ``make bench``, and why (run them alone, as BENCHMARKS.md says).
NOT_IN_MAKE_BENCH = {
    "demo_gan.py": "trains the first-run demo GAN for about 9 minutes and draws a picture",
}


def registry() -> list[Benchmark]:
    """The known benchmarks, then any other ``benchmarks/*.py`` script (run without an adapter)."""
    known = {b.script for b in REGISTRY} | set(NOT_IN_MAKE_BENCH)
    extra = [
        Benchmark(path.stem, path.name, None)
        for path in sorted(BENCHMARKS.glob("*.py"))
        if not path.name.startswith("_") and path.name != Path(__file__).name and path.name not in known
    ]
    return REGISTRY + extra


# --- running -----------------------------------------------------------------------------------


def run_one(bench: Benchmark, *, quick: bool, work: Path) -> tuple[list[Row], dict[str, Any] | None, float]:
    out = work / f"{bench.name}.json"
    command = [sys.executable, str(BENCHMARKS / bench.script), *(bench.quick_args if quick else bench.args),
               "--json", str(out)]  # fmt: skip
    timeout = bench.quick_timeout if quick else bench.timeout
    print(f"== {bench.name}: {shlex.join(command[1:])}", flush=True)
    began = time.monotonic()
    log = work / f"{bench.name}.log"
    try:
        with open(log, "w") as sink:
            done = subprocess.run(command, cwd=ROOT, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout)
        code = done.returncode
    except subprocess.TimeoutExpired:
        code = None
    seconds = time.monotonic() - began
    text = log.read_text(errors="replace")
    last = next((line for line in reversed(text.splitlines()) if line.strip()), "")
    print("\n".join(text.splitlines()[-25:]), flush=True)
    if code is None:
        return [Row(bench.name, error=f"timed out after {timeout:.0f} s")], None, seconds
    data = json.loads(out.read_text()) if out.exists() else None
    if data is None or (code != 0 and not bench.checks_correctness):
        return [Row(bench.name, error=f"exit {code}: {last[:160]}")], data, seconds
    try:
        rows = (bench.adapt or adapt_unknown)(data)
    except Exception as exc:  # a changed JSON format: say so in the table
        return [Row(bench.name, error=f"adapter failed ({type(exc).__name__}: {exc})")], data, seconds
    for row in rows:
        row.benchmark = bench.name if row.benchmark == "?" else row.benchmark
    if code != 0 and all(row.met is not False for row in rows):
        rows.append(Row(bench.name, error=f"exit {code}: {last[:160]}"))
    return rows, data, seconds


def table(rows: list[Row]) -> str:
    header = ("benchmark", "baseline", "ours", "ratio", "goal", "met?", "load before")
    cells = [header] + [(r.benchmark, r.baseline, r.error or r.ours, r.ratio, r.goal, r.met_text, r.load)
                        for r in rows]  # fmt: skip
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = [" | ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "-+-".join("-" * width for width in widths))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run of every benchmark")
    parser.add_argument("--only", action="append", metavar="NAME", help="run only this benchmark (repeatable)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"where to write the JSON (default {RESULTS})")
    args = parser.parse_args()
    benches = registry()
    if args.only:
        unknown = sorted(set(args.only) - {b.name for b in benches})
        if unknown:
            parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(b.name for b in benches)}")
        benches = [b for b in benches if b.name in args.only]

    started = dt.datetime.now(dt.UTC)
    rows: list[Row] = []
    raw: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="ganlab-bench-all-") as tmp:
        for bench in benches:
            load = load_before(bench.name)
            bench_rows, data, seconds = run_one(bench, quick=args.quick, work=Path(tmp))
            for row in bench_rows:
                row.load = f"{load['load_1m']:.2f}" + (" BUSY" if load["busy"] else "")
            rows += bench_rows
            raw[bench.name] = {"seconds": seconds, "load_before": load, "figures": data}
    where = machine()
    command = "python benchmarks/run_all.py " + " ".join(sys.argv[1:])
    print()
    print(f"machine: {where}")
    print(f"date: {started:%Y-%m-%d %H:%M} UTC; command: {command.strip()}" + ("  (QUICK sizes)" if args.quick else ""))
    print(table(rows))
    busy = [name for name, entry in raw.items() if entry["load_before"]["busy"]]
    if busy:
        print(f"WARNING: the machine was busy before {', '.join(busy)}: those figures may be low")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps({
        "date": started.isoformat(timespec="seconds"),
        "machine": where,
        "command": command.strip(),
        "quick": args.quick,
        "rows": [asdict(row) | {"met": row.met_text} for row in rows],
        "benchmarks": raw,
    }, indent=2))  # fmt: skip
    print(f"written: {args.output}")
    return 1 if any(row.error or (row.correctness and row.met is False) for row in rows) else 0


if __name__ == "__main__":
    raise SystemExit(main())
