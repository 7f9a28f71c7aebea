"""Import BreakHis v1 with a patient-level, class-stratified train/test split.

The founding study's data (100+100 training, 10+10 test images at 400X) is::

    manage.py import_breakhis /data/BreaKHis_v1 --magnification 400X \
        --train-per-class 100 --test-per-class 10 --seed 0

Slides that share an accession number (``14-22549AB``, ``14-22549CD``) count as one
patient and the test split holds at least ``--min-test-patients`` patients per class
(default 3); see :mod:`ganlab.data.breakhis`.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ganlab.data.breakhis import (
    GROUPINGS,
    MAGNIFICATIONS,
    BreakHisLayoutError,
    find_breast_root,
    patient_group,
    scan_breakhis,
    split_by_patient,
)
from ratingstudy.catalog.models import ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.errors import ApplicationError


class Command(BaseCommand):
    help = (
        "Import real BreakHis v1 images, split by patient and stratified by class (all or nothing)."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "path", type=Path, help="the BreaKHis_v1 folder (or its histology_slides/breast)"
        )
        parser.add_argument(
            "--magnification", required=True, help=f"one of {', '.join(MAGNIFICATIONS)}"
        )
        parser.add_argument(
            "--train-per-class", type=int, required=True, help="training images per class"
        )
        parser.add_argument(
            "--test-per-class", type=int, required=True, help="test images per class"
        )
        parser.add_argument(
            "--seed", type=int, default=0, help="seed of the patient shuffle and sampling"
        )
        parser.add_argument(
            "--min-test-patients",
            type=int,
            default=3,
            help="at least this many patients per class in the test split (default 3)",
        )
        parser.add_argument(
            "--grouping",
            choices=GROUPINGS,
            default="accession",
            help="what one patient is: 'accession' (default) puts slides that share an "
            "accession number, 14-22549AB and 14-22549CD, together; 'slide' counts every "
            "slide id as a patient, as the dataset's authors did",
        )
        parser.add_argument(
            "--name", help="image set name (default: breakhis-<mag>-<train>+<test>-seed<seed>)"
        )

    def handle(self, *args, **options):
        mag = options["magnification"].upper()
        if not mag.endswith("X"):
            mag += "X"
        train_n, test_n, seed = (
            options["train_per_class"],
            options["test_per_class"],
            options["seed"],
        )
        name = options["name"] or f"breakhis-{mag}-{train_n}+{test_n}-seed{seed}"
        try:
            root = find_breast_root(options["path"])
            images = scan_breakhis(root, magnification=mag)
            train, test = split_by_patient(
                images,
                train_per_class=train_n,
                test_per_class=test_n,
                seed=seed,
                min_test_patients=options["min_test_patients"],
                grouping=options["grouping"],
            )
        except (BreakHisLayoutError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        entries = [
            ImageEntry(
                path=image.path,
                source_path=str(image.path.relative_to(root)),
                label=image.label,
                split=split,
                domain=image.label,
                # the patient, as grouped for the split; the slide id stays in source_path
                patient_id=patient_group(image.patient_id, options["grouping"]),
                magnification=image.magnification,
                subtype=image.subtype,
            )
            for split, chosen in (("train", train), ("test", test))
            for image in chosen
        ]
        try:
            image_set = image_set_import(
                name=name,
                kind=ImageSet.Kind.REAL,
                source=ImageSet.Source.BREAKHIS,
                entries=entries,
                description=f"BreakHis v1 {mag}, patient-level split",
                import_params={
                    "root": str(root),
                    "magnification": mag,
                    "train_per_class": train_n,
                    "test_per_class": test_n,
                    "seed": seed,
                    "min_test_patients": options["min_test_patients"],
                    "grouping": options["grouping"],
                },
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        patients = {
            split: len({patient_group(i.patient_id, options["grouping"]) for i in chosen})
            for split, chosen in (("train", train), ("test", test))
        }
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {len(entries)} images into {image_set.name!r}: "
                f"train {len(train)} from {patients['train']} patients, "
                f"test {len(test)} from {patients['test']} patients"
            )
        )
