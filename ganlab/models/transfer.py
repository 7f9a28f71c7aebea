"""Transfer-learning networks built on a registered :class:`~ganlab.models.encoders.Encoder`.

* :class:`EncoderUNetGenerator` - pretrained encoder stages + a U-Net decoder with skip
  connections; the generator of the ``resnet50-``, ``vgg16-`` and
  ``efficientnet-lite0-cyclegan`` presets.
* :class:`EncoderDiscriminator` - pretrained backbone with a patch real/fake head and,
  for semi-supervision, a benign/malignant class head.
* :class:`EncoderClassifier` - backbone + linear head, the standalone classifier.

Only the layers trained from scratch get the reference N(0, 0.02) initialisation;
the encoder keeps its pretrained (or torchvision's default random) weights.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ganlab.models.encoders import Encoder
from ganlab.models.networks import init_weights, instance_norm


def decoder_width(reduction: int, ngf: int) -> int:
    """Decoder channels at a given stride: ``ngf`` at full resolution, doubling, capped at 8 ngf."""
    return max(ngf, min(ngf * 8, ngf * reduction // 2))


class DecoderBlock(nn.Module):
    """Upsample x2 to the skip's size, concatenate the skip, two 3x3 conv-IN-ReLU."""

    def __init__(self, in_channels: int, skip_channels: int, out_channels: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.ReflectionPad2d(1),
            nn.Conv2d(in_channels + skip_channels, out_channels, kernel_size=3, bias=True),
            instance_norm(out_channels),
            nn.ReLU(True),
            nn.ReflectionPad2d(1),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, bias=True),
            instance_norm(out_channels),
            nn.ReLU(True),
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        # bilinear upsampling + conv instead of transposed conv: no checkerboard artefacts
        x = F.interpolate(x, size=skip.shape[-2:], mode="bilinear", align_corners=False)
        return self.conv(torch.cat([x, skip], dim=1))  # (B, out, h_skip, w_skip)


class EncoderUNetGenerator(nn.Module):
    """U-Net generator: pretrained encoder, skip-connected decoder, 7x7 conv + tanh.

    Images in [-1, 1] go in and come out; the encoder normalises them as its weights
    require. If the encoder's finest stage is coarser than the input (ResNet-50,
    EfficientNet), a full-resolution 7x7 conv stem on the raw image provides the last
    skip so fine texture (nuclei, chromatin) survives. The image side must be a multiple
    of the encoder's coarsest reduction (32, or 16 for VGG-16).
    """

    def __init__(self, encoder: Encoder, output_nc: int = 3, ngf: int = 64) -> None:
        super().__init__()
        self.encoder = encoder
        reductions = list(encoder.reductions)
        channels = list(encoder.channels)
        if reductions[0] > 1:
            self.input_stem: nn.Module | None = nn.Sequential(
                nn.ReflectionPad2d(3),
                nn.Conv2d(3, ngf, kernel_size=7, bias=True),
                instance_norm(ngf),
                nn.ReLU(True),
            )
            reductions.insert(0, 1)
            channels.insert(0, ngf)
        else:
            self.input_stem = None
        # 1x1 projection of the bottleneck; no norm because it may be 1x1 spatially
        width = decoder_width(reductions[-1], ngf)
        self.bottleneck = nn.Sequential(
            nn.Conv2d(channels[-1], width, kernel_size=1), nn.ReLU(True)
        )
        blocks = []
        for reduction, skip_channels in zip(
            reversed(reductions[:-1]), reversed(channels[:-1]), strict=True
        ):
            out = decoder_width(reduction, ngf)
            blocks.append(DecoderBlock(width, skip_channels, out))
            width = out
        self.decoder = nn.ModuleList(blocks)
        self.head = nn.Sequential(
            nn.ReflectionPad2d(3), nn.Conv2d(width, output_nc, kernel_size=7), nn.Tanh()
        )
        for part in (self.input_stem, self.bottleneck, self.decoder, self.head):
            if part is not None:
                init_weights(part)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = self.encoder(x)  # fine -> coarse
        if self.input_stem is not None:
            skips.insert(0, self.input_stem(x))  # (B, ngf, H, W)
        y = self.bottleneck(skips[-1])
        for block, skip in zip(self.decoder, reversed(skips[:-1]), strict=True):
            y = block(y, skip)
        return self.head(y)  # (B, output_nc, H, W) in [-1, 1]


class EncoderDiscriminator(nn.Module):
    """Pretrained-backbone discriminator.

    The real/fake head reads the stride-8 stage (a patch discriminator like the 70x70
    PatchGAN, one logit per patch); with ``num_classes > 0`` a class head reads the
    globally pooled deepest stage, and ``forward`` returns ``(patch_logits,
    class_logits)``; otherwise it returns the patch logits alone.
    """

    def __init__(self, encoder: Encoder, ndf: int = 64, num_classes: int = 0) -> None:
        super().__init__()
        self.encoder = encoder
        patch_stage = max(i for i, r in enumerate(encoder.reductions) if r <= 8)
        self.num_stages = len(encoder.reductions) if num_classes else patch_stage + 1
        self.patch_stage = patch_stage
        self.patch_head = nn.Sequential(
            nn.Conv2d(encoder.channels[patch_stage], ndf, kernel_size=3, padding=1),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf, 1, kernel_size=3, padding=1),
        )
        self.class_head = nn.Linear(encoder.channels[-1], num_classes) if num_classes else None
        init_weights(self.patch_head)
        if self.class_head is not None:
            init_weights(self.class_head)

    def forward(self, x: torch.Tensor) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        features = self.encoder(x, num_stages=self.num_stages)
        patch = self.patch_head(features[self.patch_stage])  # (B, 1, H/8, W/8)
        if self.class_head is None:
            return patch
        return patch, self.class_head(features[-1].mean(dim=(2, 3)))  # (B, num_classes)


class EncoderClassifier(nn.Module):
    """Backbone + global average pooling + dropout + linear: class logits for [-1, 1] images."""

    def __init__(self, encoder: Encoder, num_classes: int = 2, dropout: float = 0.2) -> None:
        super().__init__()
        self.encoder = encoder
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(encoder.channels[-1], num_classes)
        init_weights(self.head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = self.encoder(x)[-1].mean(dim=(2, 3))  # (B, C)
        return self.head(self.dropout(pooled))  # (B, num_classes)
