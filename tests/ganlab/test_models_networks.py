"""The reference networks match junyanz/pytorch-CycleGAN-and-pix2pix layer for layer."""

from __future__ import annotations

import pytest
import torch

from ganlab.models import (
    CycleGAN,
    CycleGANConfig,
    NLayerDiscriminator,
    ResnetGenerator,
    SemiSupervisedPatchDiscriminator,
    preset_config,
)


def reference_resnet_generator_shapes(n_blocks: int) -> dict[str, tuple[int, ...]]:
    """state_dict of the reference ``ResnetGenerator(3, 3, 64, InstanceNorm2d, no dropout)``.

    ``model`` is Sequential: [0] ReflectionPad2d(3), [1] Conv 7x7 3->64, [2] IN, [3] ReLU,
    [4] Conv s2 64->128, [5] IN, [6] ReLU, [7] Conv s2 128->256, [8] IN, [9] ReLU,
    [10 .. 9+n] ResnetBlock(256) with conv_block [0] pad, [1] conv, [2] IN, [3] ReLU,
    [4] pad, [5] conv, [6] IN; then ConvTranspose 256->128 (weights are in x out x k x k),
    IN, ReLU, ConvTranspose 128->64, IN, ReLU, ReflectionPad2d(3), Conv 7x7 64->3, Tanh.
    Instance norm has no affine parameters, so every conv has a bias.
    """
    shapes: dict[str, tuple[int, ...]] = {
        "model.1.weight": (64, 3, 7, 7),
        "model.1.bias": (64,),
        "model.4.weight": (128, 64, 3, 3),
        "model.4.bias": (128,),
        "model.7.weight": (256, 128, 3, 3),
        "model.7.bias": (256,),
    }
    for block in range(10, 10 + n_blocks):
        for conv in (1, 5):
            shapes[f"model.{block}.conv_block.{conv}.weight"] = (256, 256, 3, 3)
            shapes[f"model.{block}.conv_block.{conv}.bias"] = (256,)
    up1, up2, last = 10 + n_blocks, 13 + n_blocks, 17 + n_blocks
    shapes |= {
        f"model.{up1}.weight": (256, 128, 3, 3),
        f"model.{up1}.bias": (128,),
        f"model.{up2}.weight": (128, 64, 3, 3),
        f"model.{up2}.bias": (64,),
        f"model.{last}.weight": (3, 64, 7, 7),
        f"model.{last}.bias": (3,),
    }
    return shapes


# reference NLayerDiscriminator(3, 64, n_layers=3, InstanceNorm2d) = the 'basic' 70x70 PatchGAN:
# [0] Conv s2 3->64, [1] LReLU, [2] Conv s2 64->128, [3] IN, [4] LReLU, [5] Conv s2 128->256,
# [6] IN, [7] LReLU, [8] Conv s1 256->512, [9] IN, [10] LReLU, [11] Conv s1 512->1
REFERENCE_BASIC_D = {
    "model.0.weight": (64, 3, 4, 4),
    "model.0.bias": (64,),
    "model.2.weight": (128, 64, 4, 4),
    "model.2.bias": (128,),
    "model.5.weight": (256, 128, 4, 4),
    "model.5.bias": (256,),
    "model.8.weight": (512, 256, 4, 4),
    "model.8.bias": (512,),
    "model.11.weight": (1, 512, 4, 4),
    "model.11.bias": (1,),
}


def shapes_of(module: torch.nn.Module) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in module.state_dict().items()}


def n_params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def test_resnet_9blocks_matches_reference_layout_and_parameter_count():
    net = ResnetGenerator(3, 3, ngf=64, n_blocks=9)
    assert list(shapes_of(net)) == list(
        reference_resnet_generator_shapes(9)
    )  # same keys, same order
    assert shapes_of(net) == reference_resnet_generator_shapes(9)
    assert n_params(net) == 11_378_179


def test_resnet_6blocks_matches_reference_layout():
    net = ResnetGenerator(3, 3, ngf=64, n_blocks=6)
    assert shapes_of(net) == reference_resnet_generator_shapes(6)
    assert n_params(net) == 7_837_699


def test_basic_patchgan_matches_reference_layout_and_parameter_count():
    net = NLayerDiscriminator(3, ndf=64, n_layers=3)
    assert shapes_of(net) == REFERENCE_BASIC_D
    assert n_params(net) == 2_764_737


def test_n_layers_discriminator_caps_width_at_8_ndf():
    net = NLayerDiscriminator(3, ndf=64, n_layers=5)
    shapes = shapes_of(net)
    assert shapes["model.11.weight"] == (512, 512, 4, 4)  # n=4: min(2**4, 8) * 64
    assert shapes["model.14.weight"] == (512, 512, 4, 4)  # stride-1 layer
    assert shapes["model.17.weight"] == (1, 512, 4, 4)


def test_reference_checkpoint_loads_strictly_into_presets():
    """A state_dict laid out like the reference's published latest_net_G/D files loads strict."""
    model = CycleGAN(preset_config("cyclegan"))
    generator_file = {k: torch.randn(s) for k, s in reference_resnet_generator_shapes(9).items()}
    discriminator_file = {k: torch.randn(s) for k, s in REFERENCE_BASIC_D.items()}
    model.G_A.load_state_dict(generator_file, strict=True)
    model.D_A.load_state_dict(discriminator_file, strict=True)
    assert torch.equal(model.G_A.model[1].weight, generator_file["model.1.weight"])
    # the semi-supervised discriminator keeps the reference keys and only adds its class head
    semi = SemiSupervisedPatchDiscriminator(3, 64, 3, num_classes=2)
    result = semi.load_state_dict(discriminator_file, strict=False)
    assert result.unexpected_keys == []
    assert sorted(result.missing_keys) == ["class_head.bias", "class_head.weight"]


def test_forward_shapes_and_ranges():
    torch.manual_seed(0)
    g = ResnetGenerator(3, 3, ngf=8, n_blocks=2)
    d = SemiSupervisedPatchDiscriminator(3, ndf=8, num_classes=2)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    y = g(x)
    assert y.shape == x.shape and y.abs().max() <= 1
    patch, logits = d(y)
    assert patch.shape == (2, 1, 6, 6)  # 64 / 8 - 2: 70x70-style patches
    assert logits.shape == (2, 2)


def test_reference_normal_init_is_applied():
    torch.manual_seed(0)
    model = CycleGAN(preset_config("cyclegan"))
    weight = model.G_A.model[10].conv_block[1].weight
    assert abs(weight.std().item() - 0.02) < 0.002
    assert torch.count_nonzero(model.G_A.model[10].conv_block[1].bias) == 0


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"generator": "unet"}, "encoder"),
        ({"generator": "unet", "encoder": "alexnet"}, "encoder"),
        ({"encoder": "resnet50"}, "encoder"),
        ({"discriminator": "encoder"}, "d_encoder"),
        ({"encoder_weights": "ImageNet"}, "encoder_weights"),
        ({"weights_paths": {"resnet5O": "/w.pth"}}, "weights_paths"),
        ({"ngf": "64"}, "ngf"),
        ({"semi_supervised": 1}, "semi_supervised"),
        ({"generator": "resnet_12blocks"}, "generator"),
    ],
)
def test_model_config_errors_name_the_field(overrides, field):
    with pytest.raises(ValueError, match=rf"CycleGANConfig\.{field}:"):
        CycleGANConfig(**overrides)


def test_presets_and_unknown_preset():
    assert preset_config("cyclegan") == CycleGANConfig()
    tl = preset_config("vgg16-cyclegan", semi_supervised=True)
    assert (tl.generator, tl.encoder, tl.semi_supervised, tl.image_multiple) == (
        "unet",
        "vgg16",
        True,
        16,
    )
    assert CycleGANConfig.from_dict(tl.to_dict()) == tl
    with pytest.raises(ValueError, match="unknown preset 'resnet-50'"):
        preset_config("resnet-50")
