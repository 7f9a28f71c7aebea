"""The discriminators' history pool: the reference's choices, kept on the device, checkpointed."""

from __future__ import annotations

import pytest
import torch

from ganlab.train.losses import ImagePool


class ListPool:
    """The reference implementation (junyanz ``util/image_pool.py``, with the draws from a
    seeded generator as ours): a list of cloned images, one choice per image."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.images = size, []
        self.generator = torch.Generator().manual_seed(seed)

    def query(self, images: torch.Tensor) -> torch.Tensor:
        out = []
        for image in images:
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


def batches(sizes, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(n, 3, 4, 4, generator=g) for n in sizes]


@pytest.mark.parametrize("pool_size", [1, 3, 50])
def test_same_images_as_the_reference_draw_for_draw(pool_size):
    # batches larger than the pool draw the same slot twice within one query
    sizes = [2, 5, 1, 8, 8, 3, 16, 4, 7]
    ours, reference = ImagePool(pool_size, seed=11), ListPool(pool_size, seed=11)
    for batch in batches(sizes):
        assert torch.equal(ours.query(batch), reference.query(batch))
    assert ours.count == min(pool_size, sum(sizes))
    assert torch.equal(ours.buffer[: ours.count], torch.stack(reference.images))


def test_output_never_aliases_the_history():
    pool = ImagePool(2, seed=0)
    first = pool.query(torch.ones(2, 3, 2, 2))
    pool.query(torch.zeros(4, 3, 2, 2))
    assert torch.equal(first, torch.ones(2, 3, 2, 2))
    batch = torch.full((2, 3, 2, 2), 5.0)
    out = pool.query(batch)
    out.add_(1)
    assert torch.equal(batch, torch.full((2, 3, 2, 2), 5.0))


def test_checkpoint_round_trip_continues_the_same_choices():
    sizes = [3, 3, 3, 3, 3, 3]
    data = batches(sizes, seed=1)
    uninterrupted, reference = ImagePool(4, seed=5), ListPool(4, seed=5)
    expected = [uninterrupted.query(b) for b in data]
    assert all(torch.equal(e, reference.query(b)) for e, b in zip(expected, data, strict=True))

    first = ImagePool(4, seed=5)
    for b in data[:1]:  # not yet full: the state holds 3 of 4 images
        first.query(b)
    state = first.state_dict()
    assert state["images"].shape == (3, 3, 4, 4) and state["images"].device.type == "cpu"
    resumed = ImagePool(4, seed=99)
    resumed.load_state_dict(state, torch.device("cpu"))
    for b, e in zip(data[1:], expected[1:], strict=True):
        assert torch.equal(resumed.query(b), e)

    empty = ImagePool(4, seed=5)
    empty.load_state_dict(ImagePool(4, seed=5).state_dict(), torch.device("cpu"))
    assert empty.count == 0 and torch.equal(empty.query(data[0]), expected[0])
    with pytest.raises(ValueError, match="holds 3 images but pool_size is 2"):
        ImagePool(2, seed=0).load_state_dict(state, torch.device("cpu"))


def test_bf16_images_and_a_precision_change_at_resume():
    pool = ImagePool(2, seed=0)
    pool.query(torch.randn(2, 3, 2, 2))  # fp32 history, then bf16 batches (amp switched on)
    out = pool.query(torch.randn(4, 3, 2, 2).bfloat16())
    assert out.dtype == torch.bfloat16 and pool.buffer.dtype == torch.bfloat16


def test_size_zero_passes_images_through():
    batch = torch.randn(2, 3, 2, 2)
    pool = ImagePool(0, seed=0)
    assert pool.query(batch) is batch
    assert pool.state_dict()["images"].numel() == 0
