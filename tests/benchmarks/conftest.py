"""Runs the benchmark scripts as subprocesses, the way CI and ``make bench`` do."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
BENCHMARKS = ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))


def database_option() -> str:
    """PostgreSQL (a throw-away database on DATABASE_URL's server) when CI sets DATABASE_URL, else SQLite."""
    return "postgres" if os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://")) else "sqlite"


@pytest.fixture
def run_script(tmp_path):
    """``run_script("load/run.py", "--short")`` -> (return code, output, the --json figures)."""

    def run(script: str, *args: str, timeout: float) -> tuple[int, str, dict[str, Any]]:
        out = tmp_path / "figures.json"
        env = {key: value for key, value in os.environ.items() if key != "DJANGO_SETTINGS_MODULE"}
        try:
            done = subprocess.run(
                [sys.executable, str(BENCHMARKS / script), *args, "--database", database_option(), "--json", str(out)],
                cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout,
            )  # fmt: skip
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"{script} ran over {timeout:.0f} s:\n{(exc.stdout or b'')[-4000:]!r}")
        output = done.stdout + done.stderr
        figures = json.loads(out.read_text()) if out.exists() else {}
        return done.returncode, output, figures

    return run
