"""TrainConfig: validation at the edge, JSON round trips, the reference LR schedule."""

from __future__ import annotations

import json

import pytest

from ganlab.models import preset_config
from ganlab.train import TrainConfig

DATA = {"domain_x": ["x/"], "domain_y": ["y/"]}


def test_defaults_are_the_reference_recipe():
    config = TrainConfig(**DATA)
    assert (config.lr, config.beta1, config.batch_size, config.pool_size) == (2e-4, 0.5, 1, 50)
    assert (config.gan_mode, config.lambda_cycle, config.lambda_identity) == ("lsgan", 10.0, 0.5)
    assert (config.load_size, config.image_size, config.n_epochs, config.n_epochs_decay) == (
        286,
        256,
        100,
        100,
    )
    assert config.model == preset_config("cyclegan")
    assert (config.x_label, config.y_label) == ("benign", "malignant")


def test_round_trip_and_partial_model_override():
    config = TrainConfig.from_dict(
        {
            **DATA,
            "preset": "resnet50-cyclegan",
            "semi_supervised": True,
            "model": {"encoder_weights": "random"},
        }
    )
    assert config.model.encoder == "resnet50" and config.model.encoder_weights == "random"
    assert config.model.semi_supervised
    data = json.loads(json.dumps(config.to_dict()))
    assert TrainConfig.from_dict(data) == config


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"image_size": 48, "preset": "resnet50-cyclegan"}, "image_size"),
        ({"image_size": 64, "load_size": 32}, "load_size"),
        ({"label_fraction": 1.5}, "label_fraction"),
        ({"batch_size": "4"}, "batch_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"gan_mode": "wgan"}, "gan_mode"),
        ({"preset": "pix2pix"}, "preset"),
        ({"x_label": "tumour"}, "x_label"),
        ({"labels": {"a.png": "cancer"}}, "labels"),
        ({"device": "tpu"}, "device"),
        ({"domain_x": []}, "domain_x"),
        ({"model": {"ngf": 0}}, "ngf"),
        ({"model": {"semi_supervised": True}}, "model.semi_supervised"),
    ],
)
def test_invalid_values_raise_naming_the_field(changes, field):
    with pytest.raises(ValueError, match=rf"\.{field}:"):
        TrainConfig.from_dict({**DATA, **changes})


def test_unknown_fields_are_rejected():
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['lambda_A'\]"):
        TrainConfig.from_dict({**DATA, "lambda_A": 10})
    with pytest.raises(ValueError, match=r"CycleGANConfig: unknown field\(s\) \['netG'\]"):
        TrainConfig.from_dict({**DATA, "model": {"netG": "resnet_9blocks"}})


def test_linear_decay_matches_the_reference_lambda_rule():
    config = TrainConfig(**DATA, n_epochs=100, n_epochs_decay=100)
    # reference: 1 - max(0, epoch + epoch_count - n_epochs) / (n_epochs_decay + 1), epoch_count = 1
    assert [config.lr_factor(e) for e in (0, 98, 99)] == [1.0, 1.0, 1.0]
    assert config.lr_factor(100) == pytest.approx(1 - 1 / 101)
    assert config.lr_factor(199) == pytest.approx(1 - 100 / 101)


def test_json_file_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "cfg").mkdir()
    path = tmp_path / "cfg" / "run.json"
    path.write_text(
        json.dumps(
            {"domain_x": ["../x"], "domain_y": ["/abs/y"], "labels": {"../x/a.png": "malignant"}}
        )
    )
    config = TrainConfig.from_json_file(path)
    assert config.domain_x == [str(tmp_path / "cfg" / "../x")]
    assert config.domain_y == ["/abs/y"]
    assert config.labels == {str(tmp_path / "cfg" / "../x/a.png"): "malignant"}
