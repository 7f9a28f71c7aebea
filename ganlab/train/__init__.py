"""Training, generation and classification for the CycleGAN family.

Public API (imported lazily, so ``python -m ganlab --help`` does not load torch)::

    from ganlab.train import TrainConfig, train, generate
    result = train(config, out_dir=Path("runs/1"), on_progress=callback)  # -> TrainResult
    records = generate(result.checkpoint, [Path("tiles/")], out_dir=Path("out"), direction="AtoB")

    from ganlab.train import ClassifierConfig, train_classifier, predict
    p_malignant = predict(checkpoint, images)   # classifier or semi-supervised CycleGAN

Paper names: G_A = G: X->Y, G_B = F: Y->X, D_A = D_Y, D_B = D_X.
"""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "TrainConfig": "ganlab.train.config",
    "CycleGANTrainer": "ganlab.train.trainer",
    "TrainResult": "ganlab.train.trainer",
    "train": "ganlab.train.trainer",
    "Progress": "ganlab.train.runtime",
    "select_device": "ganlab.train.runtime",
    "generate": "ganlab.train.generation",
    "ClassifierConfig": "ganlab.train.classify",
    "ClassifierResult": "ganlab.train.classify",
    "train_classifier": "ganlab.train.classify",
    "predict": "ganlab.train.classify",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'ganlab.train' has no attribute {name!r}")
    return getattr(importlib.import_module(_EXPORTS[name]), name)
