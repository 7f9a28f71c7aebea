"""Batched generation in both directions with reconstructions and a provenance manifest;
overlapped decoding and writing give the same files; compile and precision options."""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ganlab.data.demo import write_demo_tree
from ganlab.data.imageio import load_rgb
from ganlab.models.weights import sha256_file
from ganlab.train import TrainConfig, generate, predict, train
from ganlab.train import cli as train_cli
from ganlab.train.generation import GenerationSettings, PngWriter


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
    again = generate(checkpoint, [tiles / "benign"], out_dir=tmp_path / "c", device="cpu")
    assert _files(first) == _files(again)
    second = generate(
        checkpoint, [tiles / "benign"], out_dir=tmp_path / "b", batch_size=1, device="cpu"
    )
    # another batch size may pick another convolution algorithm: the same image up to a
    # rounding step on a rare pixel, never another image
    for a, b in zip(first, second, strict=True):
        difference = np.abs(load_rgb(a["output"]).astype(int) - load_rgb(b["output"]))
        assert difference.max() <= 1 and (difference > 0).mean() < 0.01
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


def _files(records):
    return [(Path(r["output"]).name, Path(r["output"]).read_bytes()) for r in records]


def test_overlapped_decoding_and_writing_give_the_same_files(run, tmp_path):
    tiles, checkpoint = run
    common = {
        "batch_size": 2,
        "reconstructions": True,
        "device": "cpu",
    }  # 3 images: last batch of 1
    sync = generate(checkpoint, [tiles / "benign"], out_dir=tmp_path / "sync", **common)
    overlapped = generate(
        checkpoint,
        [tiles / "benign"],
        out_dir=tmp_path / "overlapped",
        settings=GenerationSettings(num_workers=2, writer_threads=3),
        **common,
    )
    assert _files(sync) == _files(overlapped)
    assert [{**r, "output": Path(r["output"]).name} for r in sync] == [
        {**r, "output": Path(r["output"]).name} for r in overlapped
    ]
    manifest = json.loads((tmp_path / "overlapped" / "manifest.json").read_text())
    assert manifest["settings"]["writer_threads"] == 3 and manifest["settings"]["amp"] == "off"


@pytest.mark.parametrize("threads", [0, 2])
def test_a_failed_write_fails_generation(run, tmp_path, threads):
    tiles, checkpoint = run
    first = sorted((tiles / "benign").glob("*.png"))[1]
    (tmp_path / f"00001_{first.stem}_fake_B.png").mkdir(parents=True)  # cannot be written
    with pytest.raises(IsADirectoryError):
        generate(
            checkpoint,
            [tiles / "benign"],
            out_dir=tmp_path,
            batch_size=1,
            device="cpu",
            settings=GenerationSettings(writer_threads=threads),
        )
    assert not (tmp_path / "manifest.json").exists()


def test_png_writer_raises_the_first_error_and_keeps_the_callers(tmp_path):
    image = torch.zeros(1, 3, 4, 4)
    writer = PngWriter(threads=1)
    writer.submit(image, [tmp_path / "missing" / "a.png"])
    writer.submit(image, [tmp_path / "b.png"])
    with pytest.raises(FileNotFoundError, match="missing"):
        writer.close()
    with pytest.raises(RuntimeError, match="the caller's"), PngWriter(threads=2) as writer:
        writer.submit(image, [tmp_path / "missing" / "c.png"])
        raise RuntimeError("the caller's error")
    with PngWriter(threads=2) as writer:
        for i in range(10):  # more than the 4 batches that may wait
            writer.submit(image + i / 10, [tmp_path / f"{i}.png"])
    assert len(list(tmp_path.glob("[0-9].png"))) == 10


def test_compiled_generation_sees_one_batch_shape(run, tmp_path, monkeypatch):
    tiles, checkpoint = run
    shapes = []

    def fake_compile(net, mode):
        assert mode == "reduce-overhead"
        return lambda images: (shapes.append(tuple(images.shape)), net(images))[1]

    monkeypatch.setattr(torch, "compile", fake_compile)
    monkeypatch.setattr(torch.compiler, "cudagraph_mark_step_begin", lambda: shapes.append("step"))
    settings = GenerationSettings(compile=True, compile_mode="reduce-overhead", channels_last=True)
    compiled = generate(
        checkpoint,
        [tiles / "benign"],
        out_dir=tmp_path / "c",
        batch_size=2,
        device="cpu",
        settings=settings,
    )
    assert shapes == ["step", (2, 3, 32, 32), "step", (2, 3, 32, 32)]  # 3 images, padded
    plain = generate(
        checkpoint, [tiles / "benign"], out_dir=tmp_path / "p", batch_size=2, device="cpu"
    )
    assert len(compiled) == 3
    for a, b in zip(compiled, plain, strict=True):  # channels_last convolutions round differently
        assert np.abs(load_rgb(a["output"]).astype(int) - load_rgb(b["output"])).max() <= 1


def test_generation_settings_are_validated_and_chosen_per_device():
    with pytest.raises(ValueError, match=r"GenerationSettings\.amp: must be 'off' or 'bf16'"):
        GenerationSettings(amp="auto")
    with pytest.raises(ValueError, match=r"GenerationSettings\.writer_threads: must be >= 0"):
        GenerationSettings(writer_threads=-1)
    with pytest.raises(ValueError, match=r"GenerationSettings\.compile_mode"):
        GenerationSettings(compile_mode="fast")
    assert GenerationSettings.for_device(torch.device("cpu")) == GenerationSettings()
    gpu = GenerationSettings.for_device(torch.device("cuda"))
    assert gpu.amp == "off" and gpu.num_workers >= 1 and gpu.writer_threads >= 1


def test_bf16_generation_needs_cuda(run, tmp_path):
    tiles, checkpoint = run
    with pytest.raises(ValueError, match="amp='bf16' needs a CUDA device"):
        generate(
            checkpoint,
            [tiles / "benign"],
            out_dir=tmp_path,
            device="cpu",
            settings=GenerationSettings(amp="bf16"),
        )


def test_cli_generate_speed_options_reach_the_settings(run, tmp_path):
    tiles, checkpoint = run
    parser = argparse.ArgumentParser(prog="ganlab")
    train_cli.register(parser.add_subparsers(dest="command", required=True))
    common = ["generate", str(tiles / "benign"), "--checkpoint", str(checkpoint), "--device", "cpu"]
    args = parser.parse_args(
        [*common, "--out", str(tmp_path / "a"), "--writers", "2", "--channels-last"]
    )
    assert args.func(args) == 0
    settings = json.loads((tmp_path / "a" / "manifest.json").read_text())["settings"]
    assert settings == {
        **dataclasses.asdict(GenerationSettings()),
        "writer_threads": 2,
        "channels_last": True,
    }
    args = parser.parse_args([*common, "--out", str(tmp_path / "b"), "--compile-mode", "fastest"])
    with pytest.raises(ValueError, match=r"GenerationSettings\.compile_mode: must be one of"):
        args.func(args)
