"""``evaluate`` and ``python -m ganlab evaluate`` on demo tiles: the report and its errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from ganlab.__main__ import main
from ganlab.data.dataset import resize
from ganlab.data.demo import write_demo_tree
from ganlab.data.imageio import encode_png, load_rgb
from ganlab.metrics import evaluate
from ganlab.metrics.classification import classification_metrics
from ganlab.metrics.fcn import TrainedFCN, confusion_matrix, hed_pseudo_labels, segmentation_scores

SIZE = 48


def _write_csv(path: Path, header: list[str], rows: list[tuple]) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def _shifted(image: np.ndarray, offset: tuple[int, int, int]) -> np.ndarray:
    return np.clip(image.astype(int) + np.array(offset), 0, 255).astype(np.uint8)


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """Demo tiles, a fake 'benign -> malignant' model (darkened sources) and classifier predictions."""
    root = tmp_path_factory.mktemp("evaluate")
    write_demo_tree(root / "demo", per_class_train=3, per_class_test=3, size=SIZE, seed=0)
    generated = root / "generated"
    generated.mkdir()
    rows = []
    for i, source in enumerate(sorted((root / "demo" / "test" / "benign").glob("*.png"))):
        image = load_rgb(source)
        (generated / f"G_{source.name}").write_bytes(encode_png(_shifted(image, (-40, -30, -10))))
        reconstruction = ""
        if i < 2:  # the last row has no reconstruction
            reconstruction = f"F_G_{source.name}"
            (generated / reconstruction).write_bytes(encode_png(_shifted(image, (3, -2, 1))))
        rows.append((f"G_{source.name}", f"../demo/test/benign/{source.name}", reconstruction))
    _write_csv(generated / "manifest.csv", ["generated", "source", "reconstruction"], rows)
    _write_csv(
        root / "predictions.csv",
        ["image", "label", "prob_malignant"],
        [
            ("t1.png", "benign", 0.1),
            ("t2.png", "malignant", 0.8),
            ("t3.png", "malignant", 0.3),
            ("t4.png", "benign", 0.7),
        ],
    )
    return root


@pytest.fixture(scope="module")
def report(workspace: Path) -> dict:
    stages: set[str] = set()
    result = evaluate(
        output=workspace / "out" / "report.json",
        models={
            "b2m": {
                "manifest": workspace / "generated" / "manifest.csv",
                "reference": workspace / "demo" / "test" / "malignant",
            }
        },
        real_images=workspace / "demo" / "train",
        classifiers={"clf": workspace / "predictions.csv"},
        save_fcn_model=workspace / "fcn.pt",
        fcn_steps=15,
        kid_subsets=5,
        seed=3,
        progress=lambda stage, done, total: stages.add(stage),
    )
    assert stages == {"fcn_train", "reference", "model:b2m"}
    return result


def test_report_is_written_as_plain_json_and_names_its_settings(
    report: dict, workspace: Path
) -> None:
    on_disk = json.loads((workspace / "out" / "report.json").read_text())
    assert on_disk == report
    assert report["schema"] == "ganlab.metrics.report/1"
    settings = report["settings"]
    assert settings["feature_extractor"]["name"] in {
        "efficientnet_lite0",
        "inception_v3_torchvision",
        "inception_v3_fid",
    }
    assert (
        settings["ssim"] | {"data_range": 255.0} == settings["ssim"]
        and settings["ssim"]["window"] == 11
    )
    assert settings["seed"] == 3 and settings["n_real_images"] == 6
    assert (
        settings["fcn"]["trained_on"].endswith("train")
        and settings["fcn"]["training"]["steps"] == 15
    )
    assert set(settings["versions"]) >= {
        "torch",
        "torchmetrics",
        "scikit-image",
        "scikit-learn",
        "ganlab",
    }
    assert settings["classification"]["positive_class"] == "malignant"


def test_per_image_quality_is_skimage_on_source_and_generated(
    report: dict, workspace: Path
) -> None:
    model = report["models"]["b2m"]
    assert model["n_images"] == 3 and model["n_reference"] == 3 and model["n_reconstructions"] == 2
    key = sorted(model["per_image"])[0]
    entry = model["per_image"][key]
    source = load_rgb(workspace / "generated" / entry["source"])
    generated = load_rgb(workspace / "generated" / key)
    expected_ssim = structural_similarity(
        source,
        generated,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
    )
    assert entry["translation"]["ssim"] == pytest.approx(expected_ssim, abs=1e-4)
    assert entry["translation"]["psnr"] == pytest.approx(
        peak_signal_noise_ratio(source, generated, data_range=255), abs=1e-4
    )
    assert (
        entry["cycle"]["ssim"] > entry["translation"]["ssim"]
    )  # the reconstruction is the closer one
    values = [image["translation"]["ssim"] for image in model["per_image"].values()]
    assert model["translation"]["ssim"]["mean"] == pytest.approx(np.mean(values))
    assert model["translation"]["ssim"]["median"] == pytest.approx(np.median(values))
    without_cycle = [
        image for image in model["per_image"].values() if image["reconstruction"] is None
    ]
    assert len(without_cycle) == 1 and without_cycle[0]["cycle"] is None
    assert model["cycle"]["ssim"]["n"] == 2


def test_fcn_score_comes_from_the_summed_confusion_matrix(report: dict) -> None:
    for side in ("generated", "sources"):
        score = report["models"]["b2m"]["fcn_score"][side]
        hist = np.array(score["confusion_matrix"])
        assert hist.shape == (3, 3) and hist.sum() == 3 * SIZE * SIZE
        expected = segmentation_scores(hist)
        assert score["pixel_accuracy"] == pytest.approx(expected["pixel_accuracy"])
        assert score["mean_iou"] == pytest.approx(expected["mean_iou"])
        assert score["per_image"]["mean_iou"]["n"] == 3
    per_image = report["models"]["b2m"]["per_image"]
    for side, key in (("generated", "fcn"), ("sources", "fcn_source")):
        values = [image[key]["mean_iou"] for image in per_image.values()]
        summary = report["models"]["b2m"]["fcn_score"][side]["per_image"]["mean_iou"]
        assert summary["mean"] == pytest.approx(np.mean(values))


def test_per_image_fcn_score_is_the_saved_fcn_on_generated_vs_source_labels(
    report: dict, workspace: Path
) -> None:
    fcn = TrainedFCN.load(workspace / "fcn.pt")
    for generated, entry in report["models"]["b2m"]["per_image"].items():
        source = load_rgb(workspace / "generated" / entry["source"])
        labels = hed_pseudo_labels(source, fcn.thresholds)
        hist = confusion_matrix(labels, fcn.predict(load_rgb(workspace / "generated" / generated)))
        assert entry["fcn"]["pixel_accuracy"] == pytest.approx(
            segmentation_scores(hist)["pixel_accuracy"]
        )
        hist = confusion_matrix(labels, fcn.predict(source))
        assert entry["fcn_source"]["pixel_accuracy"] == pytest.approx(
            segmentation_scores(hist)["pixel_accuracy"]
        )


def test_fid_and_kid_are_reported_with_the_subset_size_used(report: dict) -> None:
    model = report["models"]["b2m"]
    assert model["fid"] > 0
    assert model["kid"]["subsets"] == 5 and model["kid"]["subset_size"] == 3  # capped at 3 images
    assert model["kid"]["std"] >= 0


def test_classifier_section_matches_classification_metrics(report: dict) -> None:
    classifier = report["classifiers"]["clf"]
    expected = classification_metrics(
        ["benign", "malignant", "malignant", "benign"], [0.1, 0.8, 0.3, 0.7]
    )
    assert {key: classifier[key] for key in expected} == expected
    assert classifier["per_image"]["t3.png"] == {
        "label": "malignant",
        "prob_malignant": 0.3,
        "predicted": "benign",
    }


def test_cli_reuses_the_saved_fcn_and_reproduces_the_fcn_score(
    report: dict, workspace: Path, capsys
) -> None:
    output = workspace / "cli" / "report.json"
    code = main(
        [
            "evaluate",
            "--output", str(output),
            "--model", f"b2m={workspace / 'generated' / 'manifest.csv'}",
            "--reference", f"b2m={workspace / 'demo' / 'test' / 'malignant'}",
            "--fcn-model", str(workspace / "fcn.pt"),
            "--kid-subsets", "5",
            "--seed", "3",
        ]
    )  # fmt: skip
    assert code == 0
    printed = capsys.readouterr().out
    assert "b2m: n=3" in printed and "features: " in printed
    again = json.loads(output.read_text())
    assert again["models"]["b2m"]["fcn_score"] == report["models"]["b2m"]["fcn_score"]
    assert (
        again["models"]["b2m"]["kid"] == report["models"]["b2m"]["kid"]
    )  # same features, same seed
    assert again["settings"]["fcn"]["model"] == str(workspace / "fcn.pt")


def test_cli_reports_bad_input_with_exit_status_2(workspace: Path, capsys) -> None:
    manifest = workspace / "generated" / "manifest.csv"
    assert (
        main(["evaluate", "--output", str(workspace / "x.json"), "--model", f"m={manifest}"]) == 2
    )
    assert "real_images is required" in capsys.readouterr().err
    assert (
        main(["evaluate", "--output", str(workspace / "x.json"), "--reference", f"m={workspace}"])
        == 2
    )
    assert "names no --model" in capsys.readouterr().err


def test_a_generated_image_of_another_size_is_rejected_before_any_work(
    workspace: Path, tmp_path: Path
) -> None:
    source = workspace / "demo" / "test" / "benign" / "demo_benign_0003.png"
    (tmp_path / "small.png").write_bytes(encode_png(load_rgb(source)[:40]))
    manifest = _write_csv(
        tmp_path / "manifest.csv", ["generated", "source"], [("small.png", str(source))]
    )
    with pytest.raises(
        ValueError,
        match=rf"small\.png is {SIZE}x40 but its source .*demo_benign_0003\.png is {SIZE}x{SIZE}",
    ):
        evaluate(
            output=tmp_path / "r.json",
            models={"m": {"manifest": manifest}},
            real_images=workspace / "demo" / "train",
        )
    assert not (tmp_path / "r.json").exists()


@pytest.mark.parametrize(
    ("rows", "header", "message"),
    [
        ([("a.png",)], ["generated"], r"missing column\(s\) \['source'\]"),
        ([], ["generated", "source"], "lists no images"),
        (
            [("nowhere.png", "nowhere.png")],
            ["generated", "source"],
            "line 2: image .*nowhere.png does not exist",
        ),
        (
            [("m.csv", "")],
            ["generated", "source"],
            "line 2: 'generated' and 'source' must both be given",
        ),
    ],
)
def test_malformed_manifests_name_the_file_and_line(
    tmp_path: Path, workspace: Path, rows, header, message
) -> None:
    manifest = _write_csv(tmp_path / "m.csv", header, rows)
    with pytest.raises(ValueError, match=message):
        evaluate(
            output=tmp_path / "r.json",
            models={"m": {"manifest": manifest}},
            real_images=workspace / "demo" / "train",
        )


def test_missing_inputs_raise_value_errors(tmp_path: Path, workspace: Path) -> None:
    with pytest.raises(ValueError, match="nothing to evaluate"):
        evaluate(output=tmp_path / "r.json")
    with pytest.raises(ValueError, match="holds no images"):
        evaluate(
            output=tmp_path / "r.json",
            models={"m": {"manifest": workspace / "generated" / "manifest.csv"}},
            real_images=tmp_path,
        )
    with pytest.raises(ValueError, match="expected {'manifest'"):
        evaluate(output=tmp_path / "r.json", models={"m": {"images": "x"}}, real_images=tmp_path)
    bad = _write_csv(
        tmp_path / "p.csv", ["image", "label", "prob_malignant"], [("a", "benign", "high")]
    )
    with pytest.raises(ValueError, match=r"p\.csv, line 2: prob_malignant 'high' is not a number"):
        evaluate(output=tmp_path / "r.json", classifiers={"c": bad})


def test_classifiers_alone_need_no_images(tmp_path: Path, workspace: Path) -> None:
    result = evaluate(
        output=tmp_path / "r.json", classifiers={"clf": workspace / "predictions.csv"}
    )
    assert result["models"] == {} and result["classifiers"]["clf"]["n"] == 4
    assert result["settings"]["feature_extractor"] is None and result["settings"]["fcn"] is None


def test_a_model_with_one_image_is_rejected_before_any_work(
    tmp_path: Path, workspace: Path
) -> None:
    source = workspace / "demo" / "test" / "benign" / "demo_benign_0003.png"
    manifest = _write_csv(
        tmp_path / "one.csv", ["generated", "source"], [(str(source), str(source))]
    )
    with pytest.raises(
        ValueError, match=r"FID/KID need at least 2 generated and 2 reference images, got 1 in"
    ):
        evaluate(
            output=tmp_path / "r.json",
            models={"m": {"manifest": manifest}},
            real_images=workspace / "demo" / "train",
        )
    with pytest.raises(ValueError, match="kid_subset_size >= 2"):
        evaluate(
            output=tmp_path / "r.json",
            classifiers={"c": workspace / "predictions.csv"},
            kid_subset_size=1,
        )


def test_generation_manifest_json_with_square_outputs_compares_with_the_resized_source(
    report: dict, workspace: Path, tmp_path: Path
) -> None:
    """The manifest ``ganlab.train.generation.generate`` writes, outputs resized to 32x32."""
    sources = sorted((workspace / "demo" / "test" / "malignant").glob("*.png"))
    records = []
    for i, source in enumerate(sources):
        fake = resize(_shifted(load_rgb(source), (20, 10, -5)), 32)
        output = tmp_path / f"{i:05d}_{source.stem}_fake_A.png"
        output.write_bytes(encode_png(fake))
        records.append(
            {
                "output": str(output),
                "source": str(source),
                "direction": "BtoA",
                "kind": "translation",
            }
        )
        if i == 0:
            rec = tmp_path / f"{i:05d}_{source.stem}_rec_B.png"
            rec.write_bytes(encode_png(resize(load_rgb(source), 32)))
            records.append(
                {
                    "output": str(rec),
                    "source": str(source),
                    "direction": "BtoA",
                    "kind": "reconstruction",
                }
            )
    (tmp_path / "manifest.json").write_text(
        json.dumps({"generator": "ganlab.train.generation", "images": records})
    )
    result = evaluate(
        output=tmp_path / "report.json",
        models={
            "m2b": {
                "manifest": tmp_path / "manifest.json",
                "reference": workspace / "demo" / "test" / "benign",
            }
        },
        fcn_model=workspace / "fcn.pt",
        kid_subsets=2,
    )
    model = result["models"]["m2b"]
    assert model["n_images"] == 3 and model["n_reconstructions"] == 1
    entry = model["per_image"][records[0]["output"]]
    assert entry["source_resized_to"] == [32, 32]
    assert entry["cycle"]["mse"] == 0.0  # the reconstruction is the resized source itself
    source = resize(load_rgb(sources[0]), 32)
    generated = load_rgb(records[0]["output"])
    expected = structural_similarity(
        source,
        generated,
        data_range=255,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        channel_axis=-1,
    )
    assert entry["translation"]["ssim"] == pytest.approx(expected, abs=1e-4)
    assert np.array(model["fcn_score"]["generated"]["confusion_matrix"]).sum() == 3 * 32 * 32


def test_a_reconstruction_of_another_size_and_a_broken_json_manifest_are_rejected(
    workspace: Path, tmp_path: Path
) -> None:
    source = workspace / "demo" / "test" / "benign" / "demo_benign_0003.png"
    (tmp_path / "g.png").write_bytes(encode_png(load_rgb(source)))
    (tmp_path / "r.png").write_bytes(encode_png(resize(load_rgb(source), 32)))
    manifest = _write_csv(
        tmp_path / "m.csv",
        ["generated", "source", "reconstruction"],
        [("g.png", str(source), "r.png")],
    )
    with pytest.raises(
        ValueError,
        match=rf"reconstruction .*r\.png is 32x32 but the generated image .*g\.png is {SIZE}x{SIZE}",
    ):
        evaluate(
            output=tmp_path / "x.json",
            models={"m": {"manifest": manifest}},
            real_images=workspace / "demo" / "train",
        )
    (tmp_path / "manifest.json").write_text(json.dumps({"images": [{"output": "g.png"}]}))
    with pytest.raises(ValueError, match="expected ganlab.train.generation's manifest.json"):
        evaluate(
            output=tmp_path / "x.json",
            models={"m": {"manifest": tmp_path / "manifest.json"}},
            real_images=workspace,
        )
