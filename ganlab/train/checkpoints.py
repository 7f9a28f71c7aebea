"""Reading CycleGAN checkpoints back: config and individual networks for inference."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from ganlab.models.cyclegan import build_network
from ganlab.train.config import TrainConfig
from ganlab.train.runtime import load_checkpoint

CYCLEGAN_KIND = "cyclegan"


def read_cyclegan_checkpoint(path: Path) -> tuple[dict[str, Any], TrainConfig]:
    """The checkpoint payload and its validated :class:`TrainConfig`."""
    payload = load_checkpoint(path)
    if payload["kind"] != CYCLEGAN_KIND:
        raise ValueError(f"{path} is a {payload['kind']!r} checkpoint, expected a CycleGAN one")
    return payload, TrainConfig.from_dict(payload["config"])


def load_networks(
    payload: dict[str, Any], config: TrainConfig, names: tuple[str, ...], device: torch.device
) -> dict[str, nn.Module]:
    """Rebuild networks ``names`` (of G_A, G_B, D_A, D_B) in eval mode with the checkpoint's weights.

    No ImageNet file is read: the architecture is built empty and the checkpoint fills it.
    """
    assert config.model is not None
    networks = {}
    for name in names:
        net = build_network(config.model, name, load_weights=False)
        net.load_state_dict(payload["networks"][name])
        networks[name] = net.to(device).eval()
    return networks
