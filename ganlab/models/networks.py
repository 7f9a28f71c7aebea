"""The CycleGAN reference networks: ResNet generator and PatchGAN discriminator.

Layer for layer the ``resnet_9blocks``/``resnet_6blocks`` generator and the
``basic``/``n_layers`` discriminator of junyanz/pytorch-CycleGAN-and-pix2pix
(``models/networks.py``) with instance normalisation, so the ``state_dict`` keys
(``model.1.weight``, ``model.10.conv_block.1.weight``, ...) and shapes are the same
and checkpoints published for the reference implementation load with ``strict=True``.

Zhu et al. 2017, "Unpaired Image-to-Image Translation using Cycle-Consistent
Adversarial Networks", Appendix 7.2: ``c7s1-64, d128, d256, R256 x 9, u128, u64,
c7s1-3`` for the generator and ``C64-C128-C256-C512`` for the 70x70 PatchGAN.
"""

from __future__ import annotations

import torch
from torch import nn


def instance_norm(num_features: int) -> nn.InstanceNorm2d:
    """The reference's ``norm='instance'``: no affine parameters, no running statistics."""
    return nn.InstanceNorm2d(num_features, affine=False, track_running_stats=False)


def init_weights(module: nn.Module, gain: float = 0.02) -> None:
    """Reference ``init_type='normal'``: conv/linear weights ~ N(0, gain), biases 0.

    BatchNorm scales ~ N(1, gain). Applied only to layers trained from scratch; pretrained
    encoder stages are never passed here.
    """
    for layer in module.modules():
        if isinstance(layer, nn.Conv2d | nn.ConvTranspose2d | nn.Linear):
            nn.init.normal_(layer.weight, 0.0, gain)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, gain)
            nn.init.zeros_(layer.bias)


class ResnetBlock(nn.Module):
    """Residual block ``x + conv_block(x)``: reflect pad, 3x3 conv, norm, ReLU, (dropout), pad, conv, norm."""

    def __init__(self, dim: int, use_dropout: bool = False) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            instance_norm(dim),
            nn.ReLU(True),
        ]
        if use_dropout:
            layers.append(nn.Dropout(0.5))
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(dim, dim, kernel_size=3, padding=0, bias=True),
            instance_norm(dim),
        ]
        self.conv_block = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv_block(x)  # (B, dim, H, W)


class ResnetGenerator(nn.Module):
    """ResNet generator: 2 stride-2 downsamplings, ``n_blocks`` residual blocks, 2 upsamplings.

    Input and output are images in [-1, 1] (tanh). ``n_blocks=9`` is the reference
    ``resnet_9blocks`` (11,378,179 parameters for RGB, ``ngf=64``), ``n_blocks=6`` is
    ``resnet_6blocks``. The image side must be a multiple of 4.
    """

    def __init__(
        self,
        input_nc: int = 3,
        output_nc: int = 3,
        ngf: int = 64,
        n_blocks: int = 9,
        use_dropout: bool = False,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.ReflectionPad2d(3),
            nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0, bias=True),
            instance_norm(ngf),
            nn.ReLU(True),
        ]
        n_downsampling = 2
        for i in range(n_downsampling):
            mult = 2**i
            layers += [
                nn.Conv2d(
                    ngf * mult, ngf * mult * 2, kernel_size=3, stride=2, padding=1, bias=True
                ),
                instance_norm(ngf * mult * 2),
                nn.ReLU(True),
            ]
        mult = 2**n_downsampling
        layers += [ResnetBlock(ngf * mult, use_dropout=use_dropout) for _ in range(n_blocks)]
        for i in range(n_downsampling):
            mult = 2 ** (n_downsampling - i)
            layers += [
                nn.ConvTranspose2d(
                    ngf * mult,
                    ngf * mult // 2,
                    kernel_size=3,
                    stride=2,
                    padding=1,
                    output_padding=1,
                    bias=True,
                ),
                instance_norm(ngf * mult // 2),
                nn.ReLU(True),
            ]
        layers += [
            nn.ReflectionPad2d(3),
            nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0),
            nn.Tanh(),
        ]
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, input_nc, H, W) -> (B, output_nc, H, W)


class NLayerDiscriminator(nn.Module):
    """PatchGAN discriminator; ``n_layers=3`` is the reference ``basic`` 70x70 PatchGAN.

    Returns one real/fake logit per overlapping patch: (B, 1, H/8 - 2, W/8 - 2) for
    ``n_layers=3`` (2,764,737 parameters for RGB, ``ndf=64``).
    """

    def __init__(self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=1),
            nn.LeakyReLU(0.2, True),
        ]
        nf_mult = 1
        for n in range(1, n_layers):
            nf_mult_prev, nf_mult = nf_mult, min(2**n, 8)
            layers += [
                nn.Conv2d(
                    ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=2, padding=1, bias=True
                ),
                instance_norm(ndf * nf_mult),
                nn.LeakyReLU(0.2, True),
            ]
        nf_mult_prev, nf_mult = nf_mult, min(2**n_layers, 8)
        layers += [
            nn.Conv2d(
                ndf * nf_mult_prev, ndf * nf_mult, kernel_size=4, stride=1, padding=1, bias=True
            ),
            instance_norm(ndf * nf_mult),
            nn.LeakyReLU(0.2, True),
            nn.Conv2d(ndf * nf_mult, 1, kernel_size=4, stride=1, padding=1),
        ]
        self.model = nn.Sequential(*layers)
        self.feature_channels = ndf * nf_mult

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)  # (B, C, H, W) -> (B, 1, h, w) patch logits


class SemiSupervisedPatchDiscriminator(NLayerDiscriminator):
    """PatchGAN with a benign/malignant class head beside its real/fake patch head.

    What it is: the shared trunk feeds the reference patch head (``model.*`` keys
    unchanged, so a reference ``basic`` checkpoint loads into it with ``strict=False``
    leaving only ``class_head.*`` new) and a linear class head on the globally pooled
    last feature map. ``forward`` returns ``(patch_logits, class_logits)``. Training
    (:class:`~ganlab.train.trainer.CycleGANTrainer`) applies cross-entropy to the class
    head on *labelled real* images only (both domains' real images; ``label_fraction``
    decides how many keep their label). Generated images never enter the class loss, and
    unlabelled images are used only by the ordinary real/fake (LSGAN) patch loss: the
    class head is a supervised classifier sharing the discriminator's features.

    What it is not: Odena's semi-supervised GAN (Odena 2016; Salimans et al. 2016), whose
    discriminator has a single softmax over K + 1 classes (the K real classes and
    "generated"), so that unlabelled real images are pushed away from the "generated"
    class and the class and real/fake decisions share one output. Here real/fake stays the
    PatchGAN's separate per-patch head. The founding study's TL-S-GAN (Amin et al. 2022)
    is cited as the inspiration; this head is the lab's semi-supervised CycleGAN, not a
    reproduction of that paper's discriminator.
    """

    def __init__(
        self, input_nc: int = 3, ndf: int = 64, n_layers: int = 3, num_classes: int = 2
    ) -> None:
        super().__init__(input_nc=input_nc, ndf=ndf, n_layers=n_layers)
        self.class_head = nn.Linear(self.feature_channels, num_classes)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # type: ignore[override]
        features = self.model[:-1](x)  # (B, ndf * 8, h + 1, w + 1)
        patch = self.model[-1](features)  # (B, 1, h, w)
        return patch, self.class_head(features.mean(dim=(2, 3)))  # (B, num_classes)
