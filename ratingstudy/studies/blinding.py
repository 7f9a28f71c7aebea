"""Blinding audit: does anything but the picture itself tell real images from generated ones?

The audit measures what browsers really receive. It makes a temporary audit rater
(``Rater.is_audit``, never analysed, deleted afterwards) whose session has one trial
per image of the study (or a seeded sample of each group), fetches every trial image
through the same URL, view and middleware raters use (in-process by default, or from a
running server with ``base_url``), in a seeded random order, and measures each response:

* categorical cues: HTTP status and headers (all but ``Date`` and ``Expires``, which
  follow the clock), the PNG chunk layout, the dimensions and pixel mode;
* continuous cues: byte length, time to the first byte of the first request, per-channel
  mean and standard deviation of the colour, sharpness (mean absolute Laplacian) and
  JPEG blockiness (gradient across 8x8 block borders over the gradient inside blocks).

Each cue gets a separability between 0.5 (no information) and 1.0 (separates
perfectly): the balanced accuracy of the best value-to-group rule for a categorical
cue, ``max(AUC, 1 - AUC)`` for a continuous one. A cue is flagged when its
separability reaches the threshold; a continuous one must in addition be significant
(two-sided Mann-Whitney U, Bonferroni-corrected over all cues), so that a clean study
with few images does not fail by chance.
"""

from __future__ import annotations

import io
import struct
import time
from collections import Counter
from dataclasses import dataclass

import numpy as np
from django.conf import settings
from django.db import transaction
from django.urls import reverse
from PIL import Image as PILImage
from scipy import ndimage, stats

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.errors import ApplicationError
from ratingstudy.studies.models import Rater, Session, Study, Trial
from ratingstudy.studies.selectors import study_all_images
from ratingstudy.studies.services import study_renders

ALPHA = 0.01
#: Response headers that follow the clock, not the image.
CLOCK_HEADERS = frozenset({"date", "expires"})
JPEG_BLOCK = 8


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


@dataclass(frozen=True)
class Fetched:
    """One image response as a browser got it."""

    status: int
    headers: dict[str, str]
    body: bytes
    first_byte_ms: float


def png_chunk_types(data: bytes) -> list[str]:
    """Every chunk type of a PNG file, in order (``IHDR``, ``IDAT``..., ``IEND`` and any metadata)."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return []
    chunks, offset = [], 8
    while offset + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[offset : offset + 8])
        chunks.append(kind.decode("latin-1"))
        offset += 12 + length
    return chunks


def jpeg_blockiness(gray: np.ndarray) -> float:
    """Mean absolute step across 8x8 block borders over the mean step inside blocks (about 1.0 without JPEG)."""
    ratios = []
    for steps in (np.abs(np.diff(gray, axis=1)), np.abs(np.diff(gray, axis=0)).T):
        border = (np.arange(steps.shape[1]) + 1) % JPEG_BLOCK == 0
        inside = steps[:, ~border].mean()
        ratios.append(steps[:, border].mean() / inside if inside > 0 else 1.0)
    return float(np.mean(ratios))


def response_features(fetched: Fetched) -> tuple[dict[str, str], dict[str, float]]:
    """Categorical and continuous measurements of one image response."""
    headers = ";".join(f"{k.lower()}={v}" for k, v in sorted(fetched.headers.items()) if k.lower() not in CLOCK_HEADERS)
    categorical = {
        "HTTP status": str(fetched.status),
        "headers": headers,
        "PNG chunks": ",".join(f"{k}x{n}" for k, n in Counter(png_chunk_types(fetched.body)).items()) or "not a PNG",
    }
    continuous = {"byte length": float(len(fetched.body)), "first request ms": fetched.first_byte_ms}
    try:
        with PILImage.open(io.BytesIO(fetched.body)) as image:
            categorical["dimensions"] = f"{image.width}x{image.height} {image.format} {image.mode}"
            pixels = np.asarray(image.convert("RGB"), dtype=np.float64)
    except (OSError, ValueError):
        categorical["dimensions"] = "not an image"
        pixels = np.zeros((8, 8, 3))
    for channel, name in enumerate("RGB"):
        continuous[f"mean {name}"] = float(pixels[:, :, channel].mean())
        continuous[f"std {name}"] = float(pixels[:, :, channel].std())
    gray = pixels.mean(axis=2)
    continuous["sharpness"] = float(np.abs(ndimage.laplace(gray)).mean())
    continuous["JPEG blockiness"] = jpeg_blockiness(gray)
    return categorical, continuous


def _categorical_separability(real: list[str], generated: list[str]) -> float:
    real_counts, generated_counts = Counter(real), Counter(generated)
    score = 0.0
    for value in real_counts.keys() | generated_counts.keys():
        score += max(real_counts[value] / len(real), generated_counts[value] / len(generated))
    return score / 2


def _summary(values: list[str]) -> str:
    counts = Counter(values).most_common(2)
    return ", ".join(f"{value[:60]} ({count})" for value, count in counts)


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


def _audit_session(study: Study, images: list[Image]) -> tuple[Rater, list[Trial]]:
    renders = study_renders(study=study, image_ids=[image.pk for image in images])
    with transaction.atomic():
        rater = Rater.objects.create(study=study, is_audit=True, note="blinding audit (temporary)")
        session = Session.objects.create(rater=rater, study=study, seed=0, user_agent="blinding_audit")
        trials = Trial.objects.bulk_create(
            Trial(session=session, index=index, image=image, render=renders[image.pk])
            for index, image in enumerate(images)
        )
    return rater, trials


def _fetcher(base_url: str | None):
    """A function path -> :class:`Fetched`, through a running server or Django's in-process client."""
    if base_url:
        import requests

        http = requests.Session()

        def fetch(path: str) -> Fetched:
            started = time.perf_counter()
            response = http.get(base_url.rstrip("/") + path, stream=True, timeout=60)
            first = next(response.iter_content(chunk_size=1), b"")
            elapsed = 1000 * (time.perf_counter() - started)
            body = first + response.raw.read()
            return Fetched(response.status_code, dict(response.headers), body, elapsed)

        return fetch

    from django.test import Client

    hosts = [h for h in settings.ALLOWED_HOSTS if h not in ("*", "") and not h.startswith(".")]
    client = Client(HTTP_HOST=hosts[0] if hosts else "localhost")

    def fetch(path: str) -> Fetched:
        started = time.perf_counter()
        response = client.get(path)
        elapsed = 1000 * (time.perf_counter() - started)
        body = b"".join(response.streaming_content) if response.streaming else response.content
        return Fetched(response.status_code, dict(response.headers), body, elapsed)

    return fetch


def blinding_audit(
    *,
    study: Study,
    threshold: float = 0.9,
    max_per_group: int = 500,
    seed: int = 0,
    base_url: str | None = None,
) -> AuditReport:
    """Fetch the study's served images as a rater would (at most ``max_per_group`` of each group,
    seeded), measure every response and compare the groups (see the module docstring)."""
    rng = np.random.default_rng(seed)
    images = list(study_all_images(study=study).order_by("pk"))
    groups = {
        True: _sample([i for i in images if i.image_set.kind == ImageSet.Kind.REAL], max_per_group, rng),
        False: _sample([i for i in images if i.image_set.kind != ImageSet.Kind.REAL], max_per_group, rng),
    }
    if not groups[True] or not groups[False]:
        raise ApplicationError(f"study {study.name!r} needs real and generated images to be audited")
    audited = groups[True] + groups[False]
    rater, trials = _audit_session(study, audited)
    fetch = _fetcher(base_url)
    try:
        measured: dict[int, tuple[dict[str, str], dict[str, float]]] = {}
        for position in rng.permutation(len(trials)):  # no drift in timing follows the groups
            trial = trials[position]
            path = reverse("studies:image", kwargs={"token": rater.token, "trial_token": trial.token})
            measured[trial.image_id] = response_features(fetch(path))
    finally:
        rater.delete()
    return AuditReport(
        study=study.name,
        n_real=len(groups[True]),
        n_generated=len(groups[False]),
        threshold=threshold,
        cues=cues_compare(
            [measured[i.pk] for i in groups[True]], [measured[i.pk] for i in groups[False]], threshold=threshold
        ),
    )
