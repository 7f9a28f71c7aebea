"""What a worker reports about its device (the live answer of ``lab_status`` is tested with
real workers in tests/scaleout/test_several_machines.py)."""

from __future__ import annotations

import pytest

from worker import monitor


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, "0"), ("", None), ("-1", None), ("2", "2"), ("3,1", "3"), ("GPU-8a1b,1", "GPU-8a1b")],
)
def test_the_gpu_a_worker_uses_follows_cuda_visible_devices(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    else:
        monkeypatch.setenv("CUDA_VISIBLE_DEVICES", value)
    assert monitor.visible_gpu() == expected


def test_a_worker_with_every_gpu_hidden_reports_its_cpu(monkeypatch):
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    device = monitor.device_report()
    assert device["kind"] == "cpu" and device["name"]


def test_a_machine_without_an_nvidia_driver_reports_its_cpu(monkeypatch):
    pynvml = pytest.importorskip("pynvml")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError:
        pass
    else:
        pytest.skip("this machine has an NVIDIA driver (its report is checked live in tests/scaleout)")
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")
    assert monitor.device_report()["kind"] == "cpu"
