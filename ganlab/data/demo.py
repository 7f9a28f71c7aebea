"""Deterministic H&E-like demo tiles (torch-free).

No BreakHis data ships with the lab, so the demo and the tests use synthetic
tiles that mimic haematoxylin & eosin staining at 400X:

* pink eosin stroma with low-frequency texture;
* **benign**: small, round, evenly sized nuclei arranged in rings around pale
  gland lumens (regular glandular architecture);
* **malignant**: larger, irregular (elongated, randomly oriented), darker and
  crowded nuclei scattered without glandular order, few or no lumens.

The class signal is real and learnable (nuclear size, density and darkness),
which tests check with a simple classifier. The same ``(label, index, size, seed)``
always gives the same pixels, and :func:`write_demo_tree` the same PNG bytes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from ganlab.data.imageio import encode_png

LABELS = ("benign", "malignant")

STROMA_RGB = np.array([232.0, 168.0, 200.0])
LUMEN_RGB = np.array([246.0, 238.0, 244.0])


@dataclass(frozen=True)
class _NucleusStyle:
    radius: tuple[float, float]  # min, max semi-axis, as a fraction of tile size
    elongation: tuple[float, float]  # ratio of the axes
    rgb: tuple[float, float, float]
    darkness_jitter: float


_STYLES = {
    "benign": _NucleusStyle((0.016, 0.022), (1.0, 1.25), (105.0, 70.0, 150.0), 10.0),
    "malignant": _NucleusStyle((0.030, 0.050), (1.2, 2.0), (62.0, 28.0, 108.0), 18.0),
}


def _rng(label: str, index: int, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, LABELS.index(label), index]))


def _smooth_noise(rng: np.random.Generator, size: int, sigma: float) -> np.ndarray:
    field = ndimage.gaussian_filter(rng.standard_normal((size, size)), sigma=sigma, mode="wrap")
    return field / (field.std() + 1e-12)


def _paint_ellipses(
    canvas: np.ndarray,
    centres: np.ndarray,
    axes: np.ndarray,
    angles: np.ndarray,
    colours: np.ndarray,
) -> None:
    """Paint filled, slightly soft-edged ellipses onto ``canvas`` (H x W x 3, float)."""
    size = canvas.shape[0]
    for (cy, cx), (a, b), theta, colour in zip(centres, axes, angles, colours, strict=True):
        reach = int(np.ceil(max(a, b))) + 2
        y0, y1 = max(int(cy) - reach, 0), min(int(cy) + reach + 1, size)
        x0, x1 = max(int(cx) - reach, 0), min(int(cx) + reach + 1, size)
        if y0 >= y1 or x0 >= x1:
            continue
        yy, xx = np.mgrid[y0:y1, x0:x1].astype(np.float64)
        dy, dx = yy - cy, xx - cx
        cos, sin = np.cos(theta), np.sin(theta)
        u = (dx * cos + dy * sin) / a
        v = (-dx * sin + dy * cos) / b
        radius = np.sqrt(u * u + v * v)
        alpha = np.clip((1.15 - radius) / 0.3, 0.0, 1.0)[..., None]
        patch = canvas[y0:y1, x0:x1]
        patch[:] = patch * (1.0 - alpha) + colour * alpha


def demo_tile(label: str, index: int, size: int = 128, seed: int = 0) -> np.ndarray:
    """Return one synthetic H&E tile as a uint8 ``size x size x 3`` array."""
    if label not in LABELS:
        raise ValueError(f"label must be one of {LABELS}, got {label!r}")
    if size < 32:
        raise ValueError(f"size must be at least 32 pixels, got {size}")
    if index < 0:
        raise ValueError(f"index must be non-negative, got {index}")
    rng = _rng(label, index, seed)
    style = _STYLES[label]

    texture = _smooth_noise(rng, size, sigma=size / 24)
    fibres = _smooth_noise(rng, size, sigma=size / 96)
    canvas = STROMA_RGB + texture[..., None] * np.array([6.0, 14.0, 9.0])
    canvas = canvas + fibres[..., None] * np.array([4.0, 9.0, 6.0])

    centres, axes, angles = [], [], []
    r_min, r_max = (f * size for f in style.radius)
    if label == "benign":
        n_glands = int(rng.integers(2, 4))
        for _ in range(n_glands):
            gy, gx = rng.uniform(0.2, 0.8, size=2) * size
            lumen = rng.uniform(0.07, 0.11) * size
            yy, xx = np.mgrid[0:size, 0:size]
            inside = (yy - gy) ** 2 + (xx - gx) ** 2 <= lumen**2
            canvas[inside] = LUMEN_RGB
            ring = lumen + 1.6 * r_max
            n_ring = max(int(2 * np.pi * ring / (2.6 * r_max)), 6)
            phases = np.linspace(0, 2 * np.pi, n_ring, endpoint=False) + rng.uniform(0, np.pi)
            for phi in phases:
                centres.append((gy + ring * np.sin(phi), gx + ring * np.cos(phi)))
        n_scattered = int(rng.integers(4, 9))
    else:
        n_scattered = int(rng.integers(28, 42))
    for _ in range(n_scattered):
        centres.append(tuple(rng.uniform(0, size, size=2)))
    for _ in centres:
        a = rng.uniform(r_min, r_max)
        axes.append((a * rng.uniform(*style.elongation), a))
        angles.append(rng.uniform(0, np.pi))
    n = len(centres)
    colours = np.array(style.rgb) + rng.normal(0, style.darkness_jitter, size=(n, 1))
    _paint_ellipses(canvas, np.array(centres), np.array(axes), np.array(angles), colours)

    canvas = canvas + rng.normal(0, 3.0, size=canvas.shape)
    return np.clip(np.rint(canvas), 0, 255).astype(np.uint8)


def demo_patient_id(label: str, index: int, per_patient: int = 4) -> str:
    """Synthetic patient id; ``per_patient`` consecutive tiles share a patient."""
    return f"DEMO-{label[0].upper()}-{index // per_patient:03d}"


def write_demo_tree(
    root: Path | str,
    *,
    per_class_train: int = 64,
    per_class_test: int = 16,
    size: int = 128,
    seed: int = 0,
) -> list[dict]:
    """Write ``root/{train,test}/{benign,malignant}/*.png`` and ``root/manifest.json``.

    Test tiles use indices after the training ones, so the two splits never share
    a tile. Returns the manifest records (path relative to ``root``, label, split,
    patient id, index).
    """
    root = Path(root)
    records = []
    for label in LABELS:
        for split, start, count in (
            ("train", 0, per_class_train),
            ("test", per_class_train, per_class_test),
        ):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for index in range(start, start + count):
                name = f"demo_{label}_{index:04d}.png"
                (folder / name).write_bytes(encode_png(demo_tile(label, index, size, seed)))
                records.append(
                    {
                        "path": f"{split}/{label}/{name}",
                        "label": label,
                        "split": split,
                        "patient_id": demo_patient_id(label, index),
                        "index": index,
                    }
                )
    manifest = {"generator": "ganlab.data.demo", "size": size, "seed": seed, "images": records}
    (root / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return records
