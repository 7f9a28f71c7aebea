"""Reading ganlab evaluation reports as JSON: headline metrics, not counts or settings."""

from __future__ import annotations

import math

from ratingstudy.results.reports import (
    json_safe,
    metric_sort_key,
    report_aggregates,
    report_extractor,
    report_per_image,
)

# Shapes of ganlab.metrics outputs: classification_metrics, segmentation_scores, KID, SSIM summary.
REPORT = {
    "settings": {"fid": {"extractor": {"name": "efficientnet-lite0", "num_features": 1280}}, "ssim": {"window": 11, "sigma": 1.5}},
    "aggregates": {
        "translation": {"ssim": {"mean": 0.61, "std": 0.05, "median": 0.6, "n": 20}, "psnr": {"mean": 18.2}, "mse": {"mean": 0.02}},
        "classification": {
            "positive_class": "malignant", "threshold": 0.5, "n": 20, "n_malignant": 10, "accuracy": 0.95,
            "precision": 0.9036, "recall": 1.0, "f1": 0.95, "roc_auc": None, "tp": 10, "fp": 1, "tn": 9, "fn": 0,
            "confusion_matrix": {"matrix": [[9, 1], [0, 10]]},
        },
        "fcn": {"pixel_accuracy": 0.9426, "mean_class_accuracy": 0.4653, "mean_iou": 0.3091, "per_class_iou": {"stroma": 0.2}},
        "kid": {"mean": 0.012, "std": 0.003, "subsets": 100, "subset_size": 50},
        "fid": 81.5,
    },
}


def test_aggregates_keep_headline_metrics_only():
    assert report_aggregates(REPORT) == {
        "translation.ssim": 0.61,
        "translation.psnr": 18.2,
        "translation.mse": 0.02,
        "classification.accuracy": 0.95,
        "classification.precision": 0.9036,
        "classification.recall": 1.0,
        "classification.f1": 0.95,
        "fcn.pixel_accuracy": 0.9426,
        "fcn.mean_class_accuracy": 0.4653,
        "fcn.mean_iou": 0.3091,
        "kid": 0.012,
        "fid": 81.5,
    }


def test_columns_follow_the_founding_study_order():
    names = sorted(report_aggregates(REPORT), key=metric_sort_key)
    assert names == [
        "translation.ssim", "translation.psnr", "translation.mse", "fcn.mean_iou", "fcn.pixel_accuracy",
        "fcn.mean_class_accuracy", "classification.accuracy", "classification.precision", "classification.recall",
        "classification.f1", "fid", "kid",
    ]  # fmt: skip


def test_extractor_is_found_in_settings():
    assert report_extractor(REPORT) == "efficientnet-lite0"
    assert report_extractor({"aggregates": {}}) == ""


def test_per_image_records_and_json_safety():
    report = {"per_image": [{"path": "a/1.png", "source": "src/1.tif", "ssim": 0.5, "label": "benign"}, "junk"]}
    assert list(report_per_image(report)) == [(["a/1.png", "src/1.tif"], {"ssim": 0.5})]
    cleaned = json_safe({"x": [math.nan, (1.0, math.inf)], 2: {"y": -math.inf}})
    assert cleaned == {"x": [None, [1.0, None]], "2": {"y": None}}
