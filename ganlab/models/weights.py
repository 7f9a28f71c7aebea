"""Offline pretrained weights: find a local file, verify its checksum, load it.

Nothing here downloads. A weights file is looked up, in order, at an explicit path
given by the caller, in torch's hub cache (``$TORCH_HOME/hub/checkpoints/<file>``,
where ``torch.hub.load_state_dict_from_url`` would have put it), and in an installed
package that ships it. When none has it, :class:`MissingWeightsError` says exactly
which file to put where.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch

from ganlab.weight_files import hub_checkpoint_dir


class MissingWeightsError(FileNotFoundError):
    """A pretrained weights file is not on this machine; the message says where to put it."""


class WeightsChecksumError(ValueError):
    """A weights file exists but its sha256 is not the published one."""


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(chunk_size):
            digest.update(chunk)
    return digest.hexdigest()


@dataclass(frozen=True)
class WeightsFile:
    """One published weights file.

    ``sha256`` may be the full digest or, as torchvision publishes it in the file name
    (``resnet50-0676ba61.pth``), its leading hex digits; either is checked as a prefix.
    ``packaged`` returns the path of a copy shipped inside an installed package, if any.
    """

    description: str
    filename: str
    sha256: str
    url: str
    packaged: Callable[[], Path | None] | None = None

    def candidates(self, explicit: Path | None) -> list[Path]:
        """Where the file may be, in lookup order."""
        if explicit is not None:
            return [Path(explicit)]
        paths = [hub_checkpoint_dir() / self.filename]
        if self.packaged is not None and (shipped := self.packaged()) is not None:
            paths.append(shipped)
        return paths

    def resolve(self, explicit: Path | None = None) -> Path:
        """The verified local path of this file.

        Raises:
            MissingWeightsError: no candidate exists; names the exact path to fill.
            WeightsChecksumError: the file found has another sha256.
        """
        for path in self.candidates(explicit):
            if path.is_file():
                digest = sha256_file(path)
                if not digest.startswith(self.sha256):
                    raise WeightsChecksumError(
                        f"{self.description}: {path} has sha256 {digest}, expected one starting "
                        f"with {self.sha256}. Replace it with the file published at {self.url}."
                    )
                return path
        target = Path(explicit) if explicit is not None else hub_checkpoint_dir() / self.filename
        raise MissingWeightsError(
            f"{self.description} weights not found: put the file {self.filename} "
            f"(sha256 {self.sha256}..., published at {self.url}; copy it from a machine with "
            f"internet access) at {target}"
            + (
                ""
                if explicit is not None
                else " (or set TORCH_HOME so that $TORCH_HOME/hub/checkpoints holds it, "
                "or give its path in the model config's weights_paths)"
            )
            + ", or set encoder_weights='random' in the model config to train from scratch."
        )

    def load_state_dict(self, explicit: Path | None = None) -> dict[str, torch.Tensor]:
        """Resolve, verify and load the file as a tensor ``state_dict`` (``weights_only``)."""
        return torch.load(self.resolve(explicit), map_location="cpu", weights_only=True)
