"""FID/KID agree with torchmetrics on the same features; extractors are found offline only."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torchmetrics.image.fid import FrechetInceptionDistance
from torchmetrics.image.kid import KernelInceptionDistance

from ganlab.data.demo import demo_tile
from ganlab.metrics.fid import (
    extract_features,
    fid_from_features,
    get_feature_extractor,
    kid_from_features,
)
from ganlab.models.weights import MissingWeightsError


class _GivenFeatures(nn.Module):
    """Lets torchmetrics consume precomputed features: its 'images' are the features."""

    def __init__(self, num_features: int) -> None:
        super().__init__()
        self.num_features = num_features

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return features


def _features(
    n: int, dim: int, *, shift: float = 0.0, scale: float = 1.0, seed: int = 0
) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, dim, generator=generator, dtype=torch.float64) * scale + shift


def test_fid_agrees_with_torchmetrics_on_the_same_features() -> None:
    real, fake = _features(120, 32, seed=1), _features(90, 32, shift=0.3, scale=1.2, seed=2)
    reference = FrechetInceptionDistance(feature=_GivenFeatures(32))
    reference.set_dtype(torch.float64)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    assert fid_from_features(real, fake) == pytest.approx(
        reference.compute().item(), rel=1e-9, abs=1e-9
    )


def test_kid_agrees_with_torchmetrics_for_the_same_seed() -> None:
    real, fake = _features(80, 16, seed=3), _features(70, 16, shift=0.2, seed=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "will save all extracted features in buffer"
        reference = KernelInceptionDistance(feature=_GivenFeatures(16), subsets=6, subset_size=40)
    reference.update(real, real=True)
    reference.update(fake, real=False)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(11)  # torchmetrics draws its subsets from the global generator
        expected_mean, expected_std = reference.compute()
    ours = kid_from_features(real, fake, subsets=6, subset_size=40, seed=11)
    assert ours["mean"] == pytest.approx(expected_mean.item(), rel=1e-9)
    assert ours["std"] == pytest.approx(expected_std.item(), rel=1e-9)
    assert (ours["subsets"], ours["subset_size"]) == (6, 40)


def test_identical_sets_score_zero_and_shifted_sets_score_higher() -> None:
    real = _features(200, 24, seed=5)
    same_distribution = _features(200, 24, seed=6)
    shifted = _features(200, 24, shift=0.5, seed=6)
    assert fid_from_features(real, real) == pytest.approx(0.0, abs=1e-8)
    same = kid_from_features(real, same_distribution, subsets=20, subset_size=100)
    moved = kid_from_features(real, shifted, subsets=20, subset_size=100)
    assert abs(same["mean"]) < 0.02 < moved["mean"]
    assert fid_from_features(real, same_distribution) < fid_from_features(real, shifted)
    # subsets are capped at the smaller set; the same seed gives the same subsets
    assert kid_from_features(real[:30], shifted, subsets=3, seed=1) == kid_from_features(
        real[:30], shifted, subsets=3, seed=1
    )
    assert kid_from_features(real[:30], shifted, subsets=3)["subset_size"] == 30


def test_tiny_negative_fid_is_reported_not_clamped() -> None:
    """With fewer images than feature dimensions a set against itself comes out slightly below
    0 by round-off; the value is reported as computed (as torchmetrics does), not as 0."""
    features = _features(10, 64, seed=8)
    ours = fid_from_features(features, features)
    reference = FrechetInceptionDistance(feature=_GivenFeatures(64))
    reference.set_dtype(torch.float64)
    reference.update(features, real=True)
    reference.update(features, real=False)
    expected = reference.compute().item()
    assert expected < 0 and ours < 0
    assert ours == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize(
    ("real", "fake", "message"),
    [
        (torch.zeros(1, 4), torch.zeros(5, 4), "real features: need at least 2 images, got 1"),
        (torch.zeros(5, 4), torch.zeros(5, 3), "feature sizes differ"),
        (torch.full((5, 4), float("nan")), torch.zeros(5, 4), "real features contain NaN"),
        (torch.zeros(5), torch.zeros(5, 4), r"must have shape \(N, D\)"),
    ],
)
def test_bad_features_raise_value_errors(real, fake, message) -> None:
    with pytest.raises(ValueError, match=message):
        fid_from_features(real, fake)
    with pytest.raises(ValueError, match=message):
        kid_from_features(real, fake)


def test_auto_uses_efficientnet_lite0_when_no_inception_weights_are_cached(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # an empty hub cache
    extractor = get_feature_extractor("auto")
    assert extractor.describe()["name"] == "efficientnet_lite0"
    assert extractor.num_features == 1280
    tiles = [
        demo_tile("benign", 0, size=64),
        demo_tile("malignant", 0, size=64),
        demo_tile("benign", 1, size=48),
    ]
    features = extract_features(extractor, tiles, batch_size=8)
    assert features.shape == (3, 1280) and features.dtype == torch.float64
    assert torch.isfinite(features).all()
    # deterministic, and a different image gives different features
    again = extract_features(extractor, tiles[:1])
    torch.testing.assert_close(again[0], features[0], rtol=1e-5, atol=1e-6)
    assert not torch.allclose(features[0], features[1])
    with pytest.raises(ValueError, match="no images"):
        extract_features(extractor, [])
    with pytest.raises(ValueError, match="expected uint8 images"):
        extractor(torch.zeros(1, 3, 32, 32))
    extractor.train()  # a fixed feature map: BatchNorm statistics never update
    assert not any(module.training for module in extractor.modules())


def test_named_inception_without_cached_weights_says_which_file_to_put_where(
    tmp_path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    with pytest.raises(MissingWeightsError, match=r"inception_v3_google-0cc3c7bd\.pth"):
        get_feature_extractor("inception_v3_torchvision")
    with pytest.raises(ValueError, match="unknown feature extractor 'inception'"):
        get_feature_extractor("inception")
