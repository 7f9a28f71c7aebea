"""The BreakHis patient split on the real dataset's 400X folder sizes (no image files needed)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pytest

from ganlab.data.breakhis import BreakHisImage, patient_group, split_by_patient

#: BreaKHis v1 at 400X: (class, subtype, slide id) -> images, one entry per folder of the
#: distributed dataset (82 folders; 14-13412 is filed as ductal and as lobular carcinoma).
REAL_400X = {
    ("benign", "adenosis"): {"14-22549G": 29, "14-22549CD": 30, "14-22549AB": 30, "14-29960CD": 17},
    ("benign", "fibroadenoma"): {
        "14-14134": 37, "14-14134E": 12, "14-25197": 33, "14-29960AB": 17, "14-23060CD": 16,
        "14-23060AB": 18, "14-9133": 26, "14-23222AB": 18, "14-21998CD": 32, "14-21998EF": 28,
    },
    ("benign", "phyllodes_tumor"): {"14-22704": 39, "14-21998AB": 59, "14-29315EF": 17},
    ("benign", "tubular_adenoma"): {
        "14-21978AB": 14, "14-3411F": 17, "14-16184": 24, "14-15275": 15, "14-16184CD": 29,
        "14-19854C": 16, "14-13200": 15,
    },
    ("malignant", "ductal_carcinoma"): {
        "14-18650": 29, "14-15572": 15, "14-2980": 18, "14-15792": 15, "14-13412": 26,
        "14-6241": 13, "14-11520": 23, "14-5694": 26, "14-5695": 24, "14-16716": 29,
        "14-2773": 38, "14-17614": 28, "14-2523": 24, "14-4364": 8, "14-14015": 20,
        "14-16336": 9, "14-15696": 15, "14-12312": 38, "14-4372": 24, "14-11031": 15,
        "14-16188": 23, "14-9461": 31, "14-5287": 23, "14-11951": 20, "14-16601": 13,
        "14-13993": 32, "14-10926": 9, "14-20629": 24, "14-16448": 15, "14-16875": 8,
        "14-3909": 14, "14-17915": 16, "14-2985": 14, "14-17901": 28, "14-20636": 22,
        "14-8168": 9, "14-14946": 34, "14-14926": 16,
    },
    ("malignant", "lobular_carcinoma"): {
        "14-12204": 24, "14-15570C": 29, "14-15570": 41, "14-16196": 17, "14-13412": 26,
    },
    ("malignant", "mucinous_carcinoma"): {
        "14-18842": 9, "14-13418DE": 11, "14-18842D": 16, "14-13413": 26, "14-16456": 35,
        "14-12773": 18, "14-10147": 15, "14-19979": 24, "14-19979C": 15,
    },
    ("malignant", "papillary_carcinoma"): {
        "14-19440": 36, "15-190EF": 15, "14-15687B": 15, "14-12465": 13, "14-15704": 35,
        "14-9146": 24,
    },
}  # fmt: skip


def real_400x(extra: dict[tuple[str, str], dict[str, int]] | None = None) -> list[BreakHisImage]:
    folders = {key: dict(value) for key, value in REAL_400X.items()}
    for key, slides in (extra or {}).items():
        folders.setdefault(key, {}).update(slides)
    return [
        BreakHisImage(
            path=Path(f"{label}/{subtype}/{slide}/{seq:03d}.png"),
            label=label,
            subtype=subtype,
            patient_id=slide,
            magnification="400X",
            sequence=seq,
        )
        for (label, subtype), slides in folders.items()
        for slide, count in slides.items()
        for seq in range(1, count + 1)
    ]


def test_the_table_is_the_published_dataset() -> None:
    counts = Counter(image.label for image in real_400x())
    assert counts == {"benign": 588, "malignant": 1232}  # BreakHis 400X, as published
    assert sum(len(slides) for slides in REAL_400X.values()) == 82  # folders: 24 + 58 "patients"


def test_letter_suffixes_group_by_accession_number() -> None:
    assert patient_group("14-22549AB") == patient_group("14-22549CD") == "14-22549"
    assert patient_group("14-22549G") == patient_group("14-22549") == "14-22549"
    assert patient_group("15-190EF") == "15-190"
    assert patient_group("14-22549AB", "slide") == "14-22549AB"
    groups = {
        label: {patient_group(i.patient_id) for i in real_400x() if i.label == label}
        for label in ("benign", "malignant")
    }
    assert (len(groups["benign"]), len(groups["malignant"])) == (16, 54)
    with pytest.raises(ValueError, match="grouping must be one of"):
        patient_group("14-1", "patient")


@pytest.mark.parametrize("seed", range(25))
def test_founding_split_has_three_test_patients_per_class_and_no_shared_patient(seed) -> None:
    train, test = split_by_patient(real_400x(), train_per_class=100, test_per_class=10, seed=seed)
    for label in ("benign", "malignant"):
        test_patients = Counter(patient_group(i.patient_id) for i in test if i.label == label)
        train_patients = {patient_group(i.patient_id) for i in train if i.label == label}
        assert sum(test_patients.values()) == 10 and len(train_patients) > 0
        assert len(test_patients) >= 3, test_patients
        assert max(test_patients.values()) <= 4  # round-robin: 4 + 3 + 3, not 10 from one
        assert sum(1 for i in train if i.label == label) == 100
    every_test = {patient_group(i.patient_id) for i in test}
    every_train = {patient_group(i.patient_id) for i in train}
    assert not every_test & every_train
    assert len({i.path for i in train + test}) == 220


def test_slide_grouping_would_separate_slides_of_one_accession_number() -> None:
    """The dataset's own counting (slide ids) lets 14-22549AB and 14-22549CD fall on both
    sides for some seed; the default grouping never does."""

    def separated(grouping: str) -> bool:
        for seed in range(40):
            train, test = split_by_patient(
                real_400x(), train_per_class=100, test_per_class=10, seed=seed, grouping=grouping
            )
            sides = {
                "train": {patient_group(i.patient_id) for i in train},
                "test": {patient_group(i.patient_id) for i in test},
            }
            if sides["train"] & sides["test"]:
                return True
        return False

    assert separated("slide") and not separated("accession")


def test_a_patient_filed_under_both_classes_stays_in_training() -> None:
    # a malignant folder carrying a benign accession number (a filing error, or one person)
    extra = {("malignant", "ductal_carcinoma"): {"14-22549AB": 12, "14-22704": 5}}
    shared = {"14-22549", "14-22704"}
    for seed in range(25):
        train, test = split_by_patient(
            real_400x(extra), train_per_class=100, test_per_class=10, seed=seed
        )
        assert not {patient_group(i.patient_id) for i in test} & shared
    groups = {patient_group(i.patient_id) for i in train}
    assert groups & shared  # their images still train (of both classes)


def test_impossible_numbers_say_what_is_missing() -> None:
    images = real_400x()
    with pytest.raises(ValueError, match=r"benign: 16 patient\(s\) \(accession numbers\) cannot give 16 test patients"):
        split_by_patient(
            images, train_per_class=10, test_per_class=20, seed=0, min_test_patients=16
        )
    with pytest.raises(ValueError, match="fewer than the 550 training images asked for"):
        split_by_patient(images, train_per_class=550, test_per_class=10, seed=0)
    with pytest.raises(ValueError, match=r"test_per_class \(2\) is smaller than min_test_patients \(3\)"):
        split_by_patient(images, train_per_class=10, test_per_class=2, seed=0)
    # enough patients, given a smaller minimum
    train, test = split_by_patient(
        images, train_per_class=10, test_per_class=2, seed=0, min_test_patients=2
    )
    assert len(test) == 4 and len(train) == 20
