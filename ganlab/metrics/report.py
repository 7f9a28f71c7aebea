"""``evaluate``: every automatic metric for a set of models, as one JSON report.

This is the function a worker calls (and ``python -m ganlab evaluate`` runs). It takes
paths only, reads the images itself and writes the report, so a task needs nothing
but the job's settings.

Inputs
------
* ``models``: ``{name: {"manifest": path, "reference": folder (optional)}}``. One entry
  per model and direction (e.g. ``"cyclegan_G_benign_to_malignant"``). The manifest is
  either the ``manifest.json`` that ``ganlab.train.generation.generate`` writes (each
  translation paired with the reconstruction of the same source, if written) or a CSV
  with a header and the columns

  ========================  ==============================================================
  ``generated``             the generated image ``G(x)``
  ``source``                the real input ``x`` it was generated from
  ``reconstruction``        optional column: the cycle reconstruction ``F(G(x))`` (cells may
                            be empty)
  ========================  ==============================================================

  whose relative paths are relative to the CSV's folder. A generated image has its
  source's size, or is square ``S x S`` (generation resizes its input): the source is
  then resized as generation resized it and compared at ``S x S``; reconstructions
  have the generated image's size. ``reference`` is the folder of real images of the
  *target* domain that FID/KID compare ``G(x)`` with (e.g. real malignant test tiles
  for benign -> malignant); it defaults to ``real_images``.
* ``real_images``: a folder of real images (searched recursively), used to train the
  FCN-score segmenter when no ``fcn_model`` is given (use the training split) and as
  the default FID/KID reference.
* ``classifiers``: ``{name: CSV}`` with columns ``image``, ``label`` (``benign`` /
  ``malignant`` or 0/1) and ``prob_malignant`` for the held-out test split.

Report schema (``"schema": "ganlab.metrics.report/1"``; JSON, ``null`` where a value is
undefined or not computed, e.g. PSNR of identical images or ROC-AUC with one class)::

    {
      "schema": "ganlab.metrics.report/1",
      "created_at": ISO-8601 UTC time,
      "settings": {
        "seed", "device", "data_range": 255,
        "ssim": {"data_range", "window": 11, "sigma": 1.5, "k1", "k2", "covariance", "region"},
        "comparisons": {"translation": "x vs G(x) ...", "cycle": "x vs F(G(x)) ..."},
        "feature_extractor": {"name", "num_features", "input_size", "description"} | null,
        "kid": {"subsets", "subset_size", "kernel", "note"},
        "fcn": {"model": path | null, "trained_on": folder | null, "saved_to": path | null, "classes",
                "thresholds": {"hematoxylin", "eosin", "smoothing_sigma"}, "training": {...}} | null,
        "classification": {"positive_class": "malignant", "threshold"},
        "real_images": folder | null, "n_real_images": int | null,
        "versions": {"python", "ganlab", "torch", "torchvision", "torchmetrics", "numpy",
                     "scipy", "scikit-image", "scikit-learn"}
      },
      "models": {
        NAME: {
          "manifest", "reference", "n_images", "n_reference", "n_reconstructions",
          "translation": {"ssim": S, "psnr": S, "mse": S},      # x vs G(x)
          "cycle": {"ssim": S, "psnr": S, "mse": S} | null,     # x vs F(G(x))
          "fcn_score": {
            "generated": F,    # FCN(G(x)) vs pseudo-labels of x
            "sources": F       # FCN(x) vs pseudo-labels of x: the real-image upper bound
          },
          "fid": float, "kid": {"mean", "std", "subsets", "subset_size"},
          "per_image": {
            GENERATED (path as written in the manifest): {
              "source", "reconstruction" | null,
              "source_resized_to": [S, S] | null,    # set when compared at the generated size
              "translation": {"ssim", "psnr", "mse"},
              "cycle": {"ssim", "psnr", "mse"} | null,
              "fcn": {"pixel_accuracy", "mean_class_accuracy", "mean_iou"},
              "fcn_source": {"pixel_accuracy", "mean_class_accuracy", "mean_iou"}
            }
          }
        }
      },
      "classifiers": {
        NAME: {"predictions": CSV, "positive_class", "threshold", "n", "n_malignant", "n_benign",
               "accuracy", "precision", "recall", "f1", "specificity", "roc_auc",
               "confusion_matrix": {"labels", "rows": "true", "columns": "predicted", "matrix"},
               "tp", "fp", "tn", "fn",
               "per_image": {IMAGE: {"label", "prob_malignant", "predicted"}}}
      }
    }

    S = {"n", "n_nonfinite", "mean", "std", "median", "min", "max"}   (std: sample, ddof=1)
    F = {"pixel_accuracy", "mean_class_accuracy", "mean_iou",        # from the summed matrix
         "per_class_accuracy": {CLASS: v}, "per_class_iou": {CLASS: v},
         "confusion_matrix": [[...]] (rows: pseudo-label, columns: FCN prediction),
         "per_image": {"pixel_accuracy": S, "mean_class_accuracy": S, "mean_iou": S}}

Definitions are in :mod:`ganlab.metrics.image_quality` (SSIM/PSNR/MSE),
:mod:`ganlab.metrics.fcn` (FCN-score), :mod:`ganlab.metrics.fid` (FID/KID; KID is the
figure to quote at BreakHis scale) and :mod:`ganlab.metrics.classification`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import platform
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import numpy as np
import torch
from PIL import Image

import ganlab
from ganlab.data.imageio import SUPPORTED_SUFFIXES, load_rgb, resize
from ganlab.metrics.classification import CLASS_NAMES as LABEL_NAMES
from ganlab.metrics.classification import POSITIVE_CLASS, classification_metrics, encode_labels
from ganlab.metrics.fcn import (
    CLASS_NAMES,
    TrainedFCN,
    confusion_matrix,
    hed_pseudo_labels,
    segmentation_scores,
    train_tissue_fcn,
)
from ganlab.metrics.fid import (
    FeatureExtractor,
    extract_features,
    fid_from_features,
    get_feature_extractor,
    kid_from_features,
)
from ganlab.metrics.image_quality import image_quality, ssim_settings, summarize

SCHEMA = "ganlab.metrics.report/1"
DATA_RANGE = 255.0  # every image is read as 8-bit RGB
_CHUNK = 32  # image pairs held in memory at once
_QUALITY = ("ssim", "psnr", "mse")
_FCN_SUMMARY = ("pixel_accuracy", "mean_class_accuracy", "mean_iou")
_VERSIONED = (
    "torch",
    "torchvision",
    "torchmetrics",
    "numpy",
    "scipy",
    "scikit-image",
    "scikit-learn",
)

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class GeneratedSet:
    """One model's (one direction's) output: its manifest and the real reference for FID/KID."""

    manifest: Path
    reference: Path | None = None


@dataclass(frozen=True)
class ManifestRow:
    generated: str  # as written in the manifest: the report's key
    source: str
    reconstruction: str | None
    generated_path: Path
    source_path: Path
    reconstruction_path: Path | None


def read_manifest(path: Path | str) -> list[ManifestRow]:
    """Rows of a generated-image manifest, CSV or generation's ``manifest.json`` (see the module docstring).

    Checks that every file exists; errors name the manifest and the line or record.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"manifest {path} does not exist")
    rows = _generation_rows(path) if path.suffix.lower() == ".json" else _csv_rows(path)
    if not rows:
        raise ValueError(f"manifest {path} lists no images")
    seen: set[str] = set()
    for row in rows:
        if row.generated in seen:
            raise ValueError(f"manifest {path}: {row.generated} is listed twice")
        seen.add(row.generated)
    return rows


def _csv_rows(path: Path) -> list[ManifestRow]:
    """``generated,source[,reconstruction]`` rows; relative paths are relative to the CSV's folder."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = reader.fieldnames or []
        missing = {"generated", "source"} - set(columns)
        if missing:
            raise ValueError(
                f"manifest {path}: missing column(s) {sorted(missing)}; found {columns}"
            )
        rows = []
        for line, record in enumerate(reader, start=2):
            where = f"manifest {path}, line {line}"
            generated, source = (
                (record["generated"] or "").strip(),
                (record["source"] or "").strip(),
            )
            reconstruction = (record.get("reconstruction") or "").strip() or None
            if not generated or not source:
                raise ValueError(f"{where}: 'generated' and 'source' must both be given")
            rows.append(
                ManifestRow(
                    generated,
                    source,
                    reconstruction,
                    _existing(where, path.parent / generated),
                    _existing(where, path.parent / source),
                    _existing(where, path.parent / reconstruction) if reconstruction else None,
                )
            )
    return rows


def _generation_rows(path: Path) -> list[ManifestRow]:
    """Rows of the ``manifest.json`` that ``ganlab.train.generation.generate`` writes.

    Its ``images`` records (``output``, ``source``, ``kind``) pair each translation with
    the reconstruction of the same source. Outputs are looked up beside the manifest
    (generation writes them there); sources as recorded (absolute, or relative to the
    working directory, as generation read them).
    """
    try:
        records = json.loads(path.read_text(encoding="utf-8"))["images"]
        translations = [r for r in records if r["kind"] == "translation"]
        reconstructions = {
            r["source"]: r["output"] for r in records if r["kind"] == "reconstruction"
        }
    except (json.JSONDecodeError, KeyError, TypeError) as exc:
        raise ValueError(
            f"manifest {path}: expected ganlab.train.generation's manifest.json, whose 'images' records "
            f"have 'output', 'source' and 'kind' ({type(exc).__name__}: {exc})"
        ) from exc
    rows = []
    for index, record in enumerate(translations):
        where = f"manifest {path}, translation record {index}"
        generated, source = record["output"], record["source"]
        reconstruction = reconstructions.get(source)
        rows.append(
            ManifestRow(
                generated,
                source,
                reconstruction,
                _existing(where, path.parent / Path(generated).name),
                _existing(where, Path(source)),
                _existing(where, path.parent / Path(reconstruction).name)
                if reconstruction
                else None,
            )
        )
    return rows


def _existing(where: str, file: Path) -> Path:
    if not file.is_file():
        raise ValueError(f"{where}: image {file} does not exist")
    return file


def check_sizes(rows: Sequence[ManifestRow]) -> None:
    """Fail before any heavy work on sizes that cannot be compared (reads headers only)."""
    for row in rows:
        reconstruction = _header_size(row.reconstruction_path) if row.reconstruction_path else None
        _check_row_sizes(
            row, _header_size(row.source_path), _header_size(row.generated_path), reconstruction
        )


def _check_row_sizes(
    row: ManifestRow,
    source: tuple[int, int],
    generated: tuple[int, int],
    reconstruction: tuple[int, int] | None,
) -> None:
    """Sizes are (width, height): a generated image has its source's size or is square (see :func:`_load_pair`)."""
    if generated != source and generated[0] != generated[1]:
        raise ValueError(
            f"{row.generated_path} is {generated[0]}x{generated[1]} but its source {row.source_path} is "
            f"{source[0]}x{source[1]}: a generated image must have its source's size, or be square "
            f"(generation resized the source to S x S)"
        )
    if reconstruction is not None and reconstruction != generated:
        raise ValueError(
            f"reconstruction {row.reconstruction_path} is {reconstruction[0]}x{reconstruction[1]} but the "
            f"generated image {row.generated_path} is {generated[0]}x{generated[1]}"
        )


def _header_size(path: Path) -> tuple[int, int]:
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, Image.DecompressionBombError) as exc:
        raise ValueError(f"{path}: not a readable image ({exc})") from exc


def list_images(folder: Path | str) -> list[Path]:
    """Image files under ``folder`` (recursive, sorted); ``ValueError`` if there are none."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ValueError(f"image folder {folder} does not exist")
    files = sorted(
        p for p in folder.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES and p.is_file()
    )
    if not files:
        raise ValueError(
            f"image folder {folder} holds no images ({', '.join(sorted(SUPPORTED_SUFFIXES))})"
        )
    return files


def read_predictions(path: Path | str) -> tuple[list[str], list[str], list[float]]:
    """``image``, ``label``, ``prob_malignant`` columns of a classifier's predictions CSV."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"predictions file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "label", "prob_malignant"} - set(reader.fieldnames or [])
        if missing:
            raise ValueError(
                f"predictions {path}: missing column(s) {sorted(missing)}; found {reader.fieldnames}"
            )
        images, labels, probs = [], [], []
        for line, record in enumerate(reader, start=2):
            try:
                probs.append(float(record["prob_malignant"]))
            except (TypeError, ValueError):
                raise ValueError(
                    f"predictions {path}, line {line}: prob_malignant {record['prob_malignant']!r} is not a number"
                ) from None
            images.append(record["image"])
            labels.append(record["label"])
    return images, labels, probs


def _evaluate_classifier(path: Path, threshold: float) -> dict:
    images, labels, probs = read_predictions(path)
    result = classification_metrics(labels, probs, threshold=threshold, source=str(path))
    encoded = encode_labels(labels, source=str(path))
    result["predictions"] = str(path)
    result["per_image"] = {
        image: {
            "label": LABEL_NAMES[label],
            "prob_malignant": prob,
            "predicted": LABEL_NAMES[int(prob >= threshold)],
        }
        for image, label, prob in zip(images, encoded, probs, strict=True)
    }
    return result


def _load_pair(row: ManifestRow) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, bool]:
    """Source, generated image, reconstruction (or None) and whether the source was resized.

    A square ``S x S`` generated image of a source of another size is compared with the
    source resized as generation resizes it (:func:`ganlab.data.imageio.resize`, bicubic
    to ``S x S``), i.e. with the exact input the generator saw.
    """
    source, generated = load_rgb(row.source_path), load_rgb(row.generated_path)
    reconstruction = load_rgb(row.reconstruction_path) if row.reconstruction_path else None
    _check_row_sizes(
        row,
        _width_height(source),
        _width_height(generated),
        _width_height(reconstruction) if reconstruction is not None else None,
    )
    resized = generated.shape != source.shape
    if resized:
        source = resize(source, generated.shape[0])
    return source, generated, reconstruction, resized


def _width_height(image: np.ndarray) -> tuple[int, int]:
    return image.shape[1], image.shape[0]


def _quality(pairs: Sequence[tuple[np.ndarray, np.ndarray]], device: str) -> list[dict[str, float]]:
    """SSIM/PSNR/MSE of each ``(source, other)`` pair, batching pairs of equal size."""
    results: list[dict[str, float]] = [{} for _ in pairs]
    by_shape: dict[tuple[int, ...], list[int]] = {}
    for index, (source, _) in enumerate(pairs):
        by_shape.setdefault(source.shape, []).append(index)
    for indices in by_shape.values():
        sources = torch.from_numpy(np.stack([pairs[i][0] for i in indices])).permute(0, 3, 1, 2)
        others = torch.from_numpy(np.stack([pairs[i][1] for i in indices])).permute(0, 3, 1, 2)
        values = image_quality(sources, others, data_range=DATA_RANGE, device=device)
        for position, index in enumerate(indices):
            results[index] = {name: float(values[name][position]) for name in _QUALITY}
    return results


def _fcn_summary(scores: dict) -> dict:
    return {key: scores[key] for key in _FCN_SUMMARY}


def _fcn_aggregate(hist: np.ndarray, per_image: list[dict]) -> dict:
    result = segmentation_scores(hist)
    result["confusion_matrix"] = hist.tolist()
    result["per_image"] = {
        key: summarize([scores[key] for scores in per_image]) for key in _FCN_SUMMARY
    }
    return result


def _chunks(rows: Sequence[ManifestRow]) -> Iterator[Sequence[ManifestRow]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


def _evaluate_model(
    name: str,
    rows: Sequence[ManifestRow],
    *,
    fcn: TrainedFCN,
    extractor: FeatureExtractor,
    reference_features: torch.Tensor,
    kid_subsets: int,
    kid_subset_size: int,
    seed: int,
    device: str,
    progress: Progress | None,
) -> dict:
    per_image: dict[str, dict] = {}
    translation: dict[str, list[float]] = {key: [] for key in _QUALITY}
    cycle: dict[str, list[float]] = {key: [] for key in _QUALITY}
    hist_generated = np.zeros((len(CLASS_NAMES),) * 2, dtype=np.int64)
    hist_sources = np.zeros_like(hist_generated)
    fcn_generated, fcn_sources, features = [], [], []
    done = 0
    for chunk in _chunks(rows):
        loaded = [_load_pair(row) for row in chunk]
        translated = _quality([(source, generated) for source, generated, _, _ in loaded], device)
        with_cycle = [
            i for i, (_, _, reconstruction, _) in enumerate(loaded) if reconstruction is not None
        ]
        cycled = dict(
            zip(
                with_cycle,
                _quality([(loaded[i][0], loaded[i][2]) for i in with_cycle], device),
                strict=True,
            )
        )
        features.append(extract_features(extractor, (generated for _, generated, _, _ in loaded)))
        for index, (row, (source, generated, _, resized)) in enumerate(
            zip(chunk, loaded, strict=True)
        ):
            labels = hed_pseudo_labels(source, fcn.thresholds)
            hist_g = confusion_matrix(labels, fcn.predict(generated))
            hist_s = confusion_matrix(labels, fcn.predict(source))
            hist_generated += hist_g
            hist_sources += hist_s
            scores_g = _fcn_summary(segmentation_scores(hist_g))
            scores_s = _fcn_summary(segmentation_scores(hist_s))
            fcn_generated.append(scores_g)
            fcn_sources.append(scores_s)
            for key in _QUALITY:
                translation[key].append(translated[index][key])
                if index in cycled:
                    cycle[key].append(cycled[index][key])
            per_image[row.generated] = {
                "source": row.source,
                "reconstruction": row.reconstruction,
                "source_resized_to": list(generated.shape[:2]) if resized else None,
                "translation": translated[index],
                "cycle": cycled.get(index),
                "fcn": scores_g,
                "fcn_source": scores_s,
            }
        done += len(chunk)
        if progress is not None:
            progress(f"model:{name}", done, len(rows))
    generated_features = torch.cat(features)
    n_cycle = len(cycle["ssim"])
    return {
        "n_images": len(rows),
        "n_reference": int(reference_features.shape[0]),
        "n_reconstructions": n_cycle,
        "translation": {key: summarize(values) for key, values in translation.items()},
        "cycle": {key: summarize(values) for key, values in cycle.items()} if n_cycle else None,
        "fcn_score": {
            "generated": _fcn_aggregate(hist_generated, fcn_generated),
            "sources": _fcn_aggregate(hist_sources, fcn_sources),
        },
        "fid": fid_from_features(reference_features, generated_features),
        "kid": kid_from_features(
            reference_features,
            generated_features,
            subsets=kid_subsets,
            subset_size=kid_subset_size,
            seed=seed,
        ),
        "per_image": per_image,
    }


def _reference_files(
    sets: Mapping[str, GeneratedSet],
    manifests: Mapping[str, Sequence[ManifestRow]],
    real_folder: Path | None,
    fcn_model: Path | str | None,
) -> dict[Path, list[Path]]:
    """The image files of every FID/KID reference folder (and of ``real_images``), checked.

    ``real_images`` is needed to train the FCN (unless ``fcn_model`` is given) and as
    the reference of models without one; FID needs at least 2 images on each side.
    """
    if not sets:
        return {}
    if real_folder is None and fcn_model is None:
        raise ValueError(
            "real_images is required to train the FCN-score segmenter (or give fcn_model)"
        )
    without = sorted(name for name, spec in sets.items() if spec.reference is None)
    if real_folder is None and without:
        raise ValueError(f"real_images is required as the FID/KID reference of model(s) {without}")
    folders = {spec.reference or real_folder for spec in sets.values()}
    files = {folder: list_images(folder) for folder in folders | ({real_folder} - {None})}
    for name, spec in sets.items():
        reference = spec.reference or real_folder
        if len(manifests[name]) < 2 or len(files[reference]) < 2:
            raise ValueError(
                f"model {name!r}: FID/KID need at least 2 generated and 2 reference images, got "
                f"{len(manifests[name])} in {spec.manifest} and {len(files[reference])} in {reference}"
            )
    return files


def _as_generated_set(name: str, spec: GeneratedSet | Mapping[str, str | Path]) -> GeneratedSet:
    if isinstance(spec, GeneratedSet):
        return spec
    if (
        not isinstance(spec, Mapping)
        or "manifest" not in spec
        or set(spec) - {"manifest", "reference"}
    ):
        raise ValueError(
            f"model {name!r}: expected {{'manifest': CSV, 'reference': folder (optional)}}, got {spec!r}"
        )
    reference = spec.get("reference")
    return GeneratedSet(Path(spec["manifest"]), Path(reference) if reference else None)


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version(), "ganlab": ganlab.__version__}
    for package in _VERSIONED:
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def json_safe(value: object) -> object:
    """Recursively turn a result into plain JSON: NaN/inf -> None, numpy scalars and paths -> Python."""
    if isinstance(value, Mapping):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [json_safe(item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, Path):
        return str(value)
    return value


def _write_json(report: dict, output: Path) -> None:
    output.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(
        dir=output.parent, prefix=f".{output.name}.", suffix=".tmp"
    )
    with os.fdopen(handle, "w", encoding="utf-8") as file:
        json.dump(report, file, indent=2, allow_nan=False)
        file.write("\n")
    os.replace(temporary, output)  # readers never see a half-written report


def evaluate(
    *,
    output: Path | str,
    models: Mapping[str, GeneratedSet | Mapping[str, str | Path]] | None = None,
    real_images: Path | str | None = None,
    classifiers: Mapping[str, Path | str] | None = None,
    fcn_model: Path | str | None = None,
    save_fcn_model: Path | str | None = None,
    fcn_steps: int = 300,
    fcn_train_images: int = 256,
    feature_extractor: str = "auto",
    kid_subsets: int = 100,
    kid_subset_size: int = 1000,
    classification_threshold: float = 0.5,
    seed: int = 0,
    device: str = "cpu",
    progress: Progress | None = None,
) -> dict:
    """Compute every metric, write the JSON report to ``output`` and return it (see the module docstring).

    Args:
        output: where to write the report (written atomically; folders are created).
        models: ``{name: GeneratedSet | {"manifest": CSV, "reference": folder}}``.
        real_images: real image folder: FCN training set and default FID/KID reference.
            Required with ``models`` unless ``fcn_model`` is given and every model has
            its own ``reference``.
        classifiers: ``{name: predictions CSV}`` (columns ``image,label,prob_malignant``).
        fcn_model: a checkpoint from an earlier run (``save_fcn_model``) instead of
            training the FCN-score segmenter for ``fcn_steps`` steps on at most
            ``fcn_train_images`` images of ``real_images`` (a seeded random choice).
        feature_extractor: ``'auto'`` or a name from :data:`ganlab.metrics.fid.EXTRACTORS`.
        kid_subsets, kid_subset_size: KID subsets (size capped at the smaller set).
        classification_threshold: probability at or above which a tile is called malignant.
        seed: seeds FCN training and KID subsets; the same inputs and seed give the same report.
        device: torch device for every network and the SSIM filtering (``"cuda"`` on a GPU worker).
        progress: called as ``progress(stage, done, total)`` with stages ``"fcn_train"``,
            ``"reference"``, ``"model:<name>"``.

    Raises:
        ValueError: naming the argument or file, for missing or empty inputs, malformed
            manifests or predictions, and images whose size differs from their source's.
    """
    models = dict(models or {})
    classifiers = dict(classifiers or {})
    if not models and not classifiers:
        raise ValueError(
            "nothing to evaluate: give models (generated image manifests) and/or classifiers"
        )
    if kid_subsets < 1 or kid_subset_size < 2:
        raise ValueError(
            f"need kid_subsets >= 1 and kid_subset_size >= 2, got {kid_subsets} and {kid_subset_size}"
        )
    sets = {name: _as_generated_set(name, spec) for name, spec in models.items()}
    real_folder = Path(real_images) if real_images is not None else None
    # everything that can be wrong with the inputs fails here, before hours of work
    manifests = {name: read_manifest(spec.manifest) for name, spec in sets.items()}
    for rows in manifests.values():
        check_sizes(rows)
    references = _reference_files(sets, manifests, real_folder, fcn_model)
    real_files = references.get(real_folder) if real_folder is not None else None

    report: dict = {
        "schema": SCHEMA,
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "settings": {
            "seed": seed,
            "device": str(device),
            "data_range": DATA_RANGE,
            "ssim": ssim_settings(DATA_RANGE).as_dict(),
            "comparisons": {
                "translation": "source x vs generated G(x): content preservation (no ground truth exists)",
                "cycle": "source x vs cycle reconstruction F(G(x)): cycle consistency",
            },
            "feature_extractor": None,
            "kid": {
                "subsets": kid_subsets,
                "subset_size": kid_subset_size,
                "kernel": "(a.b / D + 1)^3",
                "note": "quote KID: FID is biased at BreakHis sample sizes (< ~10k images)",
            },
            "fcn": None,
            "classification": {
                "positive_class": POSITIVE_CLASS,
                "threshold": classification_threshold,
            },
            "real_images": str(real_folder) if real_folder is not None else None,
            "n_real_images": len(real_files) if real_files is not None else None,
            "versions": _versions(),
        },
        "models": {},
        "classifiers": {},
    }
    for name, path in classifiers.items():
        report["classifiers"][name] = _evaluate_classifier(Path(path), classification_threshold)

    if sets:
        if fcn_model is not None:
            fcn = TrainedFCN.load(fcn_model, device=device)
        else:
            chosen = np.random.default_rng(seed).permutation(len(real_files))[:fcn_train_images]
            fcn = train_tissue_fcn(
                [load_rgb(real_files[i]) for i in sorted(chosen)],
                steps=fcn_steps,
                seed=seed,
                device=device,
                progress=(lambda step, total: progress("fcn_train", step, total))
                if progress
                else None,
            )
        if save_fcn_model is not None:
            fcn.save(save_fcn_model)
        report["settings"]["fcn"] = {
            "model": str(fcn_model) if fcn_model is not None else None,
            "trained_on": None if fcn_model is not None else str(real_folder),
            "saved_to": str(save_fcn_model) if save_fcn_model is not None else None,
            "classes": list(CLASS_NAMES),
            "thresholds": fcn.thresholds.as_dict(),
            "training": fcn.training,
        }
        extractor = get_feature_extractor(feature_extractor, device=device)
        report["settings"]["feature_extractor"] = extractor.describe()
        reference_features: dict[Path, torch.Tensor] = {}
        for name, spec in sets.items():
            reference = spec.reference or real_folder
            if reference not in reference_features:
                files = references[reference]
                reference_features[reference] = extract_features(
                    extractor, (load_rgb(path) for path in files)
                )
                if progress is not None:
                    progress(
                        "reference",
                        len(reference_features),
                        len({spec.reference or real_folder for spec in sets.values()}),
                    )
            result = _evaluate_model(
                name,
                manifests[name],
                fcn=fcn,
                extractor=extractor,
                reference_features=reference_features[reference],
                kid_subsets=kid_subsets,
                kid_subset_size=kid_subset_size,
                seed=seed,
                device=device,
                progress=progress,
            )
            report["models"][name] = {
                "manifest": str(spec.manifest),
                "reference": str(reference),
                **result,
            }

    report = json_safe(report)
    _write_json(report, Path(output))
    return report
