"""Blinding audit: does anything other than the picture itself tell real images from generated ones?

For every image of a study (or a seeded sample of each group) the audit
measures the stored file and the PNG a rater's browser receives
(:func:`rendering.served_png`, the function the image view uses):

* categorical cues: dimensions, format and pixel mode, metadata (PNG chunks
  beyond the pixel data, EXIF, ICC profiles, text);
* continuous cues: file size, per-channel mean and standard deviation of
  the colour, and sharpness (mean absolute Laplacian), which exposes different
  resampling when the stored sizes differ.

Each cue gets a separability between 0.5 (no information) and 1.0 (separates
perfectly): the balanced accuracy of the best value-to-group rule for a
categorical cue, ``max(AUC, 1 - AUC)`` for a continuous one. A cue is flagged
when its separability reaches the threshold; a continuous one must in addition
be significant (two-sided Mann-Whitney U, Bonferroni-corrected over all cues),
so that a clean study with few images does not fail by chance. Response
headers are not measured here: the image view sends the same fixed set for
every image (see ``rendering.SERVED_HEADERS``; a test checks it).
"""

from __future__ import annotations

import io
import struct
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from scipy import ndimage, stats

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Study
from ratingstudy.studies.rendering import served_png
from ratingstudy.studies.selectors import study_images

PIXEL_CHUNKS = frozenset({b"IHDR", b"IDAT", b"IEND", b"PLTE"})
ALPHA = 0.01


@dataclass(frozen=True)
class Cue:
    """How well one measurement separates real from generated images."""

    name: str
    categorical: bool
    separability: float
    p_value: float | None
    real: str
    generated: str
    flagged: bool


@dataclass(frozen=True)
class AuditReport:
    """Every cue measured for a study, flagged ones first."""

    study: str
    n_real: int
    n_generated: int
    threshold: float
    cues: list[Cue]

    @property
    def flagged(self) -> list[Cue]:
        return [cue for cue in self.cues if cue.flagged]


def png_chunk_types(data: bytes) -> list[str]:
    """Chunk types of a PNG file beyond the pixel data (text, time, gamma, ICC, EXIF...)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return []
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        if kind not in PIXEL_CHUNKS:
            chunks.append(kind.decode("latin-1"))
        offset += 12 + length
    return chunks


def _describe_file(data: bytes, prefix: str) -> tuple[dict[str, str], dict[str, float], np.ndarray]:
    with PILImage.open(io.BytesIO(data)) as image:
        categorical = {
            f"{prefix} dimensions": f"{image.width}x{image.height}",
            f"{prefix} format": f"{image.format} {image.mode}",
            f"{prefix} metadata": ",".join(sorted({*png_chunk_types(data), *image.info})) or "none",
        }
        pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    return categorical, {f"{prefix} file size (bytes)": float(len(data))}, pixels


def _colour_features(pixels: np.ndarray) -> dict[str, float]:
    features = {}
    for channel, name in enumerate("RGB"):
        features[f"served mean {name}"] = float(pixels[:, :, channel].mean())
        features[f"served std {name}"] = float(pixels[:, :, channel].std())
    features["served sharpness"] = float(np.abs(ndimage.laplace(pixels.mean(axis=2))).mean())
    return features


def image_features(data: bytes, *, size: int) -> tuple[dict[str, str], dict[str, float]]:
    """Categorical and continuous measurements of one stored image and of its served version."""
    stored_cat, stored_num, _ = _describe_file(data, "stored")
    served_cat, served_num, served_pixels = _describe_file(served_png(data, size=size), "served")
    return {**stored_cat, **served_cat}, {**stored_num, **served_num, **_colour_features(served_pixels)}


def _categorical_separability(real: list[str], generated: list[str]) -> float:
    real_counts, generated_counts = Counter(real), Counter(generated)
    score = 0.0
    for value in real_counts.keys() | generated_counts.keys():
        score += max(real_counts[value] / len(real), generated_counts[value] / len(generated))
    return score / 2


def _summary(values: Iterable[str]) -> str:
    counts = Counter(values).most_common(3)
    return ", ".join(f"{value} ({count})" for value, count in counts)


def cues_compare(
    real: list[tuple[dict[str, str], dict[str, float]]],
    generated: list[tuple[dict[str, str], dict[str, float]]],
    *,
    threshold: float,
) -> list[Cue]:
    """Separability of every measurement between the two groups, flagged ones first."""
    cues = []
    n_tests = len(real[0][0]) + len(real[0][1])
    for name in real[0][0]:
        r, g = [f[0][name] for f in real], [f[0][name] for f in generated]
        separability = _categorical_separability(r, g)
        cues.append(Cue(name, True, separability, None, _summary(r), _summary(g), separability >= threshold))
    for name in real[0][1]:
        r_values = np.array([f[1][name] for f in real])
        g_values = np.array([f[1][name] for f in generated])
        if np.ptp(np.concatenate([r_values, g_values])) == 0:
            separability, p_value = 0.5, 1.0
        else:
            test = stats.mannwhitneyu(r_values, g_values, alternative="two-sided")
            auc = test.statistic / (len(r_values) * len(g_values))
            separability, p_value = max(auc, 1 - auc), float(test.pvalue)
        flagged = separability >= threshold and p_value < ALPHA / n_tests
        cues.append(
            Cue(
                name,
                False,
                float(separability),
                p_value,
                f"median {np.median(r_values):.4g}",
                f"median {np.median(g_values):.4g}",
                flagged,
            )
        )
    return sorted(cues, key=lambda cue: (not cue.flagged, -cue.separability, cue.name))


def _sample(images: list[Image], limit: int, rng: np.random.Generator) -> list[Image]:
    if len(images) <= limit:
        return images
    return [images[i] for i in sorted(rng.choice(len(images), size=limit, replace=False))]


def blinding_audit(*, study: Study, threshold: float = 0.9, max_per_group: int = 500, seed: int = 0) -> AuditReport:
    """Measure the study's images (at most ``max_per_group`` of each group, seeded) and compare the groups."""
    images = list(study_images(study=study).order_by("pk"))
    rng = np.random.default_rng(seed)
    groups = {
        True: _sample([i for i in images if i.image_set.kind == ImageSet.Kind.REAL], max_per_group, rng),
        False: _sample([i for i in images if i.image_set.kind != ImageSet.Kind.REAL], max_per_group, rng),
    }
    if not groups[True] or not groups[False]:
        raise ApplicationError(f"study {study.name!r} needs real and generated images to be audited")
    features = {}
    for is_real, group in groups.items():
        measured = []
        for image in group:
            with image.file.open("rb") as stored:
                measured.append(image_features(stored.read(), size=study.image_size))
        features[is_real] = measured
    return AuditReport(
        study=study.name,
        n_real=len(groups[True]),
        n_generated=len(groups[False]),
        threshold=threshold,
        cues=cues_compare(features[True], features[False], threshold=threshold),
    )
