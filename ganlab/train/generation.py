"""Batched image translation with a trained checkpoint, with a provenance manifest.

Three stages overlap when :class:`GenerationSettings` asks for it: decoding and
resizing the sources (DataLoader worker processes, pinned memory on CUDA), the
generator on the device, and converting, PNG-encoding and writing the outputs
(:class:`PngWriter` threads). Each stage's order is kept, so the files, the records
and the manifest are the same as with everything in one thread.
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections import deque
from collections.abc import Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from ganlab.data.dataset import ImageDataset, expand_sources, to_pixels
from ganlab.data.imageio import encode_png
from ganlab.models.cyclegan import PAPER_NAMES
from ganlab.models.dataclass_io import check_field_types, require
from ganlab.models.weights import sha256_file
from ganlab.train.checkpoints import load_networks, read_cyclegan_checkpoint
from ganlab.train.config import COMPILE_MODES, CUDA_GRAPH_MODES
from ganlab.train.runtime import autocast, autocast_dtype, select_device

#: direction -> (translating network, reconstructing network, output domain letter)
DIRECTIONS = {"AtoB": ("G_A", "G_B", "B"), "BtoA": ("G_B", "G_A", "A")}
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class GenerationSettings:
    """How generation runs. Decoding workers and writer threads never change a pixel;
    ``amp``, ``channels_last`` and ``compile`` run other kernels, whose rounding can move
    an 8-bit value by a step.

    amp: ``off`` (fp32: the 8-bit output does not depend on autocast) | ``bf16``
        (CUDA only; faster).
    channels_last: NHWC memory layout for the networks and the batches.
    compile: ``torch.compile`` the networks with ``compile_mode``; the last batch is
        padded to ``batch_size`` so that one graph (and one CUDA graph) serves all.
    num_workers: DataLoader processes that decode and resize the sources while the
        device computes (0: in this process, between batches).
    writer_threads: threads that convert, PNG-encode and write outputs while the next
        batch computes (0: in this thread, after each batch).
    """

    amp: str = "off"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    num_workers: int = 0
    writer_threads: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        require(self.amp in ("off", "bf16"), self, "amp", "must be 'off' or 'bf16'")
        require(
            self.compile_mode in COMPILE_MODES,
            self,
            "compile_mode",
            f"must be one of {COMPILE_MODES}",
        )
        for name in ("num_workers", "writer_threads"):
            require(getattr(self, name) >= 0, self, name, "must be >= 0")

    @classmethod
    def for_device(cls, device: torch.device) -> GenerationSettings:
        """The default on ``device``: on CUDA, decoding and encoding overlap the GPU on the
        machine's cores, in fp32 (the pixels of the one-thread path); elsewhere one thread:
        the network already keeps the CPU's cores busy, and on 2 cores overlapping measured
        0.84-1.08x (``benchmarks/generation.py``)."""
        if device.type != "cuda":
            return cls()
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        workers = min(4, max(1, (cores or 1) // 4))
        return cls(num_workers=workers, writer_threads=max(1, (cores or 1) - workers - 1))


class PngWriter:
    """Converts batches of generated images to 8-bit PNG files, in order, on ``threads``
    background threads (0: at once, in the calling thread).

    At most ``2 * threads`` batches wait (``submit`` blocks for the oldest beyond that),
    which bounds the device memory that pending batches hold. A failed write is raised
    again by the next :meth:`submit` or by :meth:`close`; leaving the ``with`` block on
    an exception drops the writes not yet started and waits for the running ones.
    """

    def __init__(self, threads: int) -> None:
        self.max_pending = 2 * threads
        self.pool = ThreadPoolExecutor(threads, thread_name_prefix="png") if threads else None
        self.pending: deque[Future] = deque()

    @staticmethod
    def _write(images: torch.Tensor, outputs: list[Path]) -> None:
        with torch.inference_mode():
            pixels = to_pixels(images)  # on a CUDA tensor this waits for its batch here
        for image, output in zip(pixels, outputs, strict=True):
            output.write_bytes(encode_png(image))

    def submit(self, images: torch.Tensor, outputs: list[Path]) -> None:
        """Write ``images`` (B, 3, H, W) in [-1, 1] to ``outputs``, one file each."""
        if self.pool is None:
            self._write(images, outputs)
            return
        while self.pending and (self.pending[0].done() or len(self.pending) >= self.max_pending):
            self.pending.popleft().result()
        self.pending.append(self.pool.submit(self._write, images, outputs))

    def close(self) -> None:
        """Wait for every write; raise the first error."""
        try:
            while self.pending:
                self.pending.popleft().result()
        finally:
            if self.pool is not None:
                self.pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> PngWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)


def _prepare(net: nn.Module, settings: GenerationSettings) -> nn.Module:
    if settings.channels_last:
        net = net.to(memory_format=torch.channels_last)
    if settings.compile:
        net = torch.compile(net, mode=settings.compile_mode)
    return net


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
    settings: GenerationSettings | None = None,
) -> list[dict[str, Any]]:
    """Translate every image of ``sources`` (files or folders) and write PNGs to ``out_dir``.

    ``AtoB`` applies ``G_A`` (G: X->Y, e.g. benign -> malignant), ``BtoA`` applies ``G_B``
    (F: Y->X). Images are resized to ``image_size`` (default: the training crop size)
    and run in fp32 unless ``settings.amp`` says otherwise, so the 8-bit output does
    not depend on the device's autocast. With ``reconstructions`` the cycle ``F(G(x))``
    (or ``G(F(y))``) is written too. ``settings`` (default
    :meth:`GenerationSettings.for_device`) choose layout, compilation and how decoding
    and writing overlap the device.

    Output names are ``NNNNN_<source stem>_fake_B.png`` (``_rec_A.png`` for
    reconstructions). Returns one record per written image - ``output``, ``source``,
    ``direction``, ``kind`` (``translation``/``reconstruction``), ``checkpoint_sha256``
    - and writes them with the checkpoint's config and the settings to
    ``out_dir/manifest.json``.
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
    settings = settings or GenerationSettings.for_device(torch_device)
    amp_dtype = autocast_dtype(settings.amp, torch_device)
    nets = {
        name: _prepare(net, settings)
        for name, net in load_networks(payload, config, names, torch_device).items()
    }
    memory_format = torch.channels_last if settings.channels_last else torch.contiguous_format

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    loader = DataLoader(
        ImageDataset(paths, image_size=size),
        batch_size=batch_size,
        num_workers=settings.num_workers,
        pin_memory=torch_device.type == "cuda",
    )
    records: list[dict[str, Any]] = []

    def outputs(indices: list[int], suffix: str, kind: str) -> list[Path]:
        files = []
        for index in indices:
            source = paths[index]
            files.append(out_dir / f"{index:05d}_{source.stem}_{suffix}.png")
            records.append(
                {
                    "output": str(files[-1]),
                    "source": str(source),
                    "direction": direction,
                    "kind": kind,
                    "checkpoint_sha256": checkpoint_sha,
                }
            )
        return files

    # a CUDA graph's replay overwrites its outputs: the writer gets copies of them
    cuda_graphs = settings.compile and settings.compile_mode in CUDA_GRAPH_MODES

    def run(name: str, images: torch.Tensor) -> torch.Tensor:
        with autocast(torch_device, amp_dtype):
            return nets[name](images)

    def written(images: torch.Tensor, count: int) -> torch.Tensor:
        return images[:count].clone() if cuda_graphs else images[:count]

    with PngWriter(settings.writer_threads) as writer, torch.inference_mode():
        for images, _labels, indices in loader:
            count = len(indices)
            if settings.compile and count < batch_size:  # one shape for the compiled graph
                images = torch.cat(
                    [images, images.new_zeros(batch_size - count, *images.shape[1:])]
                )
            images = images.to(torch_device, non_blocking=True).contiguous(
                memory_format=memory_format
            )
            if cuda_graphs:
                torch.compiler.cudagraph_mark_step_begin()
            fake = run(forward_name, images)
            index_list = indices.tolist()
            writer.submit(
                written(fake, count), outputs(index_list, f"fake_{out_domain}", "translation")
            )
            if reconstructions:
                writer.submit(
                    written(run(backward_name, fake), count),
                    outputs(index_list, f"rec_{in_domain}", "reconstruction"),
                )

    manifest = {
        "generator": "ganlab.train.generation",
        "checkpoint": str(checkpoint),
        "checkpoint_sha256": checkpoint_sha,
        "direction": direction,
        "network": f"{forward_name} ({PAPER_NAMES[forward_name]})",
        "image_size": size,
        "reconstructions": reconstructions,
        "epochs_trained": payload["epoch"],
        "settings": dataclasses.asdict(settings),
        "config": payload["config"],
        "images": records,
    }
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2))
    return records
