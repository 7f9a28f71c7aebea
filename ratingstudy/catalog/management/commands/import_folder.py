"""Import any folder of PNG, JPEG or TIFF images (recursively) as one image set.

Real fields (the default) or images generated elsewhere, e.g. by a GAN trained
outside the lab::

    manage.py import_folder /data/fields --label malignant --split test --tile 256
    manage.py import_folder /data/cyclegan_out --kind generated --model my-cyclegan \\
        --label malignant --split test

``--tile`` cuts every image into square tiles (a grid centred on the field, or
seeded random positions) so that real and generated images can reach a study
with the same geometry. The set's ``import_params`` record the command, its
options and the sha256 of every original file.
"""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ganlab.data.imageio import SUPPORTED_SUFFIXES
from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.services import ImageEntry, Tiling, image_set_import
from ratingstudy.errors import ApplicationError


def _tiling(options: dict) -> Tiling | None:
    """The tiling the options ask for; refuses tiling options that would be ignored."""
    mode, count, seed = options["tile_mode"], options["tiles_per_image"], options["seed"]
    if options["tile"] is None:
        given = [
            flag
            for flag, value in (
                ("--tile-mode", mode),
                ("--tiles-per-image", count),
                ("--seed", seed),
            )
            if value is not None
        ]
        if given:
            raise CommandError(f"{', '.join(given)} only apply with --tile SIZE; add --tile")
        return None
    mode = mode or "grid"
    if mode == "grid" and (count is not None or seed is not None):
        raise CommandError(
            "--tiles-per-image and --seed only apply to --tile-mode random; "
            "a grid takes every whole tile of the field"
        )
    try:
        return Tiling(
            size=options["tile"],
            mode=mode,
            tiles_per_image=1 if count is None else count,
            seed=0 if seed is None else seed,
        )
    except ApplicationError as exc:
        raise CommandError(exc.message) from exc


class Command(BaseCommand):
    help = (
        "Import every PNG/JPEG/TIFF under PATH as a real image set, or with --kind generated "
        "--model NAME as a generated one (all or nothing); --tile SIZE cuts square tiles."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", type=Path, help="folder to import (searched recursively)")
        parser.add_argument("--label", required=True, choices=Image.Label.values)
        parser.add_argument(
            "--split", default="", choices=["train", "test"], help="split of every image"
        )
        parser.add_argument("--domain", default="", help="domain name (default: the label)")
        parser.add_argument("--name", help="image set name (default: the folder name)")
        parser.add_argument(
            "--kind",
            default=ImageSet.Kind.REAL,
            choices=ImageSet.Kind.values,
            help="real micrographs (default) or images generated elsewhere",
        )
        parser.add_argument(
            "--model",
            help="the model that generated the images (required with --kind generated); "
            "studies and results group generated images by it",
        )
        parser.add_argument(
            "--tile", type=int, metavar="SIZE", help="cut every image into SIZE x SIZE tiles"
        )
        parser.add_argument(
            "--tile-mode",
            choices=Tiling.MODES,
            help="grid (default): every whole tile of a grid centred on the field; "
            "random: --tiles-per-image seeded random positions",
        )
        parser.add_argument(
            "--tiles-per-image", type=int, help="random mode: tiles cut per image (default 1)"
        )
        parser.add_argument(
            "--seed",
            type=int,
            help="random mode: seed of the positions, combined with each file's path (default 0)",
        )

    def handle(self, *args, **options) -> None:
        root: Path = options["path"]
        kind, model = options["kind"], options["model"]
        if kind == ImageSet.Kind.GENERATED and not model:
            raise CommandError(
                "--kind generated needs --model NAME: the model that made the images"
            )
        if kind == ImageSet.Kind.REAL and model is not None:
            raise CommandError(
                "--model names the model that generated the images; real images have none "
                "(add --kind generated if these images were generated)"
            )
        tiling = _tiling(options)
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
        import_params = {
            "imported": True,
            "command": "import_folder",
            "root": str(root.resolve()),
            "kind": kind,
            "model": model,
            "label": options["label"],
            "split": options["split"],
            **(tiling.params() if tiling else {}),
        }
        description = f"Generated by {model} outside the lab" if model else ""
        try:
            image_set = image_set_import(
                name=options["name"] or root.resolve().name,
                kind=kind,
                source=ImageSet.Source.FOLDER,
                model_name=model or "",
                description=description,
                entries=entries,
                import_params=import_params,
                tiling=tiling,
                record_file_hashes=True,
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        count = image_set.images.count()
        tiles = f" ({count} tiles)" if tiling else ""
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {len(entries)} {kind} images{tiles} into {image_set.name!r}"
            )
        )
