"""Training recipes the lab ships, as plain data (torch-free: the web process reads them).

:data:`DEMO` is what a newcomer's first ``make run`` trains: the ``demo`` preset (the
reference CycleGAN with ``resnet_6blocks`` generators and 16-filter networks, see
:mod:`ganlab.models.cyclegan`) on the 64x64 demo tiles of :mod:`ganlab.data.demo`. Its
length is given in minutes and turned into epochs with the speed measured on the
reference machine (2 CPU cores), so the same minutes always give the same model: a
faster machine finishes sooner, it never trains longer. ``benchmarks/demo_gan.py``
measures the speed and what the demo reaches (README "The demo").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class DemoRecipe:
    """The first-run demo: data size, architecture, optimisation and how long to train.

    Attributes:
        preset: the ganlab preset; ``ngf``/``ndf`` repeat its widths because job configs
            carry them explicitly.
        image_size: side of the demo tiles, trained at their native size (no crop).
        train_per_class, test_per_class: demo tiles per class in each split.
        batch_size: image pairs per step (instance norm makes every sample independent).
        pairs_per_s: training speed on the reference machine (2 CPU cores, 2 threads),
            from ``benchmarks/demo_gan.py``; it only converts minutes to epochs.
        minutes: default training time on the reference machine: 120 epochs, measured at
            8.6 minutes. Generation, evaluation (``fcn_steps``) and the study add well under a
            minute there, keeping the whole chain within 10 minutes.
        fcn_steps: training steps of the evaluation's FCN-score segmenter.
        seed: seeds initialisation, data order and augmentation.
        direction: what the demo generates: ``AtoB``, benign -> malignant test tiles.
    """

    preset: str = "demo"
    ngf: int = 16
    ndf: int = 16
    image_size: int = 64
    train_per_class: int = 64
    test_per_class: int = 16
    batch_size: int = 4
    pairs_per_s: float = 14.9
    minutes: float = 8.6
    fcn_steps: int = 150
    seed: int = 0
    direction: str = "AtoB"

    @property
    def model(self) -> dict[str, int]:
        """The ``model`` overrides of a ``TrainConfig`` (the preset's own widths)."""
        return {"ngf": self.ngf, "ndf": self.ndf}

    def epochs(self, minutes: float | None = None) -> int:
        """Whole epochs that fit ``minutes`` (default :attr:`minutes`) on the reference machine; at least 1."""
        minutes = self.minutes if minutes is None else minutes
        if not (isinstance(minutes, int | float) and math.isfinite(minutes) and minutes > 0):
            raise ValueError(f"minutes must be a positive number, got {minutes!r}")
        seconds_per_epoch = self.train_per_class / self.pairs_per_s
        return max(1, int(minutes * 60 // seconds_per_epoch))

    def schedule(self, minutes: float | None = None) -> tuple[int, int]:
        """``(n_epochs, n_epochs_decay)``: half at constant LR, half decaying, as the reference."""
        total = self.epochs(minutes)
        constant = math.ceil(total / 2)
        return constant, total - constant

    def train_settings(self, minutes: float | None = None) -> dict[str, Any]:
        """Fields shared by ``ganlab.train.TrainConfig`` and a lab train job's config."""
        n_epochs, n_epochs_decay = self.schedule(minutes)
        return {
            "preset": self.preset,
            "image_size": self.image_size,
            "load_size": self.image_size,
            "batch_size": self.batch_size,
            "n_epochs": n_epochs,
            "n_epochs_decay": n_epochs_decay,
            "seed": self.seed,
        }


DEMO = DemoRecipe()
