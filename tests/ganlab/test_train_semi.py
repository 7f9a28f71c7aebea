"""The semi-supervised class head learns benign vs malignant from a fraction of the labels."""

from __future__ import annotations

import numpy as np
import pytest

from ganlab.data.dataset import expand_sources
from ganlab.data.demo import write_demo_tree
from ganlab.train import TrainConfig, predict, train


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=12, per_class_test=8, size=64, seed=3)
    return root


def test_semi_supervised_head_beats_chance_on_held_out_tiles(tiles, tmp_path):
    config = TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "train" / "benign")],
            "domain_y": [str(tiles / "train" / "malignant")],
            "semi_supervised": True,
            "label_fraction": 0.5,  # 6 labelled tiles per class; the rest only train the GAN
            # plain CycleGAN generators (narrow, for speed) and ImageNet EfficientNet-Lite0
            # discriminators whose class heads read pretrained features
            "model": {
                "ngf": 8,
                "ndf": 16,
                "discriminator": "encoder",
                "d_encoder": "efficientnet_lite0",
            },
            "image_size": 64,
            "load_size": 64,
            "batch_size": 2,
            "n_epochs": 1,
            "n_epochs_decay": 0,
            "device": "cpu",
        }
    )
    result = train(config, out_dir=tmp_path)
    benign = expand_sources([tiles / "test" / "benign"])
    malignant = expand_sources([tiles / "test" / "malignant"])
    p_malignant = predict(result.checkpoint, benign + malignant, device="cpu")
    truth = np.array([0] * len(benign) + [1] * len(malignant))
    accuracy = float(((p_malignant >= 0.5) == truth).mean())
    assert accuracy >= 0.85, p_malignant.round(2)
    assert p_malignant.shape == (16,) and ((p_malignant >= 0) & (p_malignant <= 1)).all()
