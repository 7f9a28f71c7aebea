"""benchmarks/export.py runs end to end on a small study and reports both sides."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_export_benchmark_small(tmp_path):
    out = tmp_path / "export.json"
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "export.py"), "--rows", "3000", "--json", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(out.read_text())
    assert report["rows"] == 3000
    for side in ("ours", "plain"):
        assert report[side]["rows"] == 3000
        assert 0 < report[side]["rss_before_export_mb"] <= report[side]["peak_rss_mb"]
    assert report["ratio"] == report["ours"]["seconds"] / report["plain"]["seconds"]
    assert "ratio ours/plain" in result.stdout
