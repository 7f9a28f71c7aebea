"""Torch-free reader for the BreakHis v1 folder layout and a patient-level split.

Layout (as distributed)::

    BreaKHis_v1/histology_slides/breast/{benign,malignant}/SOB/<subtype>/
        SOB_<B|M>_<code>_<patient>/<magnification>/SOB_<B|M>_<code>-<patient>-<mag>-<seq>.png

e.g. ``.../benign/SOB/adenosis/SOB_B_A_14-22549AB/400X/SOB_B_A-14-22549AB-400-001.png``.

**Which images belong to one patient.** The dataset's description names the id in a
file name a *slide*: "SOB_B_TA-14-4659-40-001.png is the image 1, at magnification factor
40X, of a benign tumor of type tubular adenoma, original from the slide 14-4659"
(Spanhol et al. 2016, and the dataset's web page). The id is ``<year>-<accession
number>`` with, on some slides, capital letters after the number. The letters are not
explained, and the same accession number appears with different letters, even under
different tumour types: ``14-22549AB``, ``14-22549CD`` and ``14-22549G`` (adenosis);
``14-21998AB`` (phyllodes tumour) with ``14-21998CD`` and ``14-21998EF`` (fibroadenoma);
``14-29960CD`` (adenosis) with ``14-29960AB`` (fibroadenoma); ``14-15570`` with
``14-15570C`` (lobular carcinoma). The paper's patient counts, 24 benign and 58
malignant, equal the number of *folders* (one per slide id and tumour type; ``14-13412``
has a ductal and a lobular carcinoma folder), so the authors counted slides as patients.
An accession number identifies one case, though, so slides that share it most likely
come from one person, and putting ``14-22549AB`` in training and ``14-22549CD`` in the
test split would test the model on the patient it learnt from.

This module therefore groups by **accession number** by default (:func:`patient_group`:
``14-22549AB``, ``14-22549CD`` and ``14-22549G`` are one patient ``14-22549``), which
leaves 16 benign and 54 malignant patients at every magnification, and never splits a
group. ``grouping="slide"`` keeps the dataset's own slide-level counting (82 groups) for
reproducing splits that used it. :class:`BreakHisImage` keeps the full slide id as
``patient_id``; ``import_breakhis`` stores the group (the patient) in the catalogue, and
the slide id stays in the file name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MAGNIFICATIONS = ("40X", "100X", "200X", "400X")
CLASSES = ("benign", "malignant")
SUBTYPE_CODES = {
    "A": "adenosis",
    "F": "fibroadenoma",
    "PT": "phyllodes_tumor",
    "TA": "tubular_adenoma",
    "DC": "ductal_carcinoma",
    "LC": "lobular_carcinoma",
    "MC": "mucinous_carcinoma",
    "PC": "papillary_carcinoma",
}
_FILE_RE = re.compile(
    r"^SOB_(?P<cls>[BM])_(?P<code>[A-Z]+)-(?P<patient>\d+-[0-9A-Za-z]+)-(?P<mag>\d+)-(?P<seq>\d+)\.png$",
    re.IGNORECASE,
)


class BreakHisLayoutError(ValueError):
    """The folder does not follow the BreakHis v1 layout; the message says where and why."""


@dataclass(frozen=True)
class BreakHisImage:
    path: Path
    label: str  # benign | malignant
    subtype: str
    patient_id: str
    magnification: str
    sequence: int


def find_breast_root(path: Path | str) -> Path:
    """Locate ``.../histology_slides/breast`` at or below ``path`` (at most 3 levels)."""
    path = Path(path)
    if not path.is_dir():
        raise BreakHisLayoutError(f"{path}: not a directory")
    candidates = [path, path / "breast", path / "histology_slides" / "breast"]
    candidates.append(path / "BreaKHis_v1" / "histology_slides" / "breast")
    for candidate in candidates:
        if all((candidate / cls / "SOB").is_dir() for cls in CLASSES):
            return candidate
    raise BreakHisLayoutError(
        f"{path}: expected BreakHis v1 layout with "
        "BreaKHis_v1/histology_slides/breast/{benign,malignant}/SOB/<subtype>/<patient>/<magnification>/"
    )


def scan_breakhis(path: Path | str, *, magnification: str) -> list[BreakHisImage]:
    """List the images of one magnification, checking every name against the layout."""
    if magnification not in MAGNIFICATIONS:
        raise BreakHisLayoutError(
            f"unknown magnification {magnification!r}; choose one of {', '.join(MAGNIFICATIONS)}"
        )
    breast = find_breast_root(path)
    images: list[BreakHisImage] = []
    problems: list[str] = []
    for label in CLASSES:
        for subtype_dir in sorted(p for p in (breast / label / "SOB").iterdir() if p.is_dir()):
            for patient_dir in sorted(p for p in subtype_dir.iterdir() if p.is_dir()):
                mag_dir = patient_dir / magnification
                if not mag_dir.is_dir():
                    continue
                for file in sorted(mag_dir.iterdir()):
                    if file.name.startswith("."):
                        continue
                    match = _FILE_RE.match(file.name)
                    if match is None:
                        problems.append(
                            f"{file}: file name does not follow SOB_<B|M>_<type>-<patient>-<mag>-<seq>.png"
                        )
                        continue
                    expected_cls = "B" if label == "benign" else "M"
                    if match["cls"].upper() != expected_cls:
                        problems.append(
                            f"{file}: class letter {match['cls']} contradicts folder {label}/"
                        )
                        continue
                    if f"{match['mag']}X" != magnification:
                        problems.append(
                            f"{file}: magnification {match['mag']}X in the name, folder says {magnification}"
                        )
                        continue
                    images.append(
                        BreakHisImage(
                            path=file,
                            label=label,
                            subtype=SUBTYPE_CODES.get(match["code"].upper(), subtype_dir.name),
                            patient_id=match["patient"],
                            magnification=magnification,
                            sequence=int(match["seq"]),
                        )
                    )
    if problems:
        raise BreakHisLayoutError(
            "; ".join(problems[:20])
            + (f" (+{len(problems) - 20} more)" if len(problems) > 20 else "")
        )
    if not images:
        raise BreakHisLayoutError(f"{breast}: no {magnification} images found")
    return images


GROUPINGS = ("accession", "slide")
_ACCESSION_RE = re.compile(r"^(?P<accession>\d+-\d+)[A-Za-z]*$")


def patient_group(patient_id: str, grouping: str = "accession") -> str:
    """The patient a slide id belongs to (see the module docstring).

    ``accession``: the id without the letters after the accession number
    (``14-22549AB`` -> ``14-22549``); ``slide``: the id itself.
    """
    if grouping not in GROUPINGS:
        raise ValueError(f"grouping must be one of {GROUPINGS}, got {grouping!r}")
    match = _ACCESSION_RE.match(patient_id) if grouping == "accession" else None
    return match["accession"] if match else patient_id


def split_by_patient(
    images: list[BreakHisImage],
    *,
    train_per_class: int,
    test_per_class: int,
    seed: int,
    min_test_patients: int = 3,
    grouping: str = "accession",
) -> tuple[list[BreakHisImage], list[BreakHisImage]]:
    """Draw ``train_per_class`` + ``test_per_class`` images per class, no patient on both sides.

    Images are grouped into patients by :func:`patient_group`. A patient with images of
    both classes (a slide id filed as benign and as malignant) is kept whole on the
    training side, so the test split's patients are unambiguous.

    For each class the other patients are shuffled with ``seed``; the first
    ``min_test_patients`` of them, and more while they hold fewer than
    ``test_per_class`` images, form the test side. Test images are drawn round-robin
    over those patients (each patient's images in a random order), so every test patient
    contributes and none dominates: 10 images from 3 patients are 4 + 3 + 3, not 10 from
    the first one. Training images are drawn without replacement from the rest.

    Raises ``ValueError`` saying what is missing when a class has too few patients or
    images for these numbers.
    """
    if train_per_class < 1 or test_per_class < 0:
        raise ValueError("train_per_class must be >= 1 and test_per_class >= 0")
    if test_per_class and min_test_patients < 1:
        raise ValueError(f"min_test_patients must be >= 1, got {min_test_patients}")
    if 0 < test_per_class < min_test_patients:
        raise ValueError(
            f"test_per_class ({test_per_class}) is smaller than min_test_patients "
            f"({min_test_patients}): every test patient needs at least one image; raise "
            "the test images per class or lower the minimum of test patients"
        )
    rng = np.random.default_rng(seed)
    groups: dict[str, list[BreakHisImage]] = {}
    for image in images:
        groups.setdefault(patient_group(image.patient_id, grouping), []).append(image)
    both_classes = {key for key, members in groups.items() if len({i.label for i in members}) > 1}
    train: list[BreakHisImage] = []
    test: list[BreakHisImage] = []
    for label in CLASSES:
        own = sorted(k for k, m in groups.items() if k not in both_classes and m[0].label == label)
        order = [own[i] for i in rng.permutation(len(own))]
        shared = [k for k in sorted(both_classes) if any(i.label == label for i in groups[k])]
        # at least one patient stays for training (a shared one will do)
        candidates = order if shared else order[:-1]
        chosen: list[str] = []
        if test_per_class:
            for key in candidates:
                pooled = sum(len(groups[k]) for k in chosen)
                if len(chosen) >= min_test_patients and pooled >= test_per_class:
                    break
                chosen.append(key)
        train_pool = [
            image
            for key in sorted(set(groups) - set(chosen))
            for image in groups[key]
            if image.label == label
        ]
        test_pool = sum(len(groups[k]) for k in chosen)
        problem = _split_problem(
            label=label,
            patients=len(own),
            shared=len(shared),
            test_patients=len(chosen),
            test_images=test_pool,
            train_images=len(train_pool),
            train_per_class=train_per_class,
            test_per_class=test_per_class,
            min_test_patients=min_test_patients,
            grouping=grouping,
        )
        if problem:
            raise ValueError(problem)
        test.extend(_round_robin([groups[k] for k in chosen], test_per_class, rng))
        pick = sorted(rng.choice(len(train_pool), size=train_per_class, replace=False))
        train.extend(train_pool[i] for i in pick)
    return train, test


def _round_robin(
    patients: list[list[BreakHisImage]], count: int, rng: np.random.Generator
) -> list[BreakHisImage]:
    """``count`` images taken one per patient in turn, each patient's images shuffled."""
    queues = [[members[i] for i in rng.permutation(len(members))] for members in patients]
    picked: list[BreakHisImage] = []
    depth = 0
    while len(picked) < count:
        for queue in queues:
            if depth < len(queue) and len(picked) < count:
                picked.append(queue[depth])
        depth += 1
    return picked


def _split_problem(
    *,
    label: str,
    patients: int,
    shared: int,
    test_patients: int,
    test_images: int,
    train_images: int,
    train_per_class: int,
    test_per_class: int,
    min_test_patients: int,
    grouping: str,
) -> str | None:
    """What makes the split of one class impossible, or ``None``."""
    unit = "accession numbers" if grouping == "accession" else "slide ids"
    where = (
        f"{label}: {patients} patient(s) ({unit})"
        + (f" plus {shared} with images of both classes, kept for training" if shared else "")
    )
    if test_per_class and test_patients < min_test_patients:
        return (
            f"{where} cannot give {min_test_patients} test patients and keep patients for "
            f"training; lower the minimum of test patients (--min-test-patients) or use "
            f"another magnification or dataset"
        )
    if test_images < test_per_class:
        return (
            f"{where}: the {test_patients} patients left for the test split hold only "
            f"{test_images} images, fewer than the {test_per_class} asked for"
        )
    if train_images < train_per_class:
        return (
            f"{where}: after {test_patients} test patient(s) with {test_images} images, the "
            f"remaining patients hold {train_images} images, fewer than the {train_per_class} "
            f"training images asked for; lower --train-per-class, --test-per-class or "
            f"--min-test-patients"
        )
    return None
