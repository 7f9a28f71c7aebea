"""The training loop on demo tiles: losses fall, exact resume, cancellation, schedules."""

from __future__ import annotations

import argparse
import json
import shutil
import threading

import pytest
import torch

from ganlab.data.dataset import UNLABELLED, select_labelled
from ganlab.data.demo import write_demo_tree
from ganlab.train import TrainConfig, train
from ganlab.train import cli as train_cli
from ganlab.train.runtime import load_checkpoint
from ganlab.train.trainer import CycleGANTrainer, build_training_data

PER_CLASS = 6


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=PER_CLASS, per_class_test=0, size=40, seed=2)
    return root / "train"


@pytest.fixture(scope="module")
def config(tiles) -> TrainConfig:
    return TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "benign")],
            "domain_y": [str(tiles / "malignant")],
            "model": {"ngf": 16, "ndf": 16},
            "image_size": 32,
            "load_size": 36,  # random 32x32 crops of 36x36 resizes, random flips
            "pool_size": 4,
            "n_epochs": 2,
            "n_epochs_decay": 1,
            "checkpoint_every": 2,
            "device": "cpu",
        }
    )


@pytest.fixture(scope="module")
def uninterrupted(config, tmp_path_factory):
    """A 3-epoch run with every progress report kept."""
    reports = []
    out = tmp_path_factory.mktemp("uninterrupted")
    result = train(config, out_dir=out, on_progress=reports.append)
    return result, reports


def test_losses_fall_over_a_short_run(uninterrupted):
    result, _ = uninterrupted
    history = load_checkpoint(result.checkpoint)["history"]
    assert len(history) == 3

    def reconstruction(epoch):  # cycle + identity L1 terms
        return sum(epoch[k] for k in ("cycle_A", "cycle_B", "idt_A", "idt_B"))

    assert reconstruction(history[-1]) < 0.8 * reconstruction(history[0])
    assert result.final_losses == history[-1]


def test_result_progress_and_self_describing_checkpoint(uninterrupted, config):
    result, reports = uninterrupted
    assert (result.epochs_done, result.global_step, result.cancelled) == (3, 3 * PER_CLASS, False)
    assert result.device == "cpu" and result.peak_gpu_mem_bytes == 0
    assert result.images_per_s > 0 and result.train_seconds > 0
    assert [(r.epoch, r.iteration) for r in reports[:2]] == [(1, 1), (1, 2)]
    last = reports[-1]
    assert (last.epoch, last.total_epochs, last.iteration, last.iterations_per_epoch) == (
        3,
        3,
        PER_CLASS,
        PER_CLASS,
    )
    assert (last.global_step, last.total_steps, last.eta_s) == (18, 18, 0.0)
    # the reference schedule for 2 + 1 epochs: full rate, then 1 - 1/2, then 0 in the last epoch
    assert {r.epoch: r.lr for r in reports} == {1: 2e-4, 2: pytest.approx(1e-4), 3: 0.0}
    assert set(last.losses) == {"G_A", "G_B", "cycle_A", "cycle_B", "idt_A", "idt_B", "D_A", "D_B"}
    saved = load_checkpoint(result.checkpoint)
    assert TrainConfig.from_dict(saved["config"]) == config
    assert saved["paper_names"] == {"G_A": "G: X->Y", "G_B": "F: Y->X", "D_A": "D_Y", "D_B": "D_X"}
    assert (saved["epoch"], saved["iteration"], saved["complete"]) == (3, 0, True)
    assert set(saved["networks"]) == {"G_A", "G_B", "D_A", "D_B"}
    assert {"optimizers", "pools", "rng", "schedule"} <= set(saved)
    assert (result.checkpoint.parent / "epoch_0002.pt").is_file()


def test_resume_after_interruption_is_bit_identical(uninterrupted, config, tmp_path):
    reference, _ = uninterrupted
    cancelled = train(
        config, out_dir=tmp_path, on_progress=lambda p: p.global_step == PER_CLASS + 2
    )
    assert cancelled.cancelled and (cancelled.epochs_done, cancelled.global_step) == (
        1,
        PER_CLASS + 2,
    )
    partial = load_checkpoint(cancelled.checkpoint)
    assert (partial["epoch"], partial["iteration"], partial["complete"]) == (1, 2, False)

    resumed_reports = []
    resumed = train(config, out_dir=tmp_path, on_progress=resumed_reports.append)
    assert (resumed.cancelled, resumed.epochs_done, resumed.global_step) == (
        False,
        3,
        3 * PER_CLASS,
    )
    assert (resumed_reports[0].epoch, resumed_reports[0].iteration) == (2, 3)  # continues mid-epoch
    a, b = load_checkpoint(reference.checkpoint), load_checkpoint(resumed.checkpoint)
    for net in a["networks"]:
        for key, tensor in a["networks"][net].items():
            assert torch.equal(tensor, b["networks"][net][key]), f"{net}.{key}"
    assert a["optimizers"]["G"]["param_groups"] == b["optimizers"]["G"]["param_groups"]
    assert torch.equal(
        a["optimizers"]["D"]["state"][0]["exp_avg_sq"],
        b["optimizers"]["D"]["state"][0]["exp_avg_sq"],
    )
    assert a["history"] == b["history"]
    assert resumed.final_losses == reference.final_losses


def test_stop_event_is_honoured_within_one_iteration(config, tmp_path):
    stop = threading.Event()
    steps = []

    def on_progress(progress):
        steps.append(progress.global_step)
        stop.set()  # as a worker thread would on a cancel request

    result = train(config, out_dir=tmp_path, on_progress=on_progress, stop_event=stop)
    assert result.cancelled and steps == [1] and result.global_step == 1
    assert load_checkpoint(result.checkpoint)["iteration"] == 1


def test_resume_extends_the_schedule_but_refuses_a_different_model(uninterrupted, config, tmp_path):
    result, _ = uninterrupted
    shutil.copyfile(result.checkpoint, tmp_path / "latest.pt")
    with pytest.raises(ValueError, match=r"differs in \['lambda_cycle'\]"):
        train(TrainConfig.from_dict({**config.to_dict(), "lambda_cycle": 5.0}), out_dir=tmp_path)
    longer = TrainConfig.from_dict({**config.to_dict(), "n_epochs_decay": 3})
    reports = []
    extended = train(longer, out_dir=tmp_path, on_progress=reports.append)
    assert (extended.epochs_done, extended.global_step) == (5, 5 * PER_CLASS)
    # the re-planned decay continues: epoch 4 of 2 + 3 runs at 1 - 3/4, the last at 0
    assert {r.epoch: r.lr for r in reports} == {4: pytest.approx(2e-4 * (1 - 3 / 4)), 5: 0.0}
    assert len(load_checkpoint(extended.checkpoint)["history"]) == 5


def test_freeze_schedule_keeps_pretrained_encoders_fixed_then_trains_them(tiles):
    config = TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "benign")],
            "domain_y": [str(tiles / "malignant")],
            "preset": "efficientnet-lite0-cyclegan",
            "model": {"ngf": 8, "ndf": 8},
            "image_size": 32,
            "load_size": 32,
            "freeze_encoder_epochs": 1,
            "n_epochs": 2,
            "n_epochs_decay": 0,
        }
    )
    torch.manual_seed(0)
    trainer = CycleGANTrainer(config, torch.device("cpu"))
    batch = next(iter(torch.utils.data.DataLoader(build_training_data(config), batch_size=1)))
    encoder, decoder = trainer.model.G_A.encoder, trainer.model.G_A.decoder

    def snapshot(module):
        return [p.detach().clone() for p in module.parameters()]

    def changed(before, module):
        return any(not torch.equal(b, p) for b, p in zip(before, module.parameters(), strict=True))

    enc0, dec0 = snapshot(encoder), snapshot(decoder)
    trainer.begin_epoch(0)
    trainer.step(batch)
    assert not changed(enc0, encoder) and changed(dec0, decoder)
    trainer.begin_epoch(1)
    trainer.step(batch)
    assert changed(enc0, encoder)


def test_label_fraction_hides_labels_per_class_deterministically(tiles):
    labels = [0] * 10 + [1] * 4 + [UNLABELLED] * 3
    kept = select_labelled(labels, 0.5, seed=3)
    assert kept == select_labelled(labels, 0.5, seed=3)
    assert (kept.count(0), kept.count(1), kept.count(UNLABELLED)) == (5, 2, 10)
    assert all(k in (label, UNLABELLED) for k, label in zip(kept, labels, strict=True))
    config = TrainConfig.from_dict(
        {
            "domain_x": [str(tiles / "benign")],
            "domain_y": [str(tiles / "malignant")],
            "semi_supervised": True,
            "label_fraction": 0.5,
            "image_size": 32,
            "load_size": 32,
        }
    )
    data = build_training_data(config)
    assert (data.domain_x.labels.count(0), data.domain_y.labels.count(1)) == (
        PER_CLASS // 2,
        PER_CLASS // 2,
    )


def test_cli_train_runs_and_resumes_from_a_json_config(tiles, tmp_path, capsys):
    config_file = tmp_path / "run.json"
    config_file.write_text(
        json.dumps(
            {
                "domain_x": [str(tiles / "benign")],
                "domain_y": [str(tiles / "malignant")],
                "model": {"ngf": 8, "ndf": 8},
                "image_size": 32,
                "load_size": 32,
                "n_epochs": 1,
                "n_epochs_decay": 0,
            }
        )
    )
    parser = argparse.ArgumentParser(prog="ganlab")
    train_cli.register(parser.add_subparsers(dest="command", required=True))
    argv = [
        "train",
        "--config",
        str(config_file),
        "--out",
        str(tmp_path / "run"),
        "--device",
        "cpu",
    ]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    first = json.loads(capsys.readouterr().out)
    assert (first["epochs_done"], first["global_step"], first["cancelled"]) == (1, PER_CLASS, False)
    args = parser.parse_args(argv)  # a finished run: resuming trains nothing more
    assert args.func(args) == 0
    again = json.loads(capsys.readouterr().out)
    assert (again["global_step"], again["checkpoint_sha256"]) == (
        PER_CLASS,
        first["checkpoint_sha256"],
    )
