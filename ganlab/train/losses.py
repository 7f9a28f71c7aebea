"""GAN objectives and the generated-image history pool (Shrivastava et al. 2017)."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F


def gan_loss(prediction: torch.Tensor, target_is_real: bool, mode: str) -> torch.Tensor:
    """Adversarial loss of patch logits against an all-real or all-fake target.

    ``lsgan`` (the CycleGAN default, Mao et al. 2017): mean (D(x) - t)^2 with t in {0, 1},
    so the generator minimises E[(D_Y(G(x)) - 1)^2]. ``vanilla``: binary cross-entropy
    on logits. Always computed in fp32, also under bf16 autocast.
    """
    prediction = prediction.float()
    target = torch.full_like(prediction, 1.0 if target_is_real else 0.0)
    if mode == "lsgan":
        return F.mse_loss(prediction, target)
    if mode == "vanilla":
        return F.binary_cross_entropy_with_logits(prediction, target)
    raise ValueError(f"unknown gan_mode {mode!r}; use 'lsgan' or 'vanilla'")


class ImagePool:
    """History of up to ``size`` generated images shown to a discriminator.

    Reference behaviour: while filling, return the new image; afterwards, with
    probability 0.5 return a random stored image and store the new one in its place,
    else return the new image. Draws come from the pool's own generator so they are
    part of the checkpoint and a resumed run makes the same choices.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.images: list[torch.Tensor] = []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) new images -> (B, C, H, W) images for the discriminator."""
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            if len(self.images) < self.size:
                self.images.append(image.clone())
                out.append(image)
            elif torch.rand((), generator=self.generator).item() > 0.5:
                slot = int(torch.randint(0, self.size, (), generator=self.generator))
                out.append(self.images[slot])
                self.images[slot] = image.clone()
            else:
                out.append(image)
        return torch.stack(out)

    def state_dict(self) -> dict[str, Any]:
        stored = torch.stack(self.images).cpu() if self.images else torch.empty(0)
        return {"images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        self.images = (
            [image.to(device) for image in state["images"]] if state["images"].numel() else []
        )
        self.generator.set_state(state["generator"])
