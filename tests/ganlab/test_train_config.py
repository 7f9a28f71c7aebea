"""TrainConfig: validation at the edge, JSON round trips, the reference LR schedule."""

from __future__ import annotations

import dataclasses
import json
import re
import warnings

import pytest
import torch

from ganlab.data.demo import write_demo_tree
from ganlab.models import build_generator, preset_config
from ganlab.train import TrainConfig
from ganlab.train.trainer import build_training_data

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
        ({"compile_mode": "fastest"}, "compile_mode"),
        ({"fused_adam": "yes"}, "fused_adam"),
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


def reference_factors(n_epochs: int, n_epochs_decay: int) -> list[float]:
    """LR factor of each epoch in the reference: ``networks.get_scheduler``'s ``lambda_rule``
    (``epoch_count=1``) in torch's LambdaLR, stepped at the beginning of every epoch as the
    reference's ``train.py`` does (``model.update_learning_rate()`` first in the epoch loop)."""

    def lambda_rule(epoch: int) -> float:
        return 1.0 - max(0, epoch + 1 - n_epochs) / float(n_epochs_decay + 1)

    optimizer = torch.optim.SGD(torch.nn.Linear(1, 1).parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda=lambda_rule)
    factors = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "lr_scheduler.step() before optimizer.step()"
        for _epoch in range(1, n_epochs + n_epochs_decay + 1):
            scheduler.step()
            factors.append(optimizer.param_groups[0]["lr"])
    return factors


@pytest.mark.parametrize(("n_epochs", "n_epochs_decay"), [(100, 100), (3, 2), (1, 1), (5, 1), (1, 4)])
def test_linear_decay_matches_the_reference_lambda_rule(n_epochs, n_epochs_decay):
    config = TrainConfig(**DATA, n_epochs=n_epochs, n_epochs_decay=n_epochs_decay)
    ours = [config.lr_factor(e) for e in range(config.total_epochs)]
    assert ours == pytest.approx(reference_factors(n_epochs, n_epochs_decay), abs=1e-12)
    assert ours[-1] == 0.0  # the last epoch runs at LR 0, as the reference's
    assert all(f == 1.0 for f in ours[: n_epochs - 1])  # full rate until the decay starts
    assert all(a > b for a, b in zip(ours[n_epochs - 1 :], ours[n_epochs:], strict=False))


def test_reference_schedule_in_numbers():
    config = TrainConfig(**DATA, n_epochs=100, n_epochs_decay=100)
    # 1-based epoch e runs at 1 - max(0, e + 1 - 100) / 101: full rate through epoch 99
    assert [config.lr_factor(e) for e in (0, 97, 98)] == [1.0, 1.0, 1.0]
    assert config.lr_factor(99) == pytest.approx(1 - 1 / 101)
    assert config.lr_factor(199) == 0.0


def test_no_decay_epochs_keep_the_rate_constant():
    # the reference's rule would run the last (here: only) epoch at LR 0
    config = TrainConfig(**DATA, n_epochs=2, n_epochs_decay=0)
    assert [config.lr_factor(e) for e in range(2)] == [1.0, 1.0]


@pytest.mark.parametrize("preset", ["resnet50-cyclegan", "efficientnet-lite0-cyclegan"])
def test_random_batchnorm_encoders_at_one_pixel_are_a_config_error(preset):
    """ResNet-50/EfficientNet trained from scratch at 32 px end in a 1x1 map: one image per
    batch leaves BatchNorm one value per channel. The config says so instead of crashing."""
    random = {**DATA, "preset": preset, "model": {"encoder_weights": "random"}, "load_size": 32}
    with pytest.raises(ValueError, match=r"TrainConfig\.image_size: encoder '.*' with encoder_weights='random' cannot train on a batch of 1 image"):
        TrainConfig.from_dict({**random, "image_size": 32, "batch_size": 1})
    message = "Use image_size >= 64, batches of at least 2 images, or encoder_weights='imagenet'"
    with pytest.raises(ValueError, match=re.escape(message)):
        TrainConfig.from_dict({**random, "image_size": 32, "batch_size": 1})
    TrainConfig.from_dict({**random, "image_size": 32, "batch_size": 2})
    TrainConfig.from_dict({**random, "image_size": 64, "load_size": 64, "batch_size": 1})
    TrainConfig.from_dict({**DATA, "preset": preset, "image_size": 32, "load_size": 32})  # frozen statistics
    # what the rule prevents: the crash inside BatchNorm
    model = preset_config(preset)
    generator = build_generator(dataclasses.replace(model, encoder_weights="random")).train()
    with pytest.raises(ValueError, match="Expected more than 1 value per channel when training"):
        generator(torch.zeros(1, 3, 32, 32))
    generator(torch.zeros(2, 3, 32, 32))


def test_a_last_batch_of_one_is_refused_before_training(tmp_path):
    write_demo_tree(tmp_path, per_class_train=3, per_class_test=0, size=32)
    config = TrainConfig.from_dict(
        {"domain_x": [str(tmp_path / "train" / "benign")], "domain_y": [str(tmp_path / "train" / "malignant")],
         "preset": "resnet50-cyclegan", "model": {"encoder_weights": "random"},
         "image_size": 32, "load_size": 32, "batch_size": 2}
    )  # fmt: skip
    with pytest.raises(ValueError, match=r"the last batch of every epoch holds 1 of the 3 image pairs.*divides 3"):
        build_training_data(config)


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
