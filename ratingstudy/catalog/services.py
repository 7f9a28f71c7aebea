"""Writes to the image catalogue. Every import is all-or-nothing.

Files are decoded and validated one by one and written through the default
storage to the import's staging folder; rows are created in one transaction,
after every file is in place (see :mod:`ratingstudy.catalog.staging`, which also
makes a killed import leave nothing that its sweep does not remove). If any file
is bad, the transaction is rolled back *and* every file already written is
deleted, and the error lists every bad file with its reason.

An entry may store only a crop of its file (``ImageEntry.crop``), and an import
may cut every file into tiles (:class:`Tiling`) so that real fields and generated
images reach a study with the same geometry. Each file is decoded once however
many crops or tiles are cut from it.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np
from django.conf import settings
from django.db import transaction

from ganlab.data.imageio import (
    DecodedImage,
    ImageDecodeError,
    decode_image,
    encode_png,
    sha256_bytes,
)
from ratingstudy.catalog.models import Image, ImageSet
from ratingstudy.catalog.staging import Staging, import_staging
from ratingstudy.errors import ApplicationError


@dataclass(frozen=True)
class ImageEntry:
    """One file to add to an image set, with what is known about it."""

    path: Path
    source_path: str  # relative name recorded in the catalogue (unique within the set)
    label: str = Image.Label.UNKNOWN
    split: str = ""
    domain: str = ""
    patient_id: str = ""
    magnification: str = ""
    subtype: str = ""
    source_image_id: int | None = None
    direction: str = ""
    checkpoint_sha256: str = ""
    # (x, y, width, height) in the decoded original: store only that part of it.
    crop: tuple[int, int, int, int] | None = None
    # Merged into ``Image.provenance`` after ``{"original_format": ...}``.
    provenance: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Tiling:
    """Cut every imported image (a *field*) into ``size`` x ``size`` tiles.

    ``grid``: every whole tile of a grid centred on the field (a 700x460 field at
    256 gives 2x1 tiles at x = 94, 350 and y = 102). ``random``: ``tiles_per_image``
    distinct positions drawn uniformly from a generator seeded by ``seed`` and the
    field's relative path, so the same import always cuts the same tiles.
    """

    MODES: ClassVar[tuple[str, ...]] = ("grid", "random")

    size: int
    mode: str = "grid"
    tiles_per_image: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.size < 1:
            raise ApplicationError(f"the tile size must be at least 1 pixel, got {self.size}")
        if self.mode not in self.MODES:
            raise ApplicationError(
                f"tile mode must be one of {', '.join(self.MODES)}, got {self.mode!r}"
            )
        if self.tiles_per_image < 1:
            raise ApplicationError(
                f"tiles per image must be at least 1, got {self.tiles_per_image}"
            )
        if self.seed < 0:
            raise ApplicationError(f"the tiling seed must be 0 or more, got {self.seed}")

    def params(self) -> dict:
        """How the tiles were cut, for ``ImageSet.import_params`` (grid mode uses no count or seed)."""
        random = self.mode == "random"
        return {
            "tile": self.size,
            "tile_mode": self.mode,
            "tiles_per_image": self.tiles_per_image if random else None,
            "seed": self.seed if random else None,
        }

    def positions(self, *, width: int, height: int, field_path: str) -> list[tuple[int, int]]:
        """Top-left corners ``(x, y)`` of the tiles of a ``width`` x ``height`` field.

        Raises ``ValueError`` with the reason when the field cannot give them.
        """
        if width < self.size or height < self.size:
            raise ValueError(
                f"the {width}x{height} field is smaller than the {self.size}x{self.size} tile; "
                "choose a smaller --tile or leave this file out"
            )
        if self.mode == "grid":
            columns, rows = width // self.size, height // self.size
            x0, y0 = (width - columns * self.size) // 2, (height - rows * self.size) // 2
            return [
                (x0 + column * self.size, y0 + row * self.size)
                for row in range(rows)
                for column in range(columns)
            ]
        span_x, span_y = width - self.size + 1, height - self.size + 1
        if self.tiles_per_image > span_x * span_y:
            raise ValueError(
                f"the {width}x{height} field has only {span_x * span_y} distinct "
                f"{self.size}x{self.size} tile positions, {self.tiles_per_image} were asked for"
            )
        path_key = int.from_bytes(hashlib.sha256(field_path.encode()).digest()[:8], "big")
        rng = np.random.default_rng([self.seed, path_key])
        chosen = rng.choice(span_x * span_y, size=self.tiles_per_image, replace=False)
        return [(int(i % span_x), int(i // span_x)) for i in sorted(chosen.tolist())]


class ImportFailed(ApplicationError):
    """At least one file could not be imported; nothing was written."""


def _validate_entry(entry: ImageEntry) -> None:
    if entry.label not in Image.Label.values:
        raise ApplicationError(
            f"{entry.path}: label must be one of {', '.join(Image.Label.values)}, got {entry.label!r}"
        )
    if entry.split not in Image.Split.values:
        raise ApplicationError(
            f"{entry.path}: split must be train, test or empty, got {entry.split!r}"
        )
    if entry.direction not in Image.Direction.values:
        raise ApplicationError(
            f"{entry.path}: direction must be AtoB, BtoA or empty, got {entry.direction!r}"
        )
    if entry.crop is not None and (
        len(entry.crop) != 4
        or not all(isinstance(v, int) for v in entry.crop)
        or min(entry.crop[2:]) < 1
    ):
        raise ApplicationError(
            f"{entry.path}: crop must be (x, y, width, height) in whole pixels with a width "
            f"and height of at least 1, got {entry.crop!r}"
        )


def _crop_problem(entry: ImageEntry, decoded: DecodedImage) -> str | None:
    if entry.crop is None:
        return None
    x, y, width, height = entry.crop
    if x < 0 or y < 0 or x + width > decoded.width or y + height > decoded.height:
        return (
            f"{entry.path}: the {width}x{height} crop at x={x}, y={y} lies outside the "
            f"{decoded.width}x{decoded.height} image; give a crop inside it"
        )
    return None


def _tiles(entry: ImageEntry, decoded: DecodedImage, tiling: Tiling) -> list[ImageEntry]:
    """``entry`` as one cropped entry per tile (``ValueError`` when the field cannot be tiled)."""
    positions = tiling.positions(
        width=decoded.width, height=decoded.height, field_path=entry.source_path
    )
    return [
        replace(
            entry,
            source_path=f"{entry.source_path}@{x},{y}",
            crop=(x, y, tiling.size, tiling.size),
            provenance={
                **entry.provenance,
                "tile": {
                    "x": x,
                    "y": y,
                    "size": tiling.size,
                    "mode": tiling.mode,
                    "field_width": decoded.width,
                    "field_height": decoded.height,
                    "field": entry.source_path,
                },
            },
        )
        for x, y in positions
    ]


class _DecodeOnce:
    """Decodes each path once; keeps the pixels only until the last entry using them is done."""

    def __init__(self, entries: list[ImageEntry], problems: list[str]) -> None:
        self._uses = Counter(entry.path for entry in entries)
        self._cache: dict[Path, DecodedImage | None] = {}
        self._problems = problems

    def take(self, path: Path) -> DecodedImage | None:
        """The decoded file, or ``None`` if it is unusable (its problem is listed once)."""
        if path not in self._cache:
            self._cache[path] = self._decode(path)
        decoded = self._cache[path]
        self._uses[path] -= 1
        if self._uses[path] == 0:
            del self._cache[path]
        return decoded

    def _decode(self, path: Path) -> DecodedImage | None:
        try:
            data = path.read_bytes()
            return decode_image(data, path=path, max_pixels=settings.IMAGE_MAX_PIXELS)
        except OSError as exc:
            self._problems.append(f"{path}: cannot read file: {exc.strerror or exc}")
        except ImageDecodeError as exc:
            self._problems.append(str(exc))
        return None


def images_add(
    *, image_set: ImageSet, entries: Iterable[ImageEntry], tiling: Tiling | None = None
) -> list[Image]:
    """Add images to ``image_set``; all or nothing.

    With ``tiling``, every entry's file is cut into tiles, each stored as its own
    image named ``"<source_path>@<x>,<y>"``. Idempotent per ``source_path``: an
    entry whose ``source_path`` is already in the set with the same original
    sha256 is skipped (so a retried job never registers the same generated image
    twice); the same path with different content is an error.
    """
    with import_staging() as staging, transaction.atomic():
        return _images_write(image_set=image_set, entries=entries, tiling=tiling, staging=staging)


def _images_write(
    *,
    image_set: ImageSet,
    entries: Iterable[ImageEntry],
    tiling: Tiling | None,
    staging: Staging,
) -> list[Image]:
    """:func:`images_add` inside the caller's staging and transaction."""
    entries = list(entries)
    for entry in entries:
        _validate_entry(entry)
    if tiling is not None and any(entry.crop is not None for entry in entries):
        raise ApplicationError("give either a tiling or crops on the entries, not both")
    existing = dict(image_set.images.values_list("source_path", "original_sha256"))
    problems: list[str] = []
    created: list[Image] = []
    seen: set[str] = set()
    decoder = _DecodeOnce(entries, problems)
    for entry in entries:
        decoded = decoder.take(entry.path)
        if decoded is None:
            continue
        pieces = [entry]
        if tiling is not None:
            try:
                pieces = _tiles(entry, decoded, tiling)
            except ValueError as exc:
                problems.append(f"{entry.path}: {exc}")
                continue
        for piece in pieces:
            image = _image_prepare(image_set, piece, decoded, existing, seen, problems)
            if image is None or problems:
                continue  # keep validating, stop writing
            _pixels_stage(image_set, image, piece, decoded, staging)
            created.append(image)
    if problems:
        raise ImportFailed(
            f"{len(problems)} file(s) could not be imported; nothing was written:\n  "
            + "\n  ".join(problems),
            extra={"problems": problems},
        )
    finals = staging.publish()
    for image in created:
        image.file.name = finals[image.file.name]
    Image.objects.bulk_create(created, batch_size=500)
    return created


def _image_prepare(
    image_set: ImageSet,
    entry: ImageEntry,
    decoded: DecodedImage,
    existing: dict[str, str],
    seen: set[str],
    problems: list[str],
) -> Image | None:
    """The unsaved row for ``entry``, or ``None`` when it is skipped or has a problem (listed)."""
    if entry.source_path in seen:
        problems.append(f"{entry.path}: duplicate name {entry.source_path!r} in this import")
        return None
    seen.add(entry.source_path)
    crop_problem = _crop_problem(entry, decoded)
    if crop_problem:
        problems.append(crop_problem)
        return None
    if entry.source_path in existing:
        if existing[entry.source_path] != decoded.source_sha256:
            problems.append(
                f"{entry.path}: {entry.source_path!r} is already in {image_set.name} with different content"
            )
        return None
    _, _, width, height = entry.crop or (0, 0, decoded.width, decoded.height)
    return Image(
        image_set=image_set,
        original_sha256=decoded.source_sha256,
        label=entry.label,
        split=entry.split,
        domain=entry.domain,
        patient_id=entry.patient_id,
        magnification=entry.magnification,
        subtype=entry.subtype,
        source_path=entry.source_path,
        width=width,
        height=height,
        source_image_id=entry.source_image_id,
        direction=entry.direction,
        checkpoint_sha256=entry.checkpoint_sha256,
        provenance={**_original_facts(decoded), **entry.provenance},
    )


def _original_facts(decoded: DecodedImage) -> dict:
    """What the provenance keeps about the original file: its format, and where it had more
    than one frame (only the first is imported) or an orientation (applied), those too."""
    facts: dict = {"original_format": decoded.source_format}
    if decoded.frame_count > 1:
        facts["original_frames"] = decoded.frame_count
    if decoded.orientation != 1:
        facts["original_orientation"] = decoded.orientation
    return facts


def _pixels_stage(
    image_set: ImageSet, image: Image, entry: ImageEntry, decoded: DecodedImage, staging: Staging
) -> None:
    """Stage the entry's pixels (its crop, if any) as PNG; set the row's sha256 and (staged) file."""
    pixels = decoded.pixels
    if entry.crop is not None:
        x, y, width, height = entry.crop
        pixels = np.ascontiguousarray(pixels[y : y + height, x : x + width])
    png = encode_png(pixels)
    image.sha256 = sha256_bytes(png)
    image.file.name = staging.stage(
        f"images/set-{image_set.pk}/{staging.import_id}/{image.sha256}.png", png
    )


def image_set_import(
    *,
    name: str,
    kind: str,
    source: str,
    entries: Iterable[ImageEntry],
    description: str = "",
    model_name: str = "",
    import_params: dict | None = None,
    tiling: Tiling | None = None,
    record_file_hashes: bool = False,
) -> ImageSet:
    """Create an image set and import its files in one transaction (all or nothing).

    With ``record_file_hashes``, ``import_params["files"]`` maps every original
    file's relative path to its sha256 (the same value each image keeps in
    ``original_sha256``), so the set documents exactly which files it came from.
    """
    entries = list(entries)
    if not entries:
        raise ApplicationError(f"image set {name!r}: no images to import")
    if ImageSet.objects.filter(name=name).exists():
        raise ApplicationError(f"an image set named {name!r} already exists; choose another --name")
    with import_staging() as staging, transaction.atomic():
        image_set = ImageSet.objects.create(
            name=name,
            kind=kind,
            source=source,
            description=description,
            model_name=model_name,
            import_params=import_params or {},
        )
        images = _images_write(image_set=image_set, entries=entries, tiling=tiling, staging=staging)
        if record_file_hashes:
            files = {image.original_path: image.original_sha256 for image in images}
            image_set.import_params = {
                **image_set.import_params,
                "files": dict(sorted(files.items())),
            }
            image_set.save(update_fields=["import_params"])
    return image_set
