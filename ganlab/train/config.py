"""Typed, validated training configuration, saved in every checkpoint."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ganlab.models.cyclegan import CLASS_NAMES, PRESETS, CycleGANConfig, preset_config
from ganlab.models.dataclass_io import check_field_types, known_fields, require
from ganlab.train.runtime import AMP_MODES, DEVICES

GAN_MODES = ("lsgan", "vanilla")
#: ``torch.compile`` modes: ``reduce-overhead`` and ``max-autotune`` also replay CUDA graphs;
#: ``max-autotune`` benchmarks Triton and library kernels for every convolution and matmul.
COMPILE_MODES = ("default", "reduce-overhead", "max-autotune", "max-autotune-no-cudagraphs")
CUDA_GRAPH_MODES = frozenset({"reduce-overhead", "max-autotune"})

#: Fields that may differ when resuming: they change how long, where or how fast training
#: runs, never the model or the data. Changing the epochs re-plans the remaining LR schedule.
RESUMABLE_CHANGES = frozenset(
    {
        "n_epochs",
        "n_epochs_decay",
        "checkpoint_every",
        "device",
        "amp",
        "channels_last",
        "compile",
        "compile_mode",
        "fused_adam",
        "deterministic",
        "num_workers",
    }
)


@dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a CycleGAN training run.

    Data:
        domain_x, domain_y: image files or folders (searched recursively) of domains X
            and Y; the default study has X = benign, Y = malignant.
        x_label, y_label: class of every image of that domain (``benign``/``malignant``)
            when the domain is one class, or ``None``.
        labels: per-image classes (path as listed after folder expansion -> class);
            they override ``x_label``/``y_label``.
        label_fraction: share of the known labels the semi-supervised class head may use
            (drawn per class, deterministically from ``seed``); the rest count as unlabelled.
        image_size: training crop side; load_size: side images are resized to before the
            random crop (reference 286 -> 256); flip: random horizontal flips.
    Model:
        preset: ``cyclegan`` | ``resnet50-cyclegan`` | ``vgg16-cyclegan`` |
            ``efficientnet-lite0-cyclegan`` | ``demo`` (narrow and shallow, for a CPU);
            semi_supervised: add the benign/malignant class head to both discriminators
            (cross-entropy on labelled real images only; not Odena's K+1-class SGAN).
        model: the resolved architecture. ``from_dict`` merges a partial ``model`` object
            onto the preset (e.g. ``{"encoder_weights": "random"}``).
    Optimisation (reference defaults):
        batch_size 1; constant LR, then linear decay to 0 over the last n_epochs_decay + 1
        of the n_epochs + n_epochs_decay epochs (the reference schedule, :meth:`lr_factor`);
        lr 2e-4, beta1 0.5 (Adam); gan_mode ``lsgan`` | ``vanilla``; lambda_cycle 10
        (L1 cycle loss per direction); lambda_identity 0.5 (identity loss weight, times
        lambda_cycle); lambda_class 1 (cross-entropy of the class head); pool_size 50
        (history of generated images shown to the discriminators); freeze_encoder_epochs:
        pretrained encoders stay frozen for this many epochs, then train.
    Runtime:
        seed; deterministic: deterministic cuDNN kernels (bit-reproducible) instead of
        autotuned ones (faster); device ``auto`` | ``cpu`` | ``cuda`` | ``mps``; amp ``auto`` (bf16 autocast on
        CUDA) | ``bf16`` | ``off``; channels_last; compile (``torch.compile`` of each
        network; meant for CUDA) with compile_mode (:data:`COMPILE_MODES`; the CUDA-graph
        modes need fixed batch shapes, so choose a batch_size that divides the data);
        fused_adam: Adam's single fused kernel per parameter group (CPU, CUDA and MPS;
        on a 2-core CPU 5x faster than the multi-tensor step for the ResNet-9 generator,
        the same update to rounding); num_workers (data loader processes);
        checkpoint_every: keep a numbered checkpoint every N epochs (``latest.pt`` is
        always written at epoch ends and on cancel).
    """

    domain_x: list[str]
    domain_y: list[str]
    preset: str = "cyclegan"
    semi_supervised: bool = False
    model: CycleGANConfig | None = None
    x_label: str | None = "benign"
    y_label: str | None = "malignant"
    labels: dict[str, str] = field(default_factory=dict)
    label_fraction: float = 1.0
    image_size: int = 256
    load_size: int = 286
    flip: bool = True
    batch_size: int = 1
    n_epochs: int = 100
    n_epochs_decay: int = 100
    lr: float = 2e-4
    beta1: float = 0.5
    gan_mode: str = "lsgan"
    lambda_cycle: float = 10.0
    lambda_identity: float = 0.5
    lambda_class: float = 1.0
    pool_size: int = 50
    freeze_encoder_epochs: int = 0
    seed: int = 0
    deterministic: bool = True
    device: str = "auto"
    amp: str = "auto"
    channels_last: bool = False
    compile: bool = False
    compile_mode: str = "default"
    fused_adam: bool = True
    num_workers: int = 0
    checkpoint_every: int = 5

    def __post_init__(self) -> None:
        require(
            self.preset in PRESETS,
            self,
            "preset",
            f"must be one of {sorted(PRESETS)}, got {self.preset!r}",
        )
        if self.model is None:
            object.__setattr__(
                self,
                "model",
                preset_config(self.preset, semi_supervised=bool(self.semi_supervised)),
            )
        check_field_types(self)
        assert self.model is not None
        require(
            self.model.semi_supervised == self.semi_supervised,
            self,
            "model.semi_supervised",
            f"is {self.model.semi_supervised} but semi_supervised is {self.semi_supervised}",
        )
        require(bool(self.domain_x), self, "domain_x", "needs at least one image file or folder")
        require(bool(self.domain_y), self, "domain_y", "needs at least one image file or folder")
        for name in ("x_label", "y_label"):
            value = getattr(self, name)
            require(
                value is None or value in CLASS_NAMES,
                self,
                name,
                f"must be one of {CLASS_NAMES} or null",
            )
        bad = sorted({v for v in self.labels.values() if v not in CLASS_NAMES})
        require(not bad, self, "labels", f"values must be in {CLASS_NAMES}, got {bad}")
        require(0.0 <= self.label_fraction <= 1.0, self, "label_fraction", "must be in [0, 1]")
        require(
            self.load_size >= self.image_size,
            self,
            "load_size",
            f"must be >= image_size ({self.image_size})",
        )
        for name in ("batch_size", "n_epochs", "checkpoint_every"):
            require(getattr(self, name) >= 1, self, name, "must be >= 1")
        problem = self.model.image_size_problem(self.image_size, batch_size=self.batch_size)
        require(problem is None, self, "image_size", problem or "")
        for name in ("n_epochs_decay", "pool_size", "freeze_encoder_epochs", "num_workers", "seed"):
            require(getattr(self, name) >= 0, self, name, "must be >= 0")
        require(self.lr > 0, self, "lr", "must be > 0")
        require(0.0 <= self.beta1 < 1.0, self, "beta1", "must be in [0, 1)")
        require(self.gan_mode in GAN_MODES, self, "gan_mode", f"must be one of {GAN_MODES}")
        for name in ("lambda_cycle", "lambda_identity", "lambda_class"):
            require(getattr(self, name) >= 0, self, name, "must be >= 0")
        require(
            self.device.split(":")[0] in DEVICES,
            self,
            "device",
            f"must be one of {DEVICES} (cuda:N allowed)",
        )
        require(self.amp in AMP_MODES, self, "amp", f"must be one of {AMP_MODES}")
        require(
            self.compile_mode in COMPILE_MODES,
            self,
            "compile_mode",
            f"must be one of {COMPILE_MODES}",
        )

    @property
    def total_epochs(self) -> int:
        return self.n_epochs + self.n_epochs_decay

    def lr_factor(self, epoch: int) -> float:
        """LR multiplier during 0-based ``epoch``, exactly as the reference applies it.

        The reference ``lambda_rule`` (``networks.get_scheduler``, ``epoch_count=1``) is
        ``1 - max(0, e + 1 - n_epochs) / (n_epochs_decay + 1)``, and its ``train.py``
        steps the scheduler at the beginning of every epoch, so 1-based epoch ``e``
        (``epoch + 1`` here) runs at ``lambda_rule(e)``: 1.0 up to epoch ``n_epochs - 1``,
        then ``1 / (n_epochs_decay + 1)`` less per epoch, reaching exactly 0 in the last
        epoch ``e = n_epochs + n_epochs_decay``. With ``n_epochs_decay = 0`` there is no
        decay phase and the factor stays 1.0 (the reference's rule would spend the only
        or last epoch at LR 0).
        """
        if self.n_epochs_decay == 0:
            return 1.0
        e = epoch + 1
        return 1.0 - max(0, e + 1 - self.n_epochs) / float(self.n_epochs_decay + 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict with the resolved model; ``from_dict(to_dict())`` is the identity."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        """Validated config; a partial ``model`` object overrides the preset's fields.

        Raises ``ValueError`` naming the unknown or invalid field.
        """
        values = known_fields(cls, data)
        overrides = values.pop("model", None)
        config = cls(**values)
        if overrides is not None:
            assert config.model is not None
            merged = {**config.model.to_dict(), **known_fields(CycleGANConfig, overrides)}
            config = dataclasses.replace(config, model=CycleGANConfig.from_dict(merged))
        return config

    @classmethod
    def from_json_file(cls, path: Path) -> TrainConfig:
        """Load a JSON config file; relative image paths (data and ``labels`` keys) are relative to it."""
        data = json.loads(Path(path).read_text())
        base = Path(path).resolve().parent
        for key in ("domain_x", "domain_y"):
            if isinstance(data.get(key), list):
                data[key] = [str(base / p) if isinstance(p, str) else p for p in data[key]]
        if isinstance(data.get("labels"), dict):
            data["labels"] = {str(base / k): v for k, v in data["labels"].items()}
        return cls.from_dict(data)
