"""What a rater's browser receives for a trial image: the same format and size for every image.

Every image, real or generated, is decoded from storage, centre-cropped to a
square (letterboxing would reveal the original aspect ratio, e.g. BreakHis
700x460 against a GAN's 256x256), resampled to the study's ``image_size`` and
re-encoded as an 8-bit RGB PNG without any metadata chunk. The response headers
are the same for every image except ``Content-Length`` (and the never-cache
``Expires`` date that every rater page gets).
"""

from __future__ import annotations

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from PIL import Image as PILImage

from ganlab.data.imageio import decode_image, encode_png

SERVED_CONTENT_TYPE = "image/png"
SERVED_HEADERS = {"Content-Disposition": "inline"}


def square_resized(pixels: np.ndarray, *, size: int) -> np.ndarray:
    """Centre-crop ``pixels`` (H x W x 3 uint8) to a square and resample it to ``size`` x ``size``."""
    height, width = pixels.shape[:2]
    side = min(height, width)
    top, left = (height - side) // 2, (width - side) // 2
    crop = PILImage.fromarray(pixels[top : top + side, left : left + side])
    if side != size:
        crop = crop.resize((size, size), PILImage.Resampling.LANCZOS)
    return np.asarray(crop)


def corrupted(pixels: np.ndarray, *, seed: int) -> np.ndarray:
    """A visibly damaged copy for attention checks: coarse blocks, a colour shift and heavy noise."""
    rng = np.random.default_rng(seed)
    size = pixels.shape[0]
    block = max(size // 12, 2)
    small = PILImage.fromarray(pixels).resize((size // block, size // block), PILImage.Resampling.BOX)
    blocky = np.asarray(small.resize((size, size), PILImage.Resampling.NEAREST)).astype(np.float64)
    shifted = blocky[:, :, [1, 2, 0]]  # rotate channels: H&E pink/purple turns green/blue
    noisy = shifted + rng.normal(0.0, 40.0, size=shifted.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def served_png(data: bytes, *, size: int, corrupt_seed: int | None = None) -> bytes:
    """The PNG a browser gets for stored image bytes ``data`` (corrupted when ``corrupt_seed`` is set)."""
    pixels = square_resized(decode_image(data).pixels, size=size)
    if corrupt_seed is not None:
        pixels = corrupted(pixels, seed=corrupt_seed)
    return encode_png(pixels)


def served_png_for(image, *, size: int, corrupt_seed: int | None = None) -> bytes:
    """:func:`served_png` of a catalogue image, rendered once and kept in storage.

    The output is a pure function of (stored image, size, corruption seed), so the
    bytes are stored under ``served/`` (a server-side name the browser never sees) and
    every later request reads them instead of decoding, resampling and re-encoding.
    """
    variant = f"-c{corrupt_seed}" if corrupt_seed is not None else ""
    name = f"served/{image.sha256}-{size}{variant}.png"
    if default_storage.exists(name):
        with default_storage.open(name, "rb") as fh:
            return fh.read()
    with image.file.open("rb") as stored:
        png = served_png(stored.read(), size=size, corrupt_seed=corrupt_seed)
    saved = default_storage.save(name, ContentFile(png))
    if saved != name:  # another request rendered the same bytes first
        default_storage.delete(saved)
    return png
