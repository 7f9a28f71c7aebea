"""Batched generation in both directions with reconstructions and a provenance manifest."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

from ganlab.data.demo import write_demo_tree
from ganlab.data.imageio import load_rgb
from ganlab.models.weights import sha256_file
from ganlab.train import TrainConfig, generate, predict, train
from ganlab.train import cli as train_cli


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """Tiles and a one-epoch CycleGAN checkpoint trained on them."""
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=3, per_class_test=0, size=32, seed=4)
    config = TrainConfig.from_dict(
        {
            "domain_x": [str(root / "train" / "benign")],
            "domain_y": [str(root / "train" / "malignant")],
            "model": {"ngf": 8, "ndf": 8},
            "image_size": 32,
            "load_size": 32,
            "n_epochs": 1,
            "n_epochs_decay": 0,
            "device": "cpu",
        }
    )
    result = train(config, out_dir=tmp_path_factory.mktemp("run"))
    return root / "train", result.checkpoint


@pytest.mark.parametrize(
    ("direction", "source", "fake", "rec"),
    [("AtoB", "benign", "fake_B", "rec_A"), ("BtoA", "malignant", "fake_A", "rec_B")],
)
def test_generate_writes_images_records_and_manifest(run, tmp_path, direction, source, fake, rec):
    tiles, checkpoint = run
    records = generate(
        checkpoint,
        [tiles / source],
        out_dir=tmp_path,
        direction=direction,
        batch_size=2,
        reconstructions=True,
        device="cpu",
    )
    assert len(records) == 6  # 3 translations + 3 reconstructions
    sha = sha256_file(checkpoint)
    sources = sorted(str(p) for p in (tiles / source).glob("*.png"))
    assert sorted({r["source"] for r in records}) == sources
    assert {r["checkpoint_sha256"] for r in records} == {sha}
    assert {r["direction"] for r in records} == {direction}
    assert [r["kind"] for r in records].count("reconstruction") == 3
    for record in records:
        suffix = fake if record["kind"] == "translation" else rec
        assert record["output"].endswith(f"_{suffix}.png")
        pixels = load_rgb(record["output"])
        assert pixels.shape == (32, 32, 3) and pixels.dtype == np.uint8
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["checkpoint_sha256"] == sha and manifest["direction"] == direction
    assert manifest["images"] == records
    assert TrainConfig.from_dict(manifest["config"]).image_size == 32


def test_generation_is_deterministic_and_rejects_bad_arguments(run, tmp_path):
    tiles, checkpoint = run
    first = generate(checkpoint, [tiles / "benign"], out_dir=tmp_path / "a", device="cpu")
    second = generate(
        checkpoint, [tiles / "benign"], out_dir=tmp_path / "b", batch_size=1, device="cpu"
    )
    for a, b in zip(first, second, strict=True):
        assert np.array_equal(load_rgb(a["output"]), load_rgb(b["output"]))
    with pytest.raises(ValueError, match="direction must be one of"):
        generate(checkpoint, [tiles / "benign"], out_dir=tmp_path, direction="XtoY")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        generate(checkpoint, [tmp_path / "nowhere"], out_dir=tmp_path)
    with pytest.raises(ValueError, match="without semi_supervised"):
        predict(checkpoint, [first[0]["source"]])


def test_cli_generate_and_help(run, tmp_path, capsys):
    tiles, checkpoint = run
    parser = argparse.ArgumentParser(prog="ganlab")
    train_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "generate",
            str(tiles / "malignant"),
            "--checkpoint",
            str(checkpoint),
            "--out",
            str(tmp_path),
            "--direction",
            "BtoA",
            "--device",
            "cpu",
        ]
    )
    assert args.func(args) == 0
    assert "wrote 3 images" in capsys.readouterr().out
    assert len(json.loads((tmp_path / "manifest.json").read_text())["images"]) == 3
    for command in (["train", "--help"], ["generate", "--help"], ["classify", "predict", "--help"]):
        with pytest.raises(SystemExit):
            parser.parse_args(command)
    assert "G_A = G: X->Y" in capsys.readouterr().out
