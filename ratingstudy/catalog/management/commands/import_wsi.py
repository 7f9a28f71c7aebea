"""Import tissue tiles of whole-slide images (OpenSlide) as one real image set::

    manage.py import_wsi /data/slides/*.svs --mpp 0.5 --tile 512 --tissue-threshold 0.6 \\
        --max-tiles 200 --label malignant --split test --name slides-test

Each slide is read at one pyramid level (``--level L``, or the level nearest ``--mpp M``
microns per pixel); tissue is found by Otsu thresholding a thumbnail, and only tiles
with at least ``--tissue-threshold`` tissue are kept (at most ``--max-tiles`` per
slide, those with the most tissue). Every image's provenance names the slide (and its
sha256), the level, its resolution and the tile's coordinates at that level and at
level 0. All or nothing, like the other imports: a file that is not a slide, a level
a slide lacks or a slide without tissue tiles stops the import before anything is
written, and the error lists every problem.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError, CommandParser

from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.services import ImageEntry, image_set_import
from ratingstudy.errors import ApplicationError


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


class Command(BaseCommand):
    help = (
        "Import the tissue tiles of whole-slide images (SVS, NDPI, pyramidal TIFF...) as one "
        "real image set, all or nothing."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("slides", nargs="+", type=Path, metavar="SLIDE")
        where = parser.add_mutually_exclusive_group(required=True)
        where.add_argument("--level", type=int, help="pyramid level to tile (0 = full resolution)")
        where.add_argument(
            "--mpp", type=float, help="tile the level nearest this many microns per pixel"
        )
        parser.add_argument("--tile", type=int, default=512, help="tile side in pixels (512)")
        parser.add_argument(
            "--tissue-threshold",
            type=float,
            default=0.5,
            help="least share of tissue in a kept tile, above 0 and at most 1 (0.5)",
        )
        parser.add_argument(
            "--max-tiles", type=int, default=200, help="most tiles per slide (200)"
        )
        parser.add_argument("--label", default=Image.Label.UNKNOWN, choices=Image.Label.values)
        parser.add_argument("--split", default="", choices=["train", "test"])
        parser.add_argument("--domain", default="", help="domain name (default: the label)")
        parser.add_argument(
            "--name", help="image set name (default: the slide's name; required for several)"
        )

    def handle(self, *args, **options) -> None:
        try:
            from ratingstudy.catalog import wsi
        except ImportError as exc:  # openslide-bin missing from the environment
            raise CommandError(
                f"OpenSlide is not installed ({exc}); run `make install` "
                "(openslide-python and openslide-bin from requirements.txt)"
            ) from exc
        slides: list[Path] = options["slides"]
        try:
            tiling = wsi.SlideTiling(
                tile=options["tile"],
                tissue_threshold=options["tissue_threshold"],
                max_tiles=options["max_tiles"],
                level=options["level"],
                mpp=options["mpp"],
            )
        except ApplicationError as exc:
            raise CommandError(exc.message) from exc
        name = options["name"]
        if name is None:
            if len(slides) > 1:
                raise CommandError("several slides go into one image set: give it a --name")
            name = slides[0].stem
        names = [path.name for path in slides]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise CommandError(
                f"slides {twice} share a file name; tiles are named after their slide, so "
                "rename one or import them separately"
            )

        problems: list[str] = []
        plans = []
        for path in slides:
            try:
                slide = wsi.slide_open(path)
                level = wsi.level_choose(slide, tiling=tiling, path=path)
                tiles = wsi.tissue_tiles(slide, level=level, tiling=tiling)
            except ApplicationError as exc:
                problems.append(exc.message)
                continue
            if not tiles:
                problems.append(
                    f"{path}: no {tiling.tile}x{tiling.tile} tile at level {level.index} has "
                    f"{tiling.tissue_threshold:g} tissue or more; lower --tissue-threshold, use "
                    "a smaller --tile or a finer level"
                )
                continue
            plans.append((path, slide, level, tiles))
        if problems:
            raise CommandError(
                f"{len(problems)} slide(s) cannot be imported; nothing was written:\n  "
                + "\n  ".join(problems)
            )

        domain = options["domain"] or options["label"]
        with tempfile.TemporaryDirectory(prefix="import_wsi-") as scratch:
            entries, slide_params = [], {}
            for number, (path, slide, level, tiles) in enumerate(plans):
                sha256 = _sha256(path)
                vendor = slide.properties.get("openslide.vendor", "unknown")
                folder = Path(scratch) / str(number)
                folder.mkdir()
                for tile in tiles:
                    png = folder / f"{tile.x}_{tile.y}.png"
                    wsi.tile_read(slide, level=level, tile=tile, size=tiling.tile).save(png)
                    entries.append(
                        ImageEntry(
                            path=png,
                            source_path=f"{path.name}@L{level.index}/{tile.x},{tile.y}",
                            label=options["label"],
                            split=options["split"],
                            domain=domain,
                            provenance={
                                "original_format": f"whole-slide image ({vendor})",
                                "slide": {
                                    "name": path.name,
                                    "sha256": sha256,
                                    "level": level.index,
                                    "downsample": level.downsample,
                                    "mpp": level.mpp,
                                    "x": tile.x,
                                    "y": tile.y,
                                    "x0": tile.x0,
                                    "y0": tile.y0,
                                    "size": tiling.tile,
                                    "tissue_fraction": tile.tissue_fraction,
                                },
                            },
                        )
                    )
                slide_params[path.name] = {
                    "path": str(path.resolve()),
                    "sha256": sha256,
                    "vendor": vendor,
                    "level": level.index,
                    "mpp": level.mpp,
                    "tiles": len(tiles),
                }
                slide.close()
            try:
                image_set = image_set_import(
                    name=name,
                    kind=ImageSet.Kind.REAL,
                    source=ImageSet.Source.FOLDER,
                    description=f"Tissue tiles of {len(plans)} whole-slide image(s)",
                    entries=entries,
                    import_params={
                        "imported": True,
                        "command": "import_wsi",
                        "level": tiling.level,
                        "mpp": tiling.mpp,
                        "tile": tiling.tile,
                        "tissue_threshold": tiling.tissue_threshold,
                        "max_tiles": tiling.max_tiles,
                        "label": options["label"],
                        "split": options["split"],
                        "slides": slide_params,
                    },
                )
            except ApplicationError as exc:
                raise CommandError(exc.message) from exc
        self.stdout.write(
            self.style.SUCCESS(
                f"imported {len(entries)} tiles of {len(plans)} slide(s) into {image_set.name!r}"
            )
        )
