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

    The history is one preallocated ``(size, C, H, W)`` tensor on the images' device,
    updated in place: a query plans its draws on the CPU generator (no device sync)
    and then moves images with a few device-side copies, instead of cloning every
    image into a list and stacking a new batch. The choices, and so training, are the
    reference's draw for draw.
    """

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.count = 0  # images stored so far (the pool is full at ``size``)
        self.buffer: torch.Tensor | None = None  # allocated at the first query
        self.generator = torch.Generator().manual_seed(seed)

    def _plan(self, n: int) -> tuple[list[tuple[bool, int]], dict[int, int]]:
        """The draws for ``n`` new images, in the reference's order.

        Returns, per new image, ``(from_history, index)``: a slot of the history as it
        was before this query, or the position of a new image in this batch (itself, or
        an earlier one stored into the slot drawn); and the slots written, each with the
        position of the last new image stored there.
        """
        returned: list[tuple[bool, int]] = []
        stored: dict[int, int] = {}
        for i in range(n):
            if self.count < self.size:
                stored[self.count] = i
                self.count += 1
                returned.append((False, i))
            elif torch.rand((), generator=self.generator).item() > 0.5:
                slot = int(torch.randint(0, self.size, (), generator=self.generator))
                returned.append((False, stored[slot]) if slot in stored else (True, slot))
                stored[slot] = i
            else:
                returned.append((False, i))
        return returned, stored

    def query(self, images: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) new images -> (B, C, H, W) images for the discriminator."""
        if self.size == 0:
            return images
        images = images.detach()
        if self.buffer is None:
            self.buffer = images.new_empty((self.size, *images.shape[1:]))
        elif self.buffer.dtype != images.dtype:  # amp switched on or off at a resume
            self.buffer = self.buffer.to(images.dtype)
        returned, stored = self._plan(images.shape[0])
        out = images.clone()
        for i, (from_history, index) in enumerate(returned):
            if from_history:
                out[i].copy_(self.buffer[index])
            elif index != i:
                out[i].copy_(images[index])
        for slot, index in stored.items():
            self.buffer[slot].copy_(images[index])
        return out

    def state_dict(self) -> dict[str, Any]:
        stored = (
            self.buffer[: self.count].cpu()
            if self.buffer is not None and self.count
            else torch.empty(0)
        )
        return {"images": stored, "generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any], device: torch.device) -> None:
        images = state["images"]
        self.count = len(images) if images.numel() else 0
        if self.count > self.size:
            raise ValueError(
                f"the checkpoint's image pool holds {self.count} images but pool_size is {self.size}"
            )
        self.buffer = None
        if self.count:
            self.buffer = images.new_empty((self.size, *images.shape[1:]), device=device)
            self.buffer[: self.count].copy_(images)
        self.generator.set_state(state["generator"])
