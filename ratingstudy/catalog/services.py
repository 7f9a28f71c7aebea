"""Writes to the image catalogue. Every import is all-or-nothing.

Files are decoded and validated one by one and written through the default
storage; rows are created in one transaction. If any file is bad, the
transaction is rolled back *and* every file already written is deleted, and the
error lists every bad file with its reason.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from django.conf import settings
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction

from ganlab.data.imageio import ImageDecodeError, decode_image, encode_png, sha256_bytes
from ratingstudy.catalog.models import Image, ImageSet
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


def images_add(*, image_set: ImageSet, entries: Iterable[ImageEntry]) -> list[Image]:
    """Add images to ``image_set``; all or nothing.

    Idempotent per ``source_path``: an entry whose ``source_path`` is already in
    the set with the same original sha256 is skipped (so a retried job never
    registers the same generated image twice); the same path with different
    content is an error.
    """
    entries = list(entries)
    existing = dict(image_set.images.values_list("source_path", "original_sha256"))
    written: list[str] = []
    problems: list[str] = []
    created: list[Image] = []
    seen: set[str] = set()
    try:
        with transaction.atomic():
            for entry in entries:
                _validate_entry(entry)
                if entry.source_path in seen:
                    problems.append(
                        f"{entry.path}: duplicate name {entry.source_path!r} in this import"
                    )
                    continue
                seen.add(entry.source_path)
                try:
                    data = entry.path.read_bytes()
                    decoded = decode_image(
                        data, path=entry.path, max_pixels=settings.IMAGE_MAX_PIXELS
                    )
                except OSError as exc:
                    problems.append(f"{entry.path}: cannot read file: {exc.strerror or exc}")
                    continue
                except ImageDecodeError as exc:
                    problems.append(str(exc))
                    continue
                if entry.source_path in existing:
                    if existing[entry.source_path] != decoded.source_sha256:
                        problems.append(
                            f"{entry.path}: {entry.source_path!r} is already in {image_set.name} with different content"
                        )
                    continue
                if problems:
                    continue  # keep validating, stop writing
                png = encode_png(decoded.pixels)
                digest = sha256_bytes(png)
                name = default_storage.save(
                    f"images/set-{image_set.pk}/{digest}.png", ContentFile(png)
                )
                written.append(name)
                image = Image(
                    image_set=image_set,
                    sha256=digest,
                    original_sha256=decoded.source_sha256,
                    label=entry.label,
                    split=entry.split,
                    domain=entry.domain,
                    patient_id=entry.patient_id,
                    magnification=entry.magnification,
                    subtype=entry.subtype,
                    source_path=entry.source_path,
                    width=decoded.width,
                    height=decoded.height,
                    source_image_id=entry.source_image_id,
                    direction=entry.direction,
                    checkpoint_sha256=entry.checkpoint_sha256,
                )
                image.file.name = name
                created.append(image)
            if problems:
                raise ImportFailed(
                    f"{len(problems)} file(s) could not be imported; nothing was written:\n  "
                    + "\n  ".join(problems),
                    extra={"problems": problems},
                )
            Image.objects.bulk_create(created, batch_size=500)
    except BaseException:
        for name in written:
            default_storage.delete(name)
        raise
    return created


def image_set_import(
    *,
    name: str,
    kind: str,
    source: str,
    entries: Iterable[ImageEntry],
    description: str = "",
    model_name: str = "",
    import_params: dict | None = None,
) -> ImageSet:
    """Create an image set and import its files in one transaction (all or nothing)."""
    entries = list(entries)
    if not entries:
        raise ApplicationError(f"image set {name!r}: no images to import")
    if ImageSet.objects.filter(name=name).exists():
        raise ApplicationError(f"an image set named {name!r} already exists; choose another --name")
    with transaction.atomic():
        image_set = ImageSet.objects.create(
            name=name,
            kind=kind,
            source=source,
            description=description,
            model_name=model_name,
            import_params=import_params or {},
        )
        images_add(image_set=image_set, entries=entries)
    return image_set
