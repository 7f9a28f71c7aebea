"""CI form of the fault scripts: each scenario in its short form must pass every check
(no answer lost or duplicated, no job stuck, the killed job resumed from its checkpoint)."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.slow]


def _run(run_script, scenario: str, timeout: float) -> dict:
    code, output, figures = run_script("faults/run.py", scenario, "--short", timeout=timeout)
    outcome = figures.get("scenarios", {}).get(scenario, {})
    assert code == 0 and outcome.get("passed"), output[-5000:]
    assert outcome["checks"] and all(check["ok"] for check in outcome["checks"])
    return outcome


def test_web_server_kill9_mid_load_loses_and_duplicates_nothing(run_script):
    outcome = _run(run_script, "web-kill", timeout=240)
    texts = " ".join(check["text"] for check in outcome["checks"])
    assert "requests failed and were retried" in texts and "stored exactly once" in texts


@pytest.mark.worker
def test_redis_restart_with_queued_and_running_jobs_leaves_none_stuck(run_script):
    outcome = _run(run_script, "redis-restart", timeout=400)
    assert any("every job succeeded" in check["text"] for check in outcome["checks"])


@pytest.mark.worker
def test_sigkilled_worker_job_resumes_from_checkpoint(run_script):
    outcome = _run(run_script, "worker-kill", timeout=400)
    assert any("resumed from latest.pt" in check["text"] for check in outcome["checks"])
