"""Import any folder of PNG, JPEG or TIFF images (recursively) as one real image set."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from ganlab.data.imageio import SUPPORTED_SUFFIXES
from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.errors import ApplicationError


class Command(BaseCommand):
    help = "Import every PNG/JPEG/TIFF under PATH as a real image set (all or nothing)."

    def add_arguments(self, parser):
        parser.add_argument("path", type=Path, help="folder to import (searched recursively)")
        parser.add_argument("--label", required=True, choices=Image.Label.values)
        parser.add_argument(
            "--split", default="", choices=["train", "test"], help="split of every image"
        )
        parser.add_argument("--domain", default="", help="domain name (default: the label)")
        parser.add_argument("--name", help="image set name (default: the folder name)")

    def handle(self, *args, **options):
        root: Path = options["path"]
        if not root.is_dir():
            raise CommandError(f"{root}: not a directory")
        files = sorted(p for p in root.rglob("*") if p.is_file() and not p.name.startswith("."))
        unsupported = [p for p in files if p.suffix.lower() not in SUPPORTED_SUFFIXES]
        if unsupported:
            listed = ", ".join(str(p) for p in unsupported[:10])
            raise CommandError(
                f"{len(unsupported)} file(s) are not PNG, JPEG or TIFF: {listed}; "
                "remove them or import a folder that holds only images"
            )
        if not files:
            raise CommandError(f"{root}: no images found")
        entries = [
            ImageEntry(
                path=p,
                source_path=str(p.relative_to(root)),
                label=options["label"],
                split=options["split"],
                domain=options["domain"] or options["label"],
            )
            for p in files
        ]
        try:
            image_set = image_set_import(
                name=options["name"] or root.resolve().name,
                kind=ImageSet.Kind.REAL,
                source=ImageSet.Source.FOLDER,
                entries=entries,
                import_params={
                    "root": str(root.resolve()),
                    "label": options["label"],
                    "split": options["split"],
                },
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(f"imported {len(entries)} images into {image_set.name!r}")
        )
