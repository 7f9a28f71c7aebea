"""Demo tiles: deterministic to the byte, and carrying a real learnable class signal."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from ganlab.data.demo import demo_tile, write_demo_tree


def _digest(root) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.png"))
    }


def test_same_seed_gives_identical_bytes(tmp_path):
    write_demo_tree(tmp_path / "a", per_class_train=3, per_class_test=1, size=64, seed=5)
    write_demo_tree(tmp_path / "b", per_class_train=3, per_class_test=1, size=64, seed=5)
    write_demo_tree(tmp_path / "c", per_class_train=3, per_class_test=1, size=64, seed=6)
    a, b, c = (_digest(tmp_path / x) for x in "abc")
    assert a == b and len(a) == 8
    assert a.keys() == c.keys() and all(a[k] != c[k] for k in a)


def test_tiles_are_valid_images():
    tile = demo_tile("benign", 0, 96)
    assert tile.shape == (96, 96, 3) and tile.dtype == np.uint8
    assert 100 < tile.mean() < 250  # H&E-like: bright pink background, not black or saturated
    with pytest.raises(ValueError, match="label must be one of"):
        demo_tile("cat", 0)


def _features(tile: np.ndarray) -> np.ndarray:
    """Colour and texture features a pathologist would name: darkness, purple share, contrast."""
    x = tile.astype(float) / 255
    gray = x.mean(axis=2)
    purple = (x[..., 0] < 0.55) & (x[..., 2] > x[..., 1])
    gy, gx = np.gradient(gray)
    return np.array(
        [gray.mean(), gray.std(), purple.mean(), np.hypot(gx, gy).mean(), *x.reshape(-1, 3).mean(0)]
    )


def test_demo_classes_are_learnable_on_held_out_tiles():
    def dataset(indices):
        xs, ys = [], []
        for y, label in enumerate(("benign", "malignant")):
            for i in indices:
                xs.append(_features(demo_tile(label, i, 64)))
                ys.append(y)
        return np.array(xs), np.array(ys)

    x_train, y_train = dataset(range(0, 40))
    x_test, y_test = dataset(range(40, 60))
    model = make_pipeline(StandardScaler(), LogisticRegression()).fit(x_train, y_train)
    accuracy = model.score(x_test, y_test)
    assert accuracy >= 0.9, accuracy
