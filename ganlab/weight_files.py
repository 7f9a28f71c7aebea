"""Torch-free facts about the pretrained weights files the lab reads (it never downloads them).

The web process uses this to say, before launching anything, which ImageNet file a
model needs and where to put it; :mod:`ganlab.models.weights` finds, verifies and loads
the files. The names are torchvision's ``IMAGENET1K_V1`` files (what ``pretrained=True``
loaded, as in the founding study); a test checks them against torchvision's enums.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

#: Encoder -> torchvision weights file it loads from ``$TORCH_HOME/hub/checkpoints``.
TORCHVISION_FILES = {
    "resnet50": "resnet50-0676ba61.pth",
    "vgg16": "vgg16-397923af.pth",
}
TORCHVISION_URL = "https://download.pytorch.org/models/"


def hub_checkpoint_dir() -> Path:
    """``$TORCH_HOME/hub/checkpoints``, computed as ``torch.hub.get_dir()`` does
    (``TORCH_HOME``, else ``$XDG_CACHE_HOME/torch``, else ``~/.cache/torch``)."""
    cache = os.environ.get("XDG_CACHE_HOME", os.path.join("~", ".cache"))
    torch_home = os.environ.get("TORCH_HOME", os.path.join(cache, "torch"))
    return Path(os.path.expanduser(torch_home)) / "hub" / "checkpoints"


def missing_imagenet_files(encoders: Iterable[str]) -> dict[str, Path]:
    """For each encoder whose torchvision ImageNet file is not in the hub cache: where it belongs.

    Encoders whose weights ship in a package (EfficientNet-Lite0) are never missing.
    """
    folder = hub_checkpoint_dir()
    return {
        name: folder / TORCHVISION_FILES[name]
        for name in encoders
        if name in TORCHVISION_FILES and not (folder / TORCHVISION_FILES[name]).is_file()
    }
