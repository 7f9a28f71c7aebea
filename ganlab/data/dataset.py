"""Torch datasets over image files: deterministic per-epoch order and augmentation.

Every random choice (order, crop, flip) is drawn from a NumPy generator seeded by
``(seed, epoch, index)``, never from global state, so a run interrupted in the middle
of an epoch resumes on exactly the batches it would have seen, with any number of
loader workers. Images are [-1, 1] float tensors (the CycleGAN convention).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from ganlab.data.imageio import SUPPORTED_SUFFIXES, load_rgb, resize

UNLABELLED = -1


def expand_sources(sources: Sequence[str | Path], *, what: str = "sources") -> list[Path]:
    """Image files named by ``sources``: files as given, folders searched recursively (sorted).

    Raises:
        FileNotFoundError: a source does not exist (named in the message).
        ValueError: no image file was found (``what`` names the config field).
    """
    paths: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            paths += sorted(
                p
                for p in source.rglob("*")
                if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES
            )
        elif source.is_file():
            paths.append(source)
        else:
            raise FileNotFoundError(f"{what}: {source} does not exist")
    if not paths:
        raise ValueError(
            f"{what}: no image files ({', '.join(sorted(SUPPORTED_SUFFIXES))}) in {[str(s) for s in sources]}"
        )
    return paths


def to_tensor(pixels: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, 3) -> float32 (3, H, W) in [-1, 1] (copies: decoded arrays may be read-only)."""
    return torch.from_numpy(np.array(pixels)).permute(2, 0, 1).float().div(127.5).sub(1.0)


def to_pixels(images: torch.Tensor) -> np.ndarray:
    """float (B, 3, H, W) in [-1, 1] -> uint8 (B, H, W, 3), rounded."""
    scaled = (images.detach().float().clamp(-1, 1) + 1.0) * 127.5
    return scaled.round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()


def select_labelled(labels: Sequence[int], fraction: float, seed: int) -> list[int]:
    """Keep ``fraction`` of the known labels per class (at least one while > 0), hide the rest.

    The kept subset is a deterministic function of ``seed``; hidden labels become
    :data:`UNLABELLED`. This is how the semi-supervised setting's label fraction is drawn.
    """
    result = [UNLABELLED] * len(labels)
    rng = np.random.default_rng([seed, 7])
    for cls in sorted({label for label in labels if label != UNLABELLED}):
        members = [i for i, label in enumerate(labels) if label == cls]
        keep = max(1, round(fraction * len(members))) if fraction > 0 else 0
        for i in rng.permutation(members)[:keep]:
            result[int(i)] = cls
    return result


class ImageDataset(Dataset):
    """Images with optional labels, resized (and, for training, randomly cropped/flipped).

    With ``load_size`` the image is resized to ``load_size`` and a random
    ``image_size`` crop is taken (the reference's ``resize_and_crop``); otherwise it
    is resized to ``image_size``. ``flip`` mirrors horizontally with p=0.5; ``rotate``
    (for histology, which has no canonical orientation) adds a random multiple of 90
    degrees and a vertical flip. Items are ``(image, label, index)``.
    """

    def __init__(
        self,
        paths: Sequence[Path],
        labels: Sequence[int] | None = None,
        *,
        image_size: int,
        load_size: int | None = None,
        flip: bool = False,
        rotate: bool = False,
        seed: int = 0,
    ) -> None:
        self.paths = list(paths)
        self.labels = list(labels) if labels is not None else [UNLABELLED] * len(self.paths)
        if len(self.labels) != len(self.paths):
            raise ValueError(f"{len(self.labels)} labels for {len(self.paths)} images")
        self.image_size = image_size
        self.load_size = load_size
        self.flip = flip
        self.rotate = rotate
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch whose random crops/flips ``__getitem__`` draws."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int, draw: int | None = None) -> torch.Tensor:
        """Image ``index`` as (3, S, S) in [-1, 1]; ``draw`` keys the augmentation RNG."""
        pixels = load_rgb(self.paths[index])
        rng = np.random.default_rng([self.seed, self.epoch, index if draw is None else draw])
        if self.load_size is not None and self.load_size > self.image_size:
            pixels = resize(pixels, self.load_size)
            top, left = rng.integers(0, self.load_size - self.image_size + 1, size=2)
            pixels = pixels[top : top + self.image_size, left : left + self.image_size]
        else:
            pixels = resize(pixels, self.image_size)
        if self.flip and rng.random() < 0.5:
            pixels = pixels[:, ::-1]
        if self.rotate:
            pixels = np.rot90(pixels, k=int(rng.integers(0, 4)))
            if rng.random() < 0.5:
                pixels = pixels[::-1]
        return to_tensor(pixels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int, int]:
        return self.load(index), self.labels[index], index


class UnalignedDataset(Dataset):
    """Unpaired domains X (``A``) and Y (``B``) for CycleGAN.

    An epoch has ``max(len(X), len(Y))`` items; item ``i`` pairs the ``i``-th entries
    of independent per-epoch permutations of X and Y (cycled when one is shorter).
    Items are dicts with ``A``, ``B`` (images), ``A_label``, ``B_label`` (class id or
    :data:`UNLABELLED`) and ``A_index``, ``B_index``.
    """

    def __init__(self, domain_x: ImageDataset, domain_y: ImageDataset, *, seed: int = 0) -> None:
        self.domain_x = domain_x
        self.domain_y = domain_y
        self.seed = seed
        self.set_epoch(0)

    def set_epoch(self, epoch: int) -> None:
        """Fix this epoch's order and augmentation draws."""
        self.epoch = epoch
        self.domain_x.set_epoch(epoch)
        self.domain_y.set_epoch(epoch)
        self.order_x = np.random.default_rng([self.seed, epoch, 0]).permutation(len(self.domain_x))
        self.order_y = np.random.default_rng([self.seed, epoch, 1]).permutation(len(self.domain_y))

    def __len__(self) -> int:
        return max(len(self.domain_x), len(self.domain_y))

    def __getitem__(self, index: int) -> dict[str, torch.Tensor | int]:
        ix = int(self.order_x[index % len(self.domain_x)])
        iy = int(self.order_y[index % len(self.domain_y)])
        # draw keyed by position in the epoch, so a repeated image gets a fresh crop
        return {
            "A": self.domain_x.load(ix, draw=2 * index),
            "B": self.domain_y.load(iy, draw=2 * index + 1),
            "A_label": self.domain_x.labels[ix],
            "B_label": self.domain_y.labels[iy],
            "A_index": ix,
            "B_index": iy,
        }
