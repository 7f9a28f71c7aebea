"""Torch-free reader for the BreakHis v1 folder layout and a patient-level split.

Layout (as distributed)::

    BreaKHis_v1/histology_slides/breast/{benign,malignant}/SOB/<subtype>/
        SOB_<B|M>_<code>_<patient>/<magnification>/SOB_<B|M>_<code>-<patient>-<mag>-<seq>.png

e.g. ``.../benign/SOB/adenosis/SOB_B_A_14-22549AB/400X/SOB_B_A-14-22549AB-400-001.png``.
The patient id is ``<year>-<slide>`` (``14-22549AB``): all images of one patient go
to the same split so no patient's tissue is seen in both training and test.
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


def split_by_patient(
    images: list[BreakHisImage], *, train_per_class: int, test_per_class: int, seed: int
) -> tuple[list[BreakHisImage], list[BreakHisImage]]:
    """Draw ``train_per_class`` + ``test_per_class`` images per class with disjoint patients.

    For each class the patients are shuffled with ``seed``; patients are moved to
    the test side until they hold at least ``test_per_class`` images, then the
    test and training images are sampled without replacement from their own
    patients. Raises ``ValueError`` when a class has too few images or patients.
    """
    if train_per_class < 1 or test_per_class < 0:
        raise ValueError("train_per_class must be >= 1 and test_per_class >= 0")
    rng = np.random.default_rng(seed)
    train: list[BreakHisImage] = []
    test: list[BreakHisImage] = []
    for label in CLASSES:
        by_patient: dict[str, list[BreakHisImage]] = {}
        for image in images:
            if image.label == label:
                by_patient.setdefault(image.patient_id, []).append(image)
        patients = sorted(by_patient)
        order = [patients[i] for i in rng.permutation(len(patients))]
        test_pool: list[BreakHisImage] = []
        test_patients = 0
        while test_per_class and len(test_pool) < test_per_class and test_patients < len(order) - 1:
            test_pool.extend(by_patient[order[test_patients]])
            test_patients += 1
        train_pool = [img for patient in order[test_patients:] for img in by_patient[patient]]
        if len(test_pool) < test_per_class or len(train_pool) < train_per_class:
            raise ValueError(
                f"{label}: {len(patients)} patients with {sum(map(len, by_patient.values()))} images "
                f"cannot give {train_per_class} training and {test_per_class} test images "
                "from disjoint patients"
            )
        pick = sorted(rng.choice(len(test_pool), size=test_per_class, replace=False))
        test.extend(test_pool[i] for i in pick)
        pick = sorted(rng.choice(len(train_pool), size=train_per_class, replace=False))
        train.extend(train_pool[i] for i in pick)
    return train, test
