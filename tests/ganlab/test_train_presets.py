"""Every preset, with and without the semi-supervised head, runs a training step on demo tiles."""

from __future__ import annotations

import math

import pytest
import torch
from torch.utils.data import DataLoader

from ganlab.data.demo import write_demo_tree
from ganlab.models import MissingWeightsError
from ganlab.models.cyclegan import NETWORK_NAMES, PRESETS
from ganlab.train import TrainConfig, train
from ganlab.train.trainer import CycleGANTrainer, build_training_data

# no ImageNet files for these here: they run with explicit random initialisation
WITHOUT_LOCAL_WEIGHTS = {"resnet50-cyclegan", "vgg16-cyclegan"}


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=2, per_class_test=0, size=32, seed=1)
    return root / "train"


def config_for(tiles, preset: str, semi_supervised: bool, **changes) -> TrainConfig:
    model = {"encoder_weights": "random"} if preset in WITHOUT_LOCAL_WEIGHTS else {}
    return TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "benign")],
            "domain_y": [str(tiles / "malignant")],
            "preset": preset,
            "semi_supervised": semi_supervised,
            "model": model,
            "image_size": 32,
            "load_size": 32,
            "batch_size": 2,  # also keeps BatchNorm of randomly initialised encoders defined at 1x1
            "n_epochs": 1,
            "n_epochs_decay": 0,
            "device": "cpu",
            **changes,
        }
    )


@pytest.mark.parametrize("semi_supervised", [False, True], ids=["plain", "semi"])
@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_preset_runs_a_training_step(tiles, preset, semi_supervised):
    config = config_for(tiles, preset, semi_supervised)
    torch.manual_seed(0)
    trainer = CycleGANTrainer(config, torch.device("cpu"))
    trainer.begin_epoch(0)
    batch = next(iter(DataLoader(build_training_data(config), batch_size=2)))
    before = {
        name: [p.detach().clone() for p in getattr(trainer.model, name).parameters()]
        for name in NETWORK_NAMES
    }
    losses = trainer.step(batch)
    expected = {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    assert set(losses) == (expected | {"cls_A", "cls_B"} if semi_supervised else expected)
    assert all(math.isfinite(v) for v in losses.values())
    for name in NETWORK_NAMES:  # every network took an optimiser step
        after = list(getattr(trainer.model, name).parameters())
        assert any(not torch.equal(b, a) for b, a in zip(before[name], after, strict=True)), name
    if semi_supervised:
        assert (
            losses["cls_A"] > 0 and losses["cls_B"] > 0
        )  # both labelled domains reached the heads
    counts = trainer.model.parameter_counts()
    if preset == "cyclegan":
        assert counts["G_A"] == 11_378_179
        assert counts["D_A"] == 2_764_737 + (1026 if semi_supervised else 0)  # + Linear(512, 2)


@pytest.mark.parametrize("preset", sorted(WITHOUT_LOCAL_WEIGHTS))
def test_missing_imagenet_weights_stop_training_with_the_file_to_place(
    tiles, tmp_path, monkeypatch, preset
):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    config = config_for(tiles, preset, False, model={})  # the preset's ImageNet encoder
    filename = {
        "resnet50-cyclegan": "resnet50-0676ba61.pth",
        "vgg16-cyclegan": "vgg16-397923af.pth",
    }[preset]
    with pytest.raises(
        MissingWeightsError, match=f"at {tmp_path / 'torch' / 'hub' / 'checkpoints' / filename}"
    ):
        train(config, out_dir=tmp_path / "run")
