"""Batched image translation with a trained checkpoint, with a provenance manifest."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader

from ganlab.data.dataset import ImageDataset, expand_sources, to_pixels
from ganlab.data.imageio import encode_png
from ganlab.models.cyclegan import PAPER_NAMES
from ganlab.models.weights import sha256_file
from ganlab.train.checkpoints import load_networks, read_cyclegan_checkpoint
from ganlab.train.runtime import select_device

#: direction -> (translating network, reconstructing network, output domain letter)
DIRECTIONS = {"AtoB": ("G_A", "G_B", "B"), "BtoA": ("G_B", "G_A", "A")}
MANIFEST = "manifest.json"


def generate(
    checkpoint: Path,
    sources: Sequence[Path | str],
    *,
    out_dir: Path,
    direction: str = "AtoB",
    batch_size: int = 8,
    reconstructions: bool = False,
    image_size: int | None = None,
    device: str = "auto",
) -> list[dict[str, Any]]:
    """Translate every image of ``sources`` (files or folders) and write PNGs to ``out_dir``.

    ``AtoB`` applies ``G_A`` (G: X->Y, e.g. benign -> malignant), ``BtoA`` applies ``G_B``
    (F: Y->X). Images are resized to ``image_size`` (default: the training crop size)
    and run in fp32 so the 8-bit output does not depend on the device's autocast.
    With ``reconstructions`` the cycle ``F(G(x))`` (or ``G(F(y))``) is written too.

    Output names are ``NNNNN_<source stem>_fake_B.png`` (``_rec_A.png`` for
    reconstructions). Returns one record per written image - ``output``, ``source``,
    ``direction``, ``kind`` (``translation``/``reconstruction``), ``checkpoint_sha256``
    - and writes them with the checkpoint's config to ``out_dir/manifest.json``.
    """
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {sorted(DIRECTIONS)}, got {direction!r}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    checkpoint = Path(checkpoint)
    payload, config = read_cyclegan_checkpoint(checkpoint)
    assert config.model is not None
    size = image_size or config.image_size
    if size % config.model.image_multiple:
        raise ValueError(
            f"image_size must be a multiple of {config.model.image_multiple} for this model, got {size}"
        )
    paths = expand_sources(sources, what="sources")
    checkpoint_sha = sha256_file(checkpoint)
    forward_name, backward_name, out_domain = DIRECTIONS[direction]
    in_domain = "A" if out_domain == "B" else "B"
    names = (forward_name, backward_name) if reconstructions else (forward_name,)
    torch_device = select_device(device)
    nets = load_networks(payload, config, names, torch_device)

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(ImageDataset(paths, image_size=size), batch_size=batch_size)
    records: list[dict[str, Any]] = []

    def write(pixels: torch.Tensor, indices: torch.Tensor, suffix: str, kind: str) -> None:
        for image, index in zip(to_pixels(pixels), indices.tolist(), strict=True):
            source = paths[index]
            output = out_dir / f"{index:05d}_{source.stem}_{suffix}.png"
            output.write_bytes(encode_png(image))
            records.append(
                {
                    "output": str(output),
                    "source": str(source),
                    "direction": direction,
                    "kind": kind,
                    "checkpoint_sha256": checkpoint_sha,
                }
            )

    with torch.inference_mode():
        for images, _labels, indices in loader:
            fake = nets[forward_name](images.to(torch_device))
            write(fake, indices, f"fake_{out_domain}", "translation")
            if reconstructions:
                write(nets[backward_name](fake), indices, f"rec_{in_domain}", "reconstruction")

    manifest = {
        "generator": "ganlab.train.generation",
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_sha,
        "direction": direction,
        "network": f"{forward_name} ({PAPER_NAMES[forward_name]})",
        "image_size": size,
        "reconstructions": reconstructions,
        "epochs_trained": payload["epoch"],
        "config": payload["config"],
        "images": records,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return records
