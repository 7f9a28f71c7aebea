"""Device choice, precision, seeding, RNG snapshots, progress and checkpoint files.

Shared by CycleGAN training, the standalone classifier, generation and the benchmark.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ganlab.models.weights import sha256_file

DEVICES = ("auto", "cpu", "cuda", "mps")
AMP_MODES = ("auto", "bf16", "off")


def select_device(requested: str = "auto") -> torch.device:
    """``auto`` picks cuda, then mps, then cpu; an explicit choice that is absent raises ``ValueError``."""
    if requested == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    device = torch.device(requested)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device {requested!r} requested but CUDA is not available; use 'auto' or 'cpu'"
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(
            f"device {requested!r} requested but MPS is not available; use 'auto' or 'cpu'"
        )
    return device


def autocast_dtype(amp: str, device: torch.device) -> torch.dtype | None:
    """bf16 on CUDA for ``auto``/``bf16``; ``None`` (fp32) elsewhere or with ``off``."""
    if amp == "off":
        return None
    if amp == "bf16" and device.type != "cuda":
        raise ValueError(f"amp='bf16' needs a CUDA device, got {device}; use amp='auto' or 'off'")
    return torch.bfloat16 if device.type == "cuda" else None


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """Autocast context for ``dtype`` (no-op when ``None``)."""
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


def seed_everything(seed: int, *, deterministic: bool = True) -> None:
    """Seed Python, NumPy and torch (all devices) and choose cuDNN's kernel policy.

    ``deterministic``: cuDNN uses deterministic kernels, so a run repeats bit for bit;
    otherwise it autotunes (``cudnn.benchmark``) for speed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    torch.backends.cudnn.deterministic = deterministic
    torch.backends.cudnn.benchmark = not deterministic


def rng_state() -> dict[str, Any]:
    """Snapshot of the global RNGs that training consumes (torch CPU/CUDA, Python)."""
    state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": random.getstate()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore a :func:`rng_state` snapshot."""
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_atomic(payload: dict[str, Any], path: Path) -> str:
    """``torch.save`` to a temporary file then rename, so a crash never leaves half a file.

    Returns the sha256 of the written file.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    torch.save(payload, tmp)
    os.replace(tmp, path)
    return sha256_file(path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    """Load a ganlab checkpoint on CPU with ``weights_only=True`` (no code runs from the file)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(payload, dict) or "kind" not in payload:
        raise ValueError(f"{path} is not a ganlab checkpoint (no 'kind' entry)")
    return payload


@dataclass
class Progress:
    """One training-progress report, passed to ``on_progress`` after every iteration.

    ``epoch`` is 1-based and counts toward ``total_epochs``; ``iteration`` is the
    1-based iteration within the epoch; ``losses`` are this iteration's values by
    reference name (``D_A``, ``G_A``, ``cycle_A``, ``idt_A``, ..., ``cls_A``);
    ``images_per_s`` is smoothed over recent iterations; ``eta_s`` is the estimated
    time to the end of training.
    """

    epoch: int
    total_epochs: int
    iteration: int
    iterations_per_epoch: int
    global_step: int
    total_steps: int
    losses: dict[str, float]
    images_per_s: float
    eta_s: float
    elapsed_s: float
    lr: float


ProgressCallback = Callable[[Progress], "bool | None"]


@dataclass
class Throughput:
    """Exponential moving average of images/s over iterations, and the run's clock."""

    smoothing: float = 0.9
    images_per_s: float = 0.0
    started: float = field(default_factory=time.perf_counter)
    _last: float = field(default_factory=time.perf_counter)

    @property
    def elapsed_s(self) -> float:
        return time.perf_counter() - self.started

    def progress(
        self, images: int, *, global_step: int, total_steps: int, batch_size: int, **fields: Any
    ) -> Progress:
        """Count ``images`` just trained on and build the :class:`Progress` of this iteration
        (speed, ETA from the remaining steps at the smoothed speed, elapsed time)."""
        rate = self.update(images)
        return Progress(
            global_step=global_step,
            total_steps=total_steps,
            images_per_s=rate,
            eta_s=(total_steps - global_step) * batch_size / rate,
            elapsed_s=self.elapsed_s,
            **fields,
        )

    def update(self, images: int) -> float:
        now = time.perf_counter()
        rate = images / max(now - self._last, 1e-9)
        self._last = now
        self.images_per_s = (
            rate
            if self.images_per_s == 0
            else self.smoothing * self.images_per_s + (1 - self.smoothing) * rate
        )
        return self.images_per_s


def peak_memory_bytes(device: torch.device) -> int:
    """Peak allocated accelerator memory since the last reset (0 on CPU)."""
    if device.type == "cuda":
        return int(torch.cuda.max_memory_allocated(device))
    return 0


def report(
    progress: Progress, on_progress: ProgressCallback | None, stop_event: threading.Event | None
) -> bool:
    """Deliver ``progress``; True when the callback returned True or ``stop_event`` is set."""
    stop = on_progress is not None and on_progress(progress) is True
    return stop or (stop_event is not None and stop_event.is_set())
