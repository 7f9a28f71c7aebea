"""The CycleGAN family: architecture config, named presets and the four-network model.

Names follow the reference implementation; in the paper's notation (Zhu et al. 2017)::

    G_A = G : X -> Y      (e.g. benign -> malignant)
    G_B = F : Y -> X      (malignant -> benign)
    D_A = D_Y             tells real y from G(x)
    D_B = D_X             tells real x from F(y)

Presets (each with ``semi_supervised`` on or off):

* ``cyclegan`` - ResNet-9-block generators, 70x70 PatchGAN discriminators (the paper).
* ``resnet50-cyclegan``, ``vgg16-cyclegan``, ``efficientnet-lite0-cyclegan`` - U-Net
  generators on an ImageNet-pretrained encoder, PatchGAN discriminators (the founding
  study's transfer-learning CycleGANs).
* ``demo`` - the reference architecture made small enough to train on a laptop CPU in
  minutes: ``resnet_6blocks`` generators and PatchGANs 16 filters wide (1.3M parameters
  for all four networks, against 28.3M for ``cyclegan``). The lab's first-run demo
  trains it on 64x64 demo tiles (:mod:`ganlab.recipes`).

With ``semi_supervised`` each discriminator also outputs benign/malignant logits
(class 1 = malignant) from a separate class head trained by cross-entropy on labelled
real images only: a supervised class head sharing the discriminator's features, not
Odena's K+1-class semi-supervised GAN (see
:class:`~ganlab.models.networks.SemiSupervisedPatchDiscriminator`). The founding study
cites TL-S-GAN (Amin et al. 2022) for it. ``discriminator='encoder'`` swaps the
PatchGAN for a pretrained backbone (``d_encoder``) with patch and class heads.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from torch import nn

from ganlab.models.dataclass_io import check_field_types, known_fields, require
from ganlab.models.encoders import (
    ENCODER_WEIGHTS,
    Encoder,
    get_encoder,
    list_encoders,
    random_batch_norm_problem,
)
from ganlab.models.networks import (
    NLayerDiscriminator,
    ResnetGenerator,
    SemiSupervisedPatchDiscriminator,
    init_weights,
)
from ganlab.models.transfer import EncoderDiscriminator, EncoderUNetGenerator

GENERATORS = ("resnet_9blocks", "resnet_6blocks", "unet")
DISCRIMINATORS = ("basic", "n_layers", "encoder")
CLASS_NAMES = ("benign", "malignant")  # index = class id; malignant is the positive class 1
NETWORK_NAMES = ("G_A", "G_B", "D_A", "D_B")
PAPER_NAMES = {"G_A": "G: X->Y", "G_B": "F: Y->X", "D_A": "D_Y", "D_B": "D_X"}


@dataclass(frozen=True)
class CycleGANConfig:
    """Architecture of the four networks; saved in every checkpoint.

    Attributes:
        generator: ``resnet_9blocks`` | ``resnet_6blocks`` (reference) | ``unet`` (on ``encoder``).
        discriminator: ``basic`` (70x70 PatchGAN) | ``n_layers`` (``n_layers_d`` layers) |
            ``encoder`` (pretrained ``d_encoder`` backbone).
        encoder: registered encoder of the U-Net generator (``generator='unet'``).
        d_encoder: registered encoder of the discriminator (``discriminator='encoder'``).
        encoder_weights: ``imagenet`` (local verified file, never downloaded) or ``random``.
        weights_paths: encoder name -> explicit weights file, instead of ``$TORCH_HOME``.
        semi_supervised: add the benign/malignant class head (trained on labelled real
            images only; not a K+1-class SGAN) to both discriminators.
        num_classes: classes of that head (2: benign, malignant).
        ngf, ndf: width of the first generator / discriminator layer.
        n_layers_d: conv layers of the PatchGAN (3 = ``basic``).
        use_dropout: dropout in the ResNet blocks (off for CycleGAN).
        init_gain: std of the N(0, gain) initialisation of layers trained from scratch.
    """

    generator: str = "resnet_9blocks"
    discriminator: str = "basic"
    encoder: str | None = None
    d_encoder: str | None = None
    encoder_weights: str = "imagenet"
    weights_paths: dict[str, str] = field(default_factory=dict)
    semi_supervised: bool = False
    num_classes: int = 2
    input_nc: int = 3
    output_nc: int = 3
    ngf: int = 64
    ndf: int = 64
    n_layers_d: int = 3
    use_dropout: bool = False
    init_gain: float = 0.02

    def __post_init__(self) -> None:
        check_field_types(self)
        require(
            self.generator in GENERATORS,
            self,
            "generator",
            f"must be one of {GENERATORS}, got {self.generator!r}",
        )
        require(
            self.discriminator in DISCRIMINATORS,
            self,
            "discriminator",
            f"must be one of {DISCRIMINATORS}, got {self.discriminator!r}",
        )
        encoders = list_encoders()
        for name, needed_by in (
            ("encoder", self.generator == "unet"),
            ("d_encoder", self.discriminator == "encoder"),
        ):
            value = getattr(self, name)
            if needed_by:
                require(
                    value in encoders, self, name, f"must name one of {encoders}, got {value!r}"
                )
            else:
                require(
                    value is None,
                    self,
                    name,
                    f"is only used with a pretrained backbone; set it to null, got {value!r}",
                )
        require(
            self.encoder_weights in ENCODER_WEIGHTS,
            self,
            "encoder_weights",
            f"must be one of {ENCODER_WEIGHTS}, got {self.encoder_weights!r}",
        )
        unknown = sorted(set(self.weights_paths) - set(encoders))
        require(
            not unknown,
            self,
            "weights_paths",
            f"keys must be encoder names {encoders}, got {unknown}",
        )
        require(
            self.num_classes == len(CLASS_NAMES),
            self,
            "num_classes",
            f"must be {len(CLASS_NAMES)} ({CLASS_NAMES})",
        )
        require(
            self.input_nc == 3 or self.generator != "unet",
            self,
            "input_nc",
            "pretrained encoders take RGB (3)",
        )
        for name in ("input_nc", "output_nc", "ngf", "ndf", "n_layers_d"):
            require(getattr(self, name) >= 1, self, name, "must be >= 1")
        require(self.init_gain > 0, self, "init_gain", "must be > 0")

    def image_size_problem(self, image_size: int, *, batch_size: int) -> str | None:
        """Why this architecture cannot train on batches of ``batch_size`` images of
        ``image_size``, or ``None``.

        Sides must be a multiple of :attr:`image_multiple`; encoders trained from random
        weights need more than one value per channel for BatchNorm at their last stage
        (:func:`~ganlab.models.encoders.random_batch_norm_problem`). The generator's
        encoder always runs its last stage; a discriminator's backbone does only for the
        semi-supervised class head.
        """
        multiple = self.image_multiple
        if image_size < 32 or image_size % multiple:
            return f"must be >= 32 and a multiple of {multiple} for this model, got {image_size}"
        if self.encoder_weights != "random":
            return None
        encoders = [self.encoder] if self.generator == "unet" else []
        if self.discriminator == "encoder" and self.semi_supervised:
            encoders.append(self.d_encoder)
        for name in encoders:
            assert name is not None  # guaranteed by validation
            problem = random_batch_norm_problem(name, image_size=image_size, batch_size=batch_size)
            if problem:
                return problem
        return None

    @property
    def image_multiple(self) -> int:
        """Image sides must be divisible by this (generator down/upsampling)."""
        if self.generator != "unet":
            return 4
        return 16 if self.encoder == "vgg16" else 32

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe dict; :meth:`from_dict` inverts it."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CycleGANConfig:
        """Validated config from a dict; ``ValueError`` names any unknown or invalid field."""
        return cls(**known_fields(cls, data))


def _encoder(config: CycleGANConfig, name: str, load_weights: bool) -> Encoder:
    if config.encoder_weights == "imagenet" and not load_weights:
        # the weights will come from a checkpoint: build the architecture only, but keep
        # the pretrained encoder's training behaviour (frozen BatchNorm statistics)
        encoder = get_encoder(name, weights="random")
        encoder.pretrained = True
        return encoder
    path = config.weights_paths.get(name)
    return get_encoder(
        name, weights=config.encoder_weights, weights_path=Path(path) if path else None
    )


def build_generator(config: CycleGANConfig, *, load_weights: bool = True) -> nn.Module:
    """A generator for ``config``; new layers are drawn from torch's global RNG.

    ``load_weights=False`` skips reading ImageNet files, for callers that load a
    checkpoint over the result.
    """
    if config.generator == "unet":
        assert config.encoder is not None  # guaranteed by validation
        encoder = _encoder(config, config.encoder, load_weights)
        return EncoderUNetGenerator(encoder, output_nc=config.output_nc, ngf=config.ngf)
    net = ResnetGenerator(
        config.input_nc,
        config.output_nc,
        ngf=config.ngf,
        n_blocks=9 if config.generator == "resnet_9blocks" else 6,
        use_dropout=config.use_dropout,
    )
    init_weights(net, config.init_gain)
    return net


def build_discriminator(
    config: CycleGANConfig, input_nc: int, *, load_weights: bool = True
) -> nn.Module:
    """A discriminator; with ``semi_supervised`` its ``forward`` returns ``(patch, class_logits)``."""
    num_classes = config.num_classes if config.semi_supervised else 0
    if config.discriminator == "encoder":
        assert config.d_encoder is not None  # guaranteed by validation
        encoder = _encoder(config, config.d_encoder, load_weights)
        return EncoderDiscriminator(encoder, ndf=config.ndf, num_classes=num_classes)
    n_layers = 3 if config.discriminator == "basic" else config.n_layers_d
    if num_classes:
        net: nn.Module = SemiSupervisedPatchDiscriminator(
            input_nc, config.ndf, n_layers, num_classes
        )
    else:
        net = NLayerDiscriminator(input_nc, config.ndf, n_layers)
    init_weights(net, config.init_gain)
    return net


def build_network(config: CycleGANConfig, name: str, *, load_weights: bool = True) -> nn.Module:
    """Network ``name`` of the model: ``G_A`` (X->Y), ``G_B`` (Y->X), ``D_A`` (on Y) or ``D_B`` (on X)."""
    if name == "G_A":
        return build_generator(config, load_weights=load_weights)
    if name == "G_B":
        mirrored = dataclasses.replace(config, input_nc=config.output_nc, output_nc=config.input_nc)
        return build_generator(mirrored, load_weights=load_weights)
    if name == "D_A":
        return build_discriminator(config, config.output_nc, load_weights=load_weights)
    if name == "D_B":
        return build_discriminator(config, config.input_nc, load_weights=load_weights)
    raise ValueError(f"unknown network {name!r}; expected one of {NETWORK_NAMES}")


class CycleGAN(nn.Module):
    """The four networks: ``G_A`` (G: X->Y), ``G_B`` (F: Y->X), ``D_A`` (D_Y), ``D_B`` (D_X)."""

    def __init__(self, config: CycleGANConfig, *, load_weights: bool = True) -> None:
        super().__init__()
        self.config = config
        for name in NETWORK_NAMES:
            setattr(self, name, build_network(config, name, load_weights=load_weights))

    @property
    def generators(self) -> tuple[nn.Module, nn.Module]:
        return self.G_A, self.G_B

    @property
    def discriminators(self) -> tuple[nn.Module, nn.Module]:
        return self.D_A, self.D_B

    def pretrained_encoders(self) -> list[Encoder]:
        """Pretrained encoder modules (the layers the freeze schedule acts on)."""
        return [m for m in self.modules() if isinstance(m, Encoder) and m.pretrained]

    def parameter_counts(self) -> dict[str, int]:
        """Parameter count of each network, by reference name."""
        return {
            name: sum(p.numel() for p in getattr(self, name).parameters()) for name in NETWORK_NAMES
        }


def _plain(semi_supervised: bool) -> CycleGANConfig:
    return CycleGANConfig(semi_supervised=semi_supervised)


def _transfer(encoder: str) -> Callable[[bool], CycleGANConfig]:
    def make(semi_supervised: bool) -> CycleGANConfig:
        return CycleGANConfig(generator="unet", encoder=encoder, semi_supervised=semi_supervised)

    return make


def _demo(semi_supervised: bool) -> CycleGANConfig:
    return CycleGANConfig(
        generator="resnet_6blocks", ngf=16, ndf=16, semi_supervised=semi_supervised
    )


PRESETS: dict[str, Callable[[bool], CycleGANConfig]] = {
    "cyclegan": _plain,
    "demo": _demo,
    "resnet50-cyclegan": _transfer("resnet50"),
    "vgg16-cyclegan": _transfer("vgg16"),
    "efficientnet-lite0-cyclegan": _transfer("efficientnet_lite0"),
}


def preset_config(name: str, *, semi_supervised: bool = False) -> CycleGANConfig:
    """The :class:`CycleGANConfig` of preset ``name``; ``ValueError`` lists presets if unknown."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; presets: {sorted(PRESETS)}")
    return PRESETS[name](semi_supervised)
