"""How many CPU threads torch may use in a worker, so that jobs never oversubscribe the cores.

A CPU training step at 64 px took 1.87 s alone and 28 s while three processes shared
two cores: each process's OpenMP pool starts one thread per core, and threads that
outnumber the cores spin-wait for each other at every parallel region. So a worker
gives each of its pool processes ``cores // concurrency`` intra-op threads (at least
one), or ``WORKER_TORCH_THREADS`` when that is set. The cores are those the worker may
run on: its CPU affinity and any cgroup CPU quota (Celery's own ``cpu_budget``, which
also sizes ``--concurrency auto``).

The choice is made once in the worker's main process, before the pool forks
(:func:`threads_configure`, from the ``celeryd_after_setup`` signal): it is logged,
exported as ``OMP_NUM_THREADS``/``MKL_NUM_THREADS``/``OPENBLAS_NUM_THREADS`` so that
every process started below the worker (pool processes, subprocesses) starts its
OpenMP/BLAS pools at that size, and kept here for the pool processes (forked copies
inherit it). Each job applies it with ``torch.set_num_threads``
(:func:`torch_threads_apply`). DataLoader worker processes need nothing: torch runs
them with one thread each.
"""

from __future__ import annotations

import logging
import os

log = logging.getLogger(__name__)

#: Environment variables that size the OpenMP, MKL and OpenBLAS thread pools of child processes.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")

#: Threads chosen by :func:`threads_configure` in this worker (``None`` outside a worker).
_chosen: int | None = None


def torch_threads_for(*, cores: int, concurrency: int, setting: int = 0) -> int:
    """Intra-op threads per pool process: ``setting`` when positive, else ``cores // concurrency``, at least 1."""
    if setting > 0:
        return setting
    return max(1, cores // max(1, concurrency))


def worker_cores() -> int:
    """CPUs this process may use: its affinity, capped by a cgroup CPU quota (rounded up)."""
    from celery.utils.sysinfo import cpu_budget

    return cpu_budget().count


def threads_configure(*, concurrency: int) -> int:
    """Choose the worker's torch threads, export them to child processes and log the choice."""
    global _chosen
    from django.conf import settings

    cores = worker_cores()
    setting = settings.WORKER_TORCH_THREADS
    threads = torch_threads_for(cores=cores, concurrency=concurrency, setting=setting)
    for name in THREAD_ENV:
        os.environ[name] = str(threads)
    _chosen = threads
    source = (
        "WORKER_TORCH_THREADS" if setting > 0 else f"{cores} cores // concurrency {concurrency}"
    )
    log.info("torch CPU threads per pool process: %d (%s)", threads, source)
    if threads * concurrency > cores:
        log.warning(
            "%d pool processes x %d threads = %d threads on %d cores: CPU jobs will oversubscribe "
            "the cores and slow each other down; lower WORKER_TORCH_THREADS or --concurrency",
            concurrency,
            threads,
            threads * concurrency,
            cores,
        )
    return threads


def configured_threads() -> int | None:
    """The threads this worker chose (``None`` in a process that is not a configured worker)."""
    return _chosen


def torch_threads_apply() -> int:
    """Set torch's intra-op threads to the worker's choice; returns the threads torch now uses.

    Outside a configured worker (a job run in-process by a test or a shell) torch keeps its own setting.
    """
    import torch

    if _chosen is not None and torch.get_num_threads() != _chosen:
        torch.set_num_threads(_chosen)
    return torch.get_num_threads()
