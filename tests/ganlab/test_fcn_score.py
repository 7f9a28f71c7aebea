"""FCN-score: pseudo-labels, confusion-matrix scores by hand, and a trained segmenter."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ganlab.data.demo import LUMEN_RGB, STROMA_RGB, demo_tile
from ganlab.metrics.fcn import (
    HEDThresholds,
    TrainedFCN,
    confusion_matrix,
    hed_pseudo_labels,
    segmentation_scores,
    train_tissue_fcn,
)


def _flat(rgb: tuple[float, float, float], size: int = 8) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (size, size, 3)).copy()


def test_pseudo_labels_of_typical_stain_colours() -> None:
    assert (hed_pseudo_labels(_flat(tuple(LUMEN_RGB))) == 0).all()  # near-white lumen
    assert (hed_pseudo_labels(_flat((255, 255, 255))) == 0).all()  # glass
    assert (hed_pseudo_labels(_flat(tuple(STROMA_RGB))) == 1).all()  # eosin-pink stroma
    assert (hed_pseudo_labels(_flat((62, 28, 108))) == 2).all()  # dark purple nucleus
    assert (hed_pseudo_labels(_flat((105, 70, 150))) == 2).all()  # paler nucleus
    # the thresholds decide: raising the haematoxylin one turns the paler nucleus into stroma
    assert (hed_pseudo_labels(_flat((105, 70, 150)), HEDThresholds(hematoxylin=0.2)) == 1).all()


def test_pseudo_labels_find_all_three_tissues_in_a_benign_demo_tile() -> None:
    counts = np.bincount(hed_pseudo_labels(demo_tile("benign", 0, size=96)).ravel(), minlength=3)
    assert (counts > 0).all() and counts[
        1
    ] == counts.max()  # stroma dominates, lumen and nuclei present
    with pytest.raises(ValueError, match="expected a uint8"):
        hed_pseudo_labels(np.zeros((4, 4, 3)))


def test_confusion_matrix_rows_are_labels_and_ignored_labels_are_skipped() -> None:
    labels = np.array([[0, 0, 1], [1, 2, 255]])
    predictions = np.array([[0, 1, 1], [2, 2, 0]])
    expected = np.array([[1, 1, 0], [0, 1, 1], [0, 0, 1]])
    np.testing.assert_array_equal(confusion_matrix(labels, predictions), expected)
    with pytest.raises(ValueError, match="differ in size"):
        confusion_matrix(labels, predictions[:, :2])


def test_scores_from_a_hand_computed_matrix_with_every_class() -> None:
    hist = np.array([[50, 10, 0], [5, 100, 15], [0, 20, 80]])
    scores = segmentation_scores(hist)
    assert scores["pixel_accuracy"] == pytest.approx(230 / 280)
    per_class = [50 / 60, 100 / 120, 80 / 100]
    iou = [50 / (60 + 55 - 50), 100 / (120 + 130 - 100), 80 / (100 + 95 - 80)]
    assert list(scores["per_class_accuracy"].values()) == pytest.approx(per_class)
    assert list(scores["per_class_iou"].values()) == pytest.approx(iou)
    assert scores["mean_class_accuracy"] == pytest.approx(np.mean(per_class))
    assert scores["mean_iou"] == pytest.approx(np.mean(iou))
    # with every class present the CycleGAN script's 1e-12 denominators give the same numbers
    diag = np.diag(hist)
    cyclegan_iou = diag / (hist.sum(1) + hist.sum(0) - diag + 1e-12)
    assert scores["mean_iou"] == pytest.approx(np.nanmean(cyclegan_iou), abs=1e-12)


def test_a_class_absent_from_labels_and_prediction_is_left_out_of_the_means() -> None:
    # a tile without lumen: class 0 appears in neither the labels nor the prediction
    labels = np.array([[1, 1, 2], [1, 2, 2]])
    predictions = np.array([[1, 2, 2], [1, 2, 2]])
    hist = confusion_matrix(labels, predictions)
    np.testing.assert_array_equal(hist, [[0, 0, 0], [0, 2, 1], [0, 0, 3]])
    scores = segmentation_scores(hist)
    assert math.isnan(scores["per_class_accuracy"]["background"])
    assert math.isnan(scores["per_class_iou"]["background"])
    assert scores["pixel_accuracy"] == pytest.approx(5 / 6)
    assert scores["mean_class_accuracy"] == pytest.approx((2 / 3 + 3 / 3) / 2)
    assert scores["mean_iou"] == pytest.approx((2 / 3 + 3 / 4) / 2)


def test_a_predicted_class_absent_from_labels_counts_with_iou_zero() -> None:
    hist = np.array([[0, 0, 0], [1, 3, 0], [0, 0, 2]])  # one stroma pixel called background
    scores = segmentation_scores(hist)
    assert math.isnan(scores["per_class_accuracy"]["background"])  # no background labels: undefined
    assert scores["per_class_iou"]["background"] == 0.0  # but predicted: a real error
    assert scores["mean_iou"] == pytest.approx((0 + 3 / 4 + 1) / 3)
    assert scores["mean_class_accuracy"] == pytest.approx((3 / 4 + 1) / 2)
    empty = segmentation_scores(np.zeros((3, 3)))
    assert math.isnan(empty["pixel_accuracy"]) and math.isnan(empty["mean_iou"])
    with pytest.raises(ValueError, match="expected a 3x3 confusion matrix"):
        segmentation_scores(np.zeros((2, 2)))


@pytest.fixture(scope="module")
def trained() -> TrainedFCN:
    tiles = [demo_tile(label, i, size=64) for label in ("benign", "malignant") for i in range(3)]
    return train_tissue_fcn(tiles, steps=40, batch_size=4, crop=32, seed=0)


def test_trained_fcn_segments_unseen_demo_tiles_like_their_pseudo_labels(
    trained: TrainedFCN,
) -> None:
    hist = sum(
        confusion_matrix(hed_pseudo_labels(tile), trained.predict(tile))
        for tile in (demo_tile("benign", 10, size=64), demo_tile("malignant", 10, size=64))
    )
    scores = segmentation_scores(hist)
    assert scores["pixel_accuracy"] > 0.85
    assert scores["per_class_accuracy"]["stroma"] > 0.85
    assert trained.training["steps"] == 40 and trained.training["n_images"] == 6


def test_checkpoint_round_trip_gives_the_same_predictions(trained: TrainedFCN, tmp_path) -> None:
    path = trained.save(tmp_path / "fcn" / "tissue.pt")
    loaded = TrainedFCN.load(path)
    tile = demo_tile("malignant", 11, size=40)  # another size: fully convolutional
    np.testing.assert_array_equal(loaded.predict(tile), trained.predict(tile))
    assert loaded.thresholds == trained.thresholds and loaded.training == trained.training
    with pytest.raises(ValueError, match="does not exist"):
        TrainedFCN.load(tmp_path / "missing.pt")
    (tmp_path / "garbage.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.pt is not a tissue FCN checkpoint"):
        TrainedFCN.load(tmp_path / "garbage.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="other.pt is not a tissue FCN checkpoint"):
        TrainedFCN.load(tmp_path / "other.pt")


def test_training_is_deterministic_for_a_seed() -> None:
    tiles = [demo_tile("benign", 0, size=32)]
    first = train_tissue_fcn(tiles, steps=2, batch_size=2, crop=16, seed=5)
    second = train_tissue_fcn(tiles, steps=2, batch_size=2, crop=16, seed=5)
    for a, b in zip(
        first.model.state_dict().values(), second.model.state_dict().values(), strict=True
    ):
        assert (a == b).all()
    with pytest.raises(ValueError, match="no real images"):
        train_tissue_fcn([], steps=1)
