"""Speed options of a training step: fused Adam, torch.compile modes (plumbed, not compiled)."""

from __future__ import annotations

import pytest
import torch

from ganlab.data.demo import write_demo_tree
from ganlab.train import TrainConfig, train
from ganlab.train.config import RESUMABLE_CHANGES
from ganlab.train.runtime import load_checkpoint
from ganlab.train.trainer import CycleGANTrainer


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=2, per_class_test=0, size=32, seed=3)
    return root / "train"


def make_config(tiles, **changes) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "benign")],
            "domain_y": [str(tiles / "malignant")],
            "model": {"ngf": 8, "ndf": 8},
            "image_size": 32,
            "load_size": 32,
            "pool_size": 2,
            "n_epochs": 1,
            "n_epochs_decay": 0,
            "device": "cpu",
            **changes,
        }
    )


def random_batch(seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return {
        "A": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
        "B": torch.rand(2, 3, 32, 32, generator=g) * 2 - 1,
        "A_label": torch.zeros(2, dtype=torch.long),
        "B_label": torch.ones(2, dtype=torch.long),
    }


def trained_weights(config: TrainConfig, steps: int) -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    trainer = CycleGANTrainer(config, torch.device("cpu"), load_weights=False)
    trainer.begin_epoch(0)
    for step in range(steps):
        trainer.step(random_batch(step))
    return {k: v.detach().clone() for k, v in trainer.model.state_dict().items()}


def test_fused_adam_is_the_default_and_the_same_update_to_rounding(tiles):
    fused_config = make_config(tiles)
    assert fused_config.fused_adam
    trainer = CycleGANTrainer(fused_config, torch.device("cpu"), load_weights=False)
    assert trainer.opt_G.defaults["fused"] and trainer.opt_D.defaults["fused"]
    plain = CycleGANTrainer(make_config(tiles, fused_adam=False), torch.device("cpu"))
    assert not plain.opt_G.defaults["fused"]

    # one step: later ones amplify rounding (Adam divides by the root of tiny second moments,
    # e.g. of biases before instance norm), so a few steps on differ by more than rounding
    fused = trained_weights(fused_config, steps=1)
    reference = trained_weights(make_config(tiles, fused_adam=False), steps=1)
    initial = trained_weights(fused_config, steps=0)
    assert any(not torch.equal(fused[k], initial[k]) for k in initial)  # real updates compared
    for key, value in reference.items():
        torch.testing.assert_close(fused[key], value, rtol=0, atol=1e-7, msg=key)


def test_switching_fused_adam_or_compile_mode_keeps_a_run_resumable(tiles, tmp_path):
    assert {"fused_adam", "compile_mode"} <= RESUMABLE_CHANGES
    cancelled = train(
        make_config(tiles, fused_adam=False), out_dir=tmp_path, on_progress=lambda p: True
    )
    assert cancelled.cancelled
    resumed = train(make_config(tiles, compile_mode="max-autotune"), out_dir=tmp_path)
    assert not resumed.cancelled and resumed.epochs_done == 1
    assert load_checkpoint(resumed.checkpoint)["config"]["fused_adam"] is True


@pytest.mark.parametrize(
    ("mode", "marks_steps"),
    [
        ("default", False),
        ("max-autotune-no-cudagraphs", False),
        ("reduce-overhead", True),
        ("max-autotune", True),
    ],
)
def test_compile_mode_reaches_every_network(tiles, monkeypatch, mode, marks_steps):
    compiled, marks = [], []
    monkeypatch.setattr(
        torch.nn.Module, "compile", lambda self, **kw: compiled.append((type(self).__name__, kw))
    )
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: marks.append(1))
    trainer = CycleGANTrainer(
        make_config(tiles, compile=True, compile_mode=mode), torch.device("cpu")
    )
    assert [kw for _, kw in compiled] == [{"mode": mode}] * 4
    trainer.begin_epoch(0)
    trainer.step(random_batch())
    trainer.step(random_batch(1))
    assert marks == ([1, 1] if marks_steps else [])
    compiled.clear()
    CycleGANTrainer(make_config(tiles, compile_mode="max-autotune"), torch.device("cpu"))
    assert compiled == []  # compile_mode alone compiles nothing
