"""Standalone transfer-learning classifier: real or real + synthetic, predictions, CLI."""

from __future__ import annotations

import argparse
import csv
import json

import numpy as np
import pytest

from ganlab.data.dataset import expand_sources
from ganlab.data.demo import write_demo_tree
from ganlab.train import ClassifierConfig, predict, train_classifier
from ganlab.train import cli as train_cli


@pytest.fixture(scope="module")
def tiles(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiles")
    write_demo_tree(root, per_class_train=12, per_class_test=8, size=64, seed=5)
    return root


def real(tiles) -> dict[str, list[str]]:
    return {name: [str(tiles / "train" / name)] for name in ("benign", "malignant")}


def held_out(tiles):
    benign = expand_sources([tiles / "test" / "benign"])
    malignant = expand_sources([tiles / "test" / "malignant"])
    return benign + malignant, np.array([0] * len(benign) + [1] * len(malignant))


def test_classifier_on_real_images_generalises(tiles, tmp_path):
    config = ClassifierConfig(
        real=real(tiles), image_size=64, batch_size=8, epochs=3, lr=1e-3, device="cpu"
    )
    result = train_classifier(config, out_dir=tmp_path)
    assert (result.epochs_done, result.cancelled, result.n_real, result.n_synthetic) == (
        3,
        False,
        24,
        0,
    )
    images, truth = held_out(tiles)
    p_malignant = predict(result.checkpoint, images, device="cpu")
    assert float(((p_malignant >= 0.5) == truth).mean()) >= 0.85, p_malignant.round(2)
    # arrays work as inputs too, and give the same answer as their files
    from ganlab.data.imageio import load_rgb

    assert np.allclose(
        predict(result.checkpoint, [load_rgb(images[0])], device="cpu"), p_malignant[:1]
    )


def test_real_plus_synthetic_and_cancellation(tiles, tmp_path):
    synthetic_root = tmp_path / "synthetic"  # stands for generated images: any labelled folder
    write_demo_tree(synthetic_root, per_class_train=0, per_class_test=4, size=64, seed=6)
    config = ClassifierConfig(
        real=real(tiles),
        synthetic={"malignant": [str(synthetic_root / "test" / "malignant")]},
        encoder_weights="random",
        image_size=64,
        batch_size=8,
        epochs=2,
        device="cpu",
    )
    result = train_classifier(
        config, out_dir=tmp_path / "run", on_progress=lambda p: p.global_step == 1
    )
    assert (result.n_real, result.n_synthetic) == (24, 4)
    assert result.cancelled and result.epochs_done == 0
    assert result.checkpoint.is_file()  # cancelled runs leave a usable checkpoint
    assert predict(result.checkpoint, held_out(tiles)[0][:2], device="cpu").shape == (2,)


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"real": {"benign": ["x"]}}, "real"),
        ({"synthetic": {"tumour": ["x"]}}, "synthetic"),
        ({"encoder": "alexnet"}, "encoder"),
        ({"image_size": 100}, "image_size"),
    ],
)
def test_classifier_config_errors_name_the_field(changes, field):
    data = {"real": {"benign": ["b"], "malignant": ["m"]}, **changes}
    with pytest.raises(ValueError, match=rf"ClassifierConfig\.{field}:"):
        ClassifierConfig.from_dict(data)


def test_cli_classify_train_and_predict(tiles, tmp_path, capsys):
    config_file = tmp_path / "classifier.json"
    config_file.write_text(
        json.dumps(
            {
                "real": {n: [str(tiles / "train" / n)] for n in ("benign", "malignant")},
                "encoder_weights": "random",
                "image_size": 32,
                "batch_size": 12,
                "epochs": 1,
            }
        )
    )
    parser = argparse.ArgumentParser(prog="ganlab")
    train_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "classify",
            "train",
            "--config",
            str(config_file),
            "--out",
            str(tmp_path / "out"),
            "--device",
            "cpu",
        ]
    )
    assert args.func(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["epochs_done"] == 1 and summary["n_real"] == 24
    table = tmp_path / "p.csv"
    args = parser.parse_args(
        [
            "classify",
            "predict",
            str(tiles / "test"),
            "--checkpoint",
            summary["checkpoint"],
            "--csv",
            str(table),
            "--device",
            "cpu",
        ]
    )
    assert args.func(args) == 0
    rows = list(csv.DictReader(table.open()))
    assert len(rows) == 16 and {r["prediction"] for r in rows} <= {"benign", "malignant"}
    assert all(0.0 <= float(r["p_malignant"]) <= 1.0 for r in rows)


def test_random_batchnorm_encoder_on_one_pixel_maps_is_a_config_error(tiles):
    real = {n: [str(tiles / "train" / n)] for n in ("benign", "malignant")}
    with pytest.raises(ValueError, match=r"ClassifierConfig\.image_size: encoder 'resnet50' with encoder_weights='random' cannot train on a batch of 1"):
        ClassifierConfig(real=real, encoder="resnet50", encoder_weights="random", image_size=32, batch_size=1)
    ClassifierConfig(real=real, encoder="resnet50", encoder_weights="random", image_size=64, batch_size=1)
    ClassifierConfig(real=real, encoder="vgg16", encoder_weights="random", image_size=32, batch_size=1)  # no BatchNorm
