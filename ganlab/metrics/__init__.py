"""Automatic evaluation metrics: SSIM/PSNR/MSE, classification, FCN-score, FID/KID.

:func:`evaluate` (in :mod:`ganlab.metrics.report`) computes all of them for a job and
writes one JSON report; the submodules hold each metric with its definition. Importing
this package is cheap: ``evaluate`` and the torch-heavy modules load on first use.
"""

from __future__ import annotations

from typing import Any

__all__ = ["evaluate"]


def __getattr__(name: str) -> Any:
    if name == "evaluate":
        from ganlab.metrics.report import evaluate

        return evaluate
    raise AttributeError(f"module 'ganlab.metrics' has no attribute {name!r}")
