"""Classification metrics agree with scikit-learn; malignant is the positive class."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from ganlab.metrics.classification import classification_metrics, encode_labels


def test_metrics_agree_with_scikit_learn_on_random_predictions() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 200)
    prob = np.clip(0.35 * labels + 0.65 * rng.random(200), 0, 1)
    result = classification_metrics(labels, prob, threshold=0.55)
    predicted = (prob >= 0.55).astype(int)
    assert result["accuracy"] == pytest.approx(skm.accuracy_score(labels, predicted))
    assert result["precision"] == pytest.approx(skm.precision_score(labels, predicted))
    assert result["recall"] == pytest.approx(skm.recall_score(labels, predicted))
    assert result["f1"] == pytest.approx(skm.f1_score(labels, predicted))
    assert result["specificity"] == pytest.approx(skm.recall_score(labels, predicted, pos_label=0))
    assert result["roc_auc"] == pytest.approx(skm.roc_auc_score(labels, prob))
    assert result["confusion_matrix"]["matrix"] == skm.confusion_matrix(labels, predicted).tolist()


def test_hand_counted_example_with_names_and_threshold_tie() -> None:
    labels = ["malignant", "malignant", "malignant", "benign", "benign"]
    prob = [0.9, 0.5, 0.2, 0.6, 0.1]  # 0.5 >= threshold: predicted malignant
    result = classification_metrics(labels, prob)
    assert (result["tp"], result["fn"], result["fp"], result["tn"]) == (2, 1, 1, 1)
    assert result["confusion_matrix"]["matrix"] == [[1, 1], [1, 2]]
    assert result["confusion_matrix"]["labels"] == ["benign", "malignant"]
    assert result["positive_class"] == "malignant"
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["precision"] == pytest.approx(2 / 3)
    assert result["recall"] == pytest.approx(2 / 3)
    assert result["specificity"] == pytest.approx(1 / 2)
    assert result["roc_auc"] == pytest.approx(
        4 / 6
    )  # 4 of 6 (malignant, benign) pairs ranked right


def test_undefined_values_are_none_not_zero() -> None:
    only_benign = classification_metrics(["benign", "benign"], [0.1, 0.2])
    assert only_benign["roc_auc"] is None  # one class: no ROC curve
    assert only_benign["precision"] is None  # nothing predicted malignant
    assert only_benign["recall"] is None  # no malignant tiles
    assert only_benign["specificity"] == 1.0
    assert only_benign["accuracy"] == 1.0


def test_label_encoding_accepts_names_and_digits() -> None:
    assert encode_labels(["Benign", " malignant", 0, 1, "1"]).tolist() == [0, 1, 0, 1, 1]
    with pytest.raises(ValueError, match=r"labels\[1\]: label must be one of"):
        encode_labels(["benign", "normal"])
    with pytest.raises(ValueError, match="label must be one of"):
        encode_labels([True])


@pytest.mark.parametrize(
    ("labels", "prob", "message"),
    [
        ([], [], "no predictions"),
        ([0, 1], [0.5], "2 labels but 1 probabilities"),
        ([0, 1], [0.5, float("nan")], "probability 1 is NaN"),
        ([0, 1], [0.5, 1.5], "probability 1 is 1.5, outside"),
    ],
)
def test_bad_predictions_raise_value_errors(labels, prob, message) -> None:
    with pytest.raises(ValueError, match=message):
        classification_metrics(labels, prob, source="preds.csv")
