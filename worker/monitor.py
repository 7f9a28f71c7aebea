"""What a worker tells the admin's worker monitor: one Celery remote-control command.

``lab_status`` answers a broadcast from the web process with, in one reply, what
Celery's own ``active_queues``, ``active`` and ``stats`` inspect commands report
(computed by the same functions) plus the worker's device, its cores and the torch
threads each of its pool processes uses (:mod:`worker.threads`). One broadcast with a
short timeout then serves the whole monitor page, instead of one round trip per
inspect command; a worker that replies is alive (what ``ping`` would say).

The device comes from NVML (``nvidia-ml-py``), not from torch: the command runs in
the worker's main process, which forks the pool, and creating a CUDA context there
would break every pool process forked after it. NVML reads the driver's view of the
GPU (name, memory in use and total, utilisation) without a CUDA context. Without an
NVIDIA driver the device is the CPU.
"""

from __future__ import annotations

import os
import platform
from typing import Any

from celery.worker import control
from celery.worker.control import inspect_command

from worker.threads import configured_threads, worker_cores

_nvml_ready: bool | None = None


def visible_gpu() -> str | None:
    """The GPU this worker trains on, as CUDA_VISIBLE_DEVICES names it (first entry), or None.

    Unset means device 0 (torch's ``cuda`` default); empty or ``-1`` hides every GPU.
    """
    value = os.environ.get("CUDA_VISIBLE_DEVICES")
    if value is None:
        return "0"
    first = value.split(",")[0].strip()
    if not first or first.startswith("-"):
        return None
    return first


def _nvml():
    """The ``pynvml`` module once NVML is initialised, or None without an NVIDIA driver."""
    global _nvml_ready
    try:
        import pynvml
    except ImportError:
        return None
    if _nvml_ready is None:
        try:
            pynvml.nvmlInit()
            _nvml_ready = True
        except pynvml.NVMLError:
            _nvml_ready = False
    return pynvml if _nvml_ready else None


def _cpu_device() -> dict[str, Any]:
    return {"kind": "cpu", "name": platform.processor() or platform.machine() or "cpu"}


def device_report() -> dict[str, Any]:
    """The worker's device: a GPU's name, memory and utilisation through NVML, else the CPU."""
    which = visible_gpu()
    nvml = _nvml() if which is not None else None
    if nvml is None:
        return _cpu_device()
    try:
        if which.startswith(("GPU-", "MIG-")):
            handle = nvml.nvmlDeviceGetHandleByUUID(which)
        else:
            handle = nvml.nvmlDeviceGetHandleByIndex(int(which))
        memory = nvml.nvmlDeviceGetMemoryInfo(handle)
        name = nvml.nvmlDeviceGetName(handle)
        utilisation = nvml.nvmlDeviceGetUtilizationRates(handle)
    except (nvml.NVMLError, ValueError) as exc:
        return {**_cpu_device(), "error": f"CUDA_VISIBLE_DEVICES={which}: {exc}"}
    return {
        "kind": "cuda",
        "index": which,
        "name": name.decode() if isinstance(name, bytes) else name,
        "memory_used_bytes": int(memory.used),
        "memory_total_bytes": int(memory.total),
        "utilization_percent": int(utilisation.gpu),
    }


@inspect_command()
def lab_status(state, **kwargs) -> dict[str, Any]:
    """Queues, running tasks, pool size, torch threads per pool process, cores and device
    of this worker (for the admin monitor)."""
    stats = control.stats(state)
    return {
        "queues": sorted(queue["name"] for queue in control.active_queues(state)),
        "active": [
            {
                "task": request.get("name"),
                "args": list(request.get("args") or []),
                "time_start": request.get("time_start"),
                "worker_pid": request.get("worker_pid"),
            }
            for request in control.active(state)
        ],
        "pid": stats.get("pid"),
        "uptime_s": stats.get("uptime"),
        "concurrency": (stats.get("pool") or {}).get("max-concurrency"),
        "torch_threads": configured_threads(),
        "cores": worker_cores(),
        "device": device_report(),
    }
