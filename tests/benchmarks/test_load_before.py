"""Benchmarks print the load average before each row and warn only when the machine is busy now."""

from __future__ import annotations

import _env
import pytest


@pytest.mark.parametrize(
    ("load", "busy_now", "warned"),
    [(0.4, 0.9, False), (1.6, 0.9, True), (1.6, 0.05, False), (1.6, None, True)],
)
def test_load_before_warns_on_a_high_load_while_the_cpus_are_in_use(
    monkeypatch, capsys, load, busy_now, warned
):
    """On 2 cores the threshold is a load of 1.0; a high load with idle CPUs is the previous row's."""
    monkeypatch.setattr(_env.os, "getloadavg", lambda: (load, 0.5, 0.25))
    monkeypatch.setattr(_env.os, "cpu_count", lambda: 2)
    monkeypatch.setattr(_env, "cpu_busy_now", lambda: busy_now)
    figures = _env.load_before("some row")
    output = capsys.readouterr().out
    assert f"load average before some row: {load:.2f} 0.50 0.25 on 2 cores" in output
    assert ("WARNING: the machine is busy before some row" in output) is warned
    assert figures == {
        "load_1m": load,
        "load_5m": 0.5,
        "load_15m": 0.25,
        "cores": 2,
        "cpu_busy_now": busy_now,
        "busy": warned,
    }


def test_cpu_busy_now_is_a_share():
    share = _env.cpu_busy_now(0.05)
    assert share is None or 0.0 <= share <= 1.0
