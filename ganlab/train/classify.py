"""Benign/malignant classification: a standalone transfer-learning classifier and predictions.

Answers "does synthetic data help classification?": train :func:`train_classifier`
once on real images only and once on real plus generated ones, then compare
:func:`predict` on a held-out real test set. :func:`predict` also reads the
semi-supervised class head of a CycleGAN checkpoint. Class 1 (``malignant``) is the
positive class throughout.
"""

from __future__ import annotations

import dataclasses
import json
import math
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

import ganlab
from ganlab.data.dataset import ImageDataset, expand_sources, to_tensor
from ganlab.data.imageio import load_rgb, resize
from ganlab.models.cyclegan import CLASS_NAMES
from ganlab.models.dataclass_io import check_field_types, known_fields, require
from ganlab.models.encoders import (
    ENCODER_WEIGHTS,
    get_encoder,
    list_encoders,
    random_batch_norm_problem,
)
from ganlab.models.transfer import EncoderClassifier
from ganlab.train.checkpoints import CYCLEGAN_KIND, load_networks
from ganlab.train.config import TrainConfig
from ganlab.train.runtime import (
    AMP_MODES,
    DEVICES,
    ProgressCallback,
    Throughput,
    autocast,
    autocast_dtype,
    load_checkpoint,
    report,
    save_atomic,
    seed_everything,
    select_device,
)

CHECKPOINT_KIND = "classifier"
ImageInput = Path | str | np.ndarray


@dataclass(frozen=True)
class ClassifierConfig:
    """A standalone classifier run.

    Attributes:
        real: class name (``benign``/``malignant``) -> real image files or folders.
        synthetic: the same for generated images; empty trains on real images only.
        encoder: registered encoder (``resnet50``, ``vgg16``, ``efficientnet_lite0``, ...).
        encoder_weights: ``imagenet`` (local verified file) or ``random``.
        weights_path: explicit ImageNet weights file instead of ``$TORCH_HOME``.
        image_size: images are resized to this square side.
        batch_size, epochs, lr, weight_decay: AdamW training with cross-entropy.
        freeze_encoder_epochs: train only the linear head for this many epochs first.
        seed, device, amp, num_workers: as in :class:`~ganlab.train.TrainConfig`.
    """

    real: dict[str, list[str]]
    synthetic: dict[str, list[str]] = field(default_factory=dict)
    encoder: str = "efficientnet_lite0"
    encoder_weights: str = "imagenet"
    weights_path: str | None = None
    image_size: int = 224
    batch_size: int = 16
    epochs: int = 10
    lr: float = 1e-4
    weight_decay: float = 1e-4
    freeze_encoder_epochs: int = 0
    seed: int = 0
    device: str = "auto"
    amp: str = "auto"
    num_workers: int = 0

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("real", "synthetic"):
            bad = sorted(set(getattr(self, name)) - set(CLASS_NAMES))
            require(not bad, self, name, f"keys must be class names {CLASS_NAMES}, got {bad}")
        require(
            all(self.real.get(c) for c in CLASS_NAMES),
            self,
            "real",
            f"needs images of every class {CLASS_NAMES}",
        )
        require(
            self.encoder in list_encoders(), self, "encoder", f"must be one of {list_encoders()}"
        )
        require(
            self.encoder_weights in ENCODER_WEIGHTS,
            self,
            "encoder_weights",
            f"must be one of {ENCODER_WEIGHTS}",
        )
        require(
            self.image_size >= 32 and self.image_size % 32 == 0,
            self,
            "image_size",
            "must be a multiple of 32",
        )
        for name in ("batch_size", "epochs"):
            require(getattr(self, name) >= 1, self, name, "must be >= 1")
        if self.encoder_weights == "random":
            problem = random_batch_norm_problem(
                self.encoder, image_size=self.image_size, batch_size=self.batch_size
            )
            require(problem is None, self, "image_size", problem or "")
        for name in ("freeze_encoder_epochs", "num_workers", "seed"):
            require(getattr(self, name) >= 0, self, name, "must be >= 0")
        require(
            self.lr > 0 and self.weight_decay >= 0,
            self,
            "lr",
            "lr must be > 0 and weight_decay >= 0",
        )
        require(self.device.split(":")[0] in DEVICES, self, "device", f"must be one of {DEVICES}")
        require(self.amp in AMP_MODES, self, "amp", f"must be one of {AMP_MODES}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ClassifierConfig:
        """Validated config; ``ValueError`` names any unknown or invalid field."""
        return cls(**known_fields(cls, data))

    @classmethod
    def from_json_file(cls, path: Path) -> ClassifierConfig:
        """Load a JSON config file; relative image paths are relative to it."""
        data = json.loads(Path(path).read_text())
        base = Path(path).resolve().parent
        for key in ("real", "synthetic"):
            if isinstance(data.get(key), dict):
                data[key] = {
                    name: [str(base / p) if isinstance(p, str) else p for p in sources]
                    if isinstance(sources, list)
                    else sources
                    for name, sources in data[key].items()
                }
        return cls.from_dict(data)


@dataclass
class ClassifierResult:
    """Outcome of :func:`train_classifier`; ``train_accuracy`` is over the last epoch."""

    checkpoint: Path
    checkpoint_sha256: str
    cancelled: bool
    epochs_done: int
    final_loss: float
    train_accuracy: float
    n_real: int
    n_synthetic: int
    images_per_s: float
    device: str
    train_seconds: float

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["checkpoint"] = str(self.checkpoint)
        return data


def _labelled_paths(groups: dict[str, list[str]], what: str) -> tuple[list[Path], list[int]]:
    paths: list[Path] = []
    labels: list[int] = []
    for name, sources in sorted(groups.items()):
        found = expand_sources(sources, what=f"ClassifierConfig.{what}.{name}")
        paths += found
        labels += [CLASS_NAMES.index(name)] * len(found)
    return paths, labels


def train_classifier(
    config: ClassifierConfig,
    *,
    out_dir: Path,
    on_progress: ProgressCallback | None = None,
    stop_event: threading.Event | None = None,
) -> ClassifierResult:
    """Fine-tune ``encoder`` + a linear head on real (plus synthetic) images.

    Augmentation: random 90-degree rotations and flips (histology has no orientation).
    Writes ``out_dir/classifier.pt`` after every epoch and on cancellation, which is
    honoured after the current iteration (``on_progress`` returning True or
    ``stop_event`` set).
    """
    out_dir = Path(out_dir)
    device = select_device(config.device)
    real_paths, real_labels = _labelled_paths(config.real, "real")
    syn_paths, syn_labels = (
        _labelled_paths(config.synthetic, "synthetic") if config.synthetic else ([], [])
    )
    dataset = ImageDataset(
        real_paths + syn_paths,
        real_labels + syn_labels,
        image_size=config.image_size,
        rotate=True,
        seed=config.seed,
    )
    last = len(dataset) % config.batch_size
    if config.encoder_weights == "random" and last:
        problem = random_batch_norm_problem(
            config.encoder, image_size=config.image_size, batch_size=last
        )
        if problem:
            raise ValueError(
                f"ClassifierConfig.batch_size: the last batch of every epoch holds {last} of the "
                f"{len(dataset)} images, and {problem}; or choose a batch_size that divides {len(dataset)}"
            )
    seed_everything(config.seed)
    encoder = get_encoder(
        config.encoder, weights=config.encoder_weights, weights_path=config.weights_path
    )
    net = EncoderClassifier(encoder, num_classes=len(CLASS_NAMES)).to(device).train()
    optimizer = torch.optim.AdamW(net.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    amp_dtype = autocast_dtype(config.amp, device)
    iters_per_epoch = math.ceil(len(dataset) / config.batch_size)
    total_steps = iters_per_epoch * config.epochs
    shuffle = torch.Generator().manual_seed(config.seed)
    path = out_dir / "classifier.pt"
    meter = Throughput()
    step, seen, epoch, cancelled = 0, 0, 0, False

    def save(epochs_done: int) -> str:
        payload = {
            "kind": CHECKPOINT_KIND,
            "format": 1,
            "ganlab_version": ganlab.__version__,
            "class_names": list(CLASS_NAMES),
            "config": config.to_dict(),
            "epochs_done": epochs_done,
            "network": net.state_dict(),
        }
        return save_atomic(payload, path)

    while epoch < config.epochs and not cancelled:
        dataset.set_epoch(epoch)
        encoder.requires_grad_(epoch >= config.freeze_encoder_epochs)
        loader = DataLoader(
            dataset,
            batch_size=config.batch_size,
            shuffle=True,
            generator=shuffle,
            num_workers=config.num_workers,
            pin_memory=device.type == "cuda",
        )
        loss_sum, correct, epoch_seen = 0.0, 0, 0
        completed = True
        for iteration, (images, labels, _index) in enumerate(loader, start=1):
            images, labels = images.to(device), labels.to(device)
            with autocast(device, amp_dtype):
                logits = net(images)
            loss = F.cross_entropy(logits.float(), labels)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            step += 1
            seen += len(labels)
            epoch_seen += len(labels)
            loss_sum += loss.item() * len(labels)
            correct += int((logits.argmax(1) == labels).sum())
            progress = meter.progress(
                len(labels),
                global_step=step,
                total_steps=total_steps,
                batch_size=config.batch_size,
                epoch=epoch + 1,
                total_epochs=config.epochs,
                iteration=iteration,
                iterations_per_epoch=iters_per_epoch,
                losses={"ce": loss.item(), "accuracy": correct / epoch_seen},
                lr=config.lr,
            )
            if report(progress, on_progress, stop_event):
                cancelled, completed = True, iteration == iters_per_epoch
                break
        epoch += int(completed)
        sha = save(epoch)
    cancelled = cancelled and epoch < config.epochs
    elapsed = meter.elapsed_s
    return ClassifierResult(
        checkpoint=path,
        checkpoint_sha256=sha,
        cancelled=cancelled,
        epochs_done=epoch,
        final_loss=loss_sum / max(epoch_seen, 1),
        train_accuracy=correct / max(epoch_seen, 1),
        n_real=len(real_paths),
        n_synthetic=len(syn_paths),
        images_per_s=seen / elapsed if elapsed > 0 else 0.0,
        device=str(device),
        train_seconds=elapsed,
    )


def _batches(images: Sequence[ImageInput], size: int, batch_size: int) -> Iterator[torch.Tensor]:
    """(B, 3, size, size) batches in [-1, 1], decoded one batch at a time."""
    for start in range(0, len(images), batch_size):
        chunk = images[start : start + batch_size]
        yield torch.stack(
            [
                to_tensor(resize(load_rgb(x) if isinstance(x, Path | str) else x, size))
                for x in chunk
            ]
        )


def predict(
    checkpoint: Path, images: Sequence[ImageInput], *, batch_size: int = 16, device: str = "auto"
) -> np.ndarray:
    """P(malignant) for each image (file path or uint8 HxWx3 array), in input order.

    ``checkpoint`` is a :func:`train_classifier` checkpoint or a semi-supervised
    CycleGAN checkpoint; for the latter the probabilities of the class heads of
    ``D_A`` and ``D_B`` (both trained on the labelled real images of both domains)
    are averaged. Images are resized to the checkpoint's training size.
    """
    checkpoint = Path(checkpoint)
    torch_device = select_device(device)
    payload = load_checkpoint(checkpoint)
    if payload["kind"] == CHECKPOINT_KIND:
        config = ClassifierConfig.from_dict(payload["config"])
        net = EncoderClassifier(
            get_encoder(config.encoder, weights="random"), num_classes=len(CLASS_NAMES)
        )
        net.load_state_dict(payload["network"])
        heads = [net.to(torch_device).eval()]
        size = config.image_size
    elif payload["kind"] == CYCLEGAN_KIND:
        train_config = TrainConfig.from_dict(payload["config"])
        if not train_config.semi_supervised:
            raise ValueError(
                f"{checkpoint} was trained without semi_supervised: its discriminators have no class head"
            )
        nets = load_networks(payload, train_config, ("D_A", "D_B"), torch_device)
        heads = [lambda x, d=d: d(x)[1] for d in nets.values()]
        size = train_config.image_size
    else:
        raise ValueError(f"{checkpoint}: cannot predict with a {payload['kind']!r} checkpoint")
    probabilities = []
    with torch.inference_mode():
        for batch in _batches(images, size, batch_size):
            batch = batch.to(torch_device)
            p = torch.stack([head(batch).float().softmax(dim=1)[:, 1] for head in heads]).mean(
                dim=0
            )
            probabilities.append(p.cpu())
    return torch.cat(probabilities).numpy() if probabilities else np.zeros(0, dtype=np.float32)
