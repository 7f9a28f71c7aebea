"""Import the deterministic demo tiles (idempotent: an existing demo set is kept)."""

from __future__ import annotations

import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand

from ganlab.data.demo import write_demo_tree
from ratingstudy.catalog.models import ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import

DEMO_SET_NAME = "demo-tiles"


class Command(BaseCommand):
    help = "Generate and import the demo H&E tiles (64+64 train, 16+16 test at 128x128 by default)."

    def add_arguments(self, parser):
        parser.add_argument("--train-per-class", type=int, default=64)
        parser.add_argument("--test-per-class", type=int, default=16)
        parser.add_argument("--size", type=int, default=128)
        parser.add_argument("--seed", type=int, default=0)
        parser.add_argument("--name", default=DEMO_SET_NAME)

    def handle(self, *args, **options):
        if ImageSet.objects.filter(name=options["name"]).exists():
            self.stdout.write(f"demo image set {options['name']!r} already exists; kept as is")
            return
        with tempfile.TemporaryDirectory() as tmp:
            records = write_demo_tree(
                tmp,
                per_class_train=options["train_per_class"],
                per_class_test=options["test_per_class"],
                size=options["size"],
                seed=options["seed"],
            )
            entries = [
                ImageEntry(
                    path=Path(tmp) / r["path"],
                    source_path=r["path"],
                    label=r["label"],
                    split=r["split"],
                    domain=r["label"],
                    patient_id=r["patient_id"],
                    magnification="400X",
                )
                for r in records
            ]
            image_set_import(
                name=options["name"],
                kind=ImageSet.Kind.REAL,
                source=ImageSet.Source.DEMO,
                entries=entries,
                description="Synthetic H&E-like demo tiles (ganlab.data.demo)",
                import_params={
                    k: options[k] for k in ("train_per_class", "test_per_class", "size", "seed")
                },
            )
        self.stdout.write(
            self.style.SUCCESS(f"imported {len(entries)} demo tiles into {options['name']!r}")
        )
