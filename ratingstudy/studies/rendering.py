"""What a rater's browser receives for a trial image: the same geometry, encoding and length for every image.

A study's *presentation* (:class:`Presentation`) says how every image is put on a
canvas of ``width`` x ``height`` pixels:

* ``fit``: scaled to fit and letterboxed with a neutral grey pad, so the whole field is kept;
* ``crop``: scaled to cover and centre-cropped;
* ``native``: 1:1 pixels, centred (centre-cropped where larger than the canvas).

Optionally every image then goes through one JPEG round trip at the study's
quality, so that compression artefacts carried by one group only (e.g. GAN output
saved as JPEG before import) are given to both. The result is encoded by
:func:`encode_fixed_png`: an 8-bit RGB PNG whose pixel data is stored, not
compressed, so its byte length depends only on the canvas size. Every image a
study serves, the masks and the per-trial check variants included, therefore has
the same length, whatever its content; compression can no longer leak how
"compressible" (smooth, noisy, generated) a picture is.

Renders are made ahead of any request (``services.study_render`` when a study
opens, ``services.session_start`` for the per-trial check variants), so the time
to answer an image request does not depend on the image either.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import asdict, dataclass

import numpy as np
from PIL import Image as PILImage

from ganlab.data.imageio import decode_image

SERVED_CONTENT_TYPE = "image/png"
SERVED_HEADERS = {"Content-Disposition": "inline", "X-Content-Type-Options": "nosniff"}
#: The letterbox pad: mid grey, neither tissue-coloured nor the white of an empty slide.
PAD_GREY = 128
#: Bump when the rendering changes, so that old renders are never served for a new presentation.
RENDER_VERSION = 2
#: Two images whose scale factors differ more than this are refused: resampling would differ visibly.
MAX_SCALE_RATIO = 1.25
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


@dataclass(frozen=True)
class Presentation:
    """How a study puts images on its canvas (see the module docstring)."""

    width: int
    height: int
    fit: str = "fit"
    jpeg_quality: int | None = None

    @property
    def key(self) -> str:
        """A name for this presentation: renders made under the same key are interchangeable."""
        payload = json.dumps({**asdict(self), "version": RENDER_VERSION}, sort_keys=True)
        return hashlib.sha256(payload.encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Geometry:
    """Where an image of a given size lands on the canvas, and at what scale."""

    source_box: tuple[int, int, int, int]  # x, y, width, height taken from the source image
    content_box: tuple[int, int, int, int]  # x, y, width, height it covers on the canvas
    scale: float  # canvas pixels per source pixel


def geometry(*, width: int, height: int, presentation: Presentation) -> Geometry:
    """The placement of a ``width`` x ``height`` image under ``presentation``."""
    canvas_w, canvas_h = presentation.width, presentation.height
    if presentation.fit == "fit":
        scale = min(canvas_w / width, canvas_h / height)
        content_w, content_h = min(canvas_w, round(width * scale)), min(canvas_h, round(height * scale))
        return Geometry(
            (0, 0, width, height),
            ((canvas_w - content_w) // 2, (canvas_h - content_h) // 2, content_w, content_h),
            scale,
        )
    if presentation.fit == "crop":
        scale = max(canvas_w / width, canvas_h / height)
        source_w, source_h = min(width, round(canvas_w / scale)), min(height, round(canvas_h / scale))
        return Geometry(
            ((width - source_w) // 2, (height - source_h) // 2, source_w, source_h),
            (0, 0, canvas_w, canvas_h),
            scale,
        )
    if presentation.fit == "native":
        source_w, source_h = min(width, canvas_w), min(height, canvas_h)
        return Geometry(
            ((width - source_w) // 2, (height - source_h) // 2, source_w, source_h),
            ((canvas_w - source_w) // 2, (canvas_h - source_h) // 2, source_w, source_h),
            1.0,
        )
    raise ValueError(f"unknown fit {presentation.fit!r}; use fit, crop or native")


def geometry_problems(
    *, sizes: dict[str, set[tuple[int, int]]], presentation: Presentation
) -> list[str]:
    """Why the geometry itself would tell the groups apart (empty when it would not).

    ``sizes`` maps a group ("real", "generated", "practice") to the image sizes it has.
    Every image must land on the same part of the canvas (else the pad is a cue), and
    the scale factors may differ by at most :data:`MAX_SCALE_RATIO` (else resampling
    makes one group visibly sharper or softer).
    """
    placed = {
        group: {size: geometry(width=size[0], height=size[1], presentation=presentation) for size in group_sizes}
        for group, group_sizes in sizes.items()
    }
    everything = [(group, size, geo) for group, found in placed.items() for size, geo in found.items()]
    if not everything:
        return []
    tile_hint = (
        "Cut the larger images into tiles of the other group's size at import "
        "(`manage.py import_folder PATH --tile SIZE`, grid or random crops, recorded in the provenance), "
        "or choose a canvas and fit under which both groups fill the same area."
    )
    problems = []
    canvas = f"{presentation.width}x{presentation.height}"
    boxes = {geo.content_box for _, _, geo in everything}
    if len(boxes) > 1:
        described = "; ".join(
            f"{group} {w}x{h} covers {geo.content_box[2]}x{geo.content_box[3]} at ({geo.content_box[0]}, {geo.content_box[1]})"
            for group, (w, h), geo in sorted(everything, key=lambda e: (e[0], e[1]))[:6]
        )
        problems.append(
            f"images would fill different parts of the {canvas} canvas under fit={presentation.fit!r}, "
            f"so the padding would tell them apart ({described}). {tile_hint}"
        )
    scales = [geo.scale for _, _, geo in everything]
    if max(scales) / min(scales) > MAX_SCALE_RATIO:
        low = min(everything, key=lambda e: e[2].scale)
        high = max(everything, key=lambda e: e[2].scale)
        problems.append(
            f"images would be resampled by very different factors on the {canvas} canvas ({low[0]} {low[1][0]}x{low[1][1]} "
            f"x{low[2].scale:.2f}, {high[0]} {high[1][0]}x{high[1][1]} x{high[2].scale:.2f}), so sharpness would tell "
            f"them apart. {tile_hint}"
        )
    return problems


def place(pixels: np.ndarray, *, presentation: Presentation) -> np.ndarray:
    """``pixels`` (H x W x 3 uint8) on the presentation's canvas."""
    height, width = pixels.shape[:2]
    geo = geometry(width=width, height=height, presentation=presentation)
    sx, sy, sw, sh = geo.source_box
    cx, cy, cw, ch = geo.content_box
    source = PILImage.fromarray(np.ascontiguousarray(pixels[sy : sy + sh, sx : sx + sw]))
    if (sw, sh) != (cw, ch):
        source = source.resize((cw, ch), PILImage.Resampling.LANCZOS)
    canvas = np.full((presentation.height, presentation.width, 3), PAD_GREY, dtype=np.uint8)
    canvas[cy : cy + ch, cx : cx + cw] = np.asarray(source)
    if presentation.jpeg_quality is not None:
        buffer = io.BytesIO()
        PILImage.fromarray(canvas).save(buffer, format="JPEG", quality=presentation.jpeg_quality)
        canvas = np.asarray(PILImage.open(io.BytesIO(buffer.getvalue())).convert("RGB"))
    return canvas


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def encode_fixed_png(pixels: np.ndarray) -> bytes:
    """An 8-bit RGB PNG (IHDR, one IDAT, IEND; no metadata) whose length depends only on the size.

    The rows are unfiltered and the deflate stream uses stored blocks (zlib level 0),
    so the file is ``3 * W * H`` pixel bytes plus a fixed overhead per row and block.
    """
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
    height, width = pixels.shape[:2]
    rows = np.zeros((height, 1 + 3 * width), dtype=np.uint8)  # filter byte 0 (None) per row
    rows[:, 1:] = np.ascontiguousarray(pixels).reshape(height, 3 * width)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        PNG_SIGNATURE
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(rows.tobytes(), 0))
        + _chunk(b"IEND", b"")
    )


def decode_served(data: bytes) -> np.ndarray:
    """The pixels of a served PNG (H x W x 3 uint8)."""
    return decode_image(data).pixels


def render(data: bytes, *, presentation: Presentation) -> bytes:
    """The served PNG for stored image bytes ``data``."""
    return encode_fixed_png(place(decode_image(data).pixels, presentation=presentation))


def corrupted(pixels: np.ndarray, *, seed: int) -> np.ndarray:
    """A visibly damaged copy for attention checks: coarse blocks, a colour shift and heavy noise."""
    rng = np.random.default_rng(seed)
    height, width = pixels.shape[:2]
    block = max(min(height, width) // 12, 2)
    small = PILImage.fromarray(pixels).resize(
        (max(width // block, 1), max(height // block, 1)), PILImage.Resampling.BOX
    )
    blocky = np.asarray(small.resize((width, height), PILImage.Resampling.NEAREST)).astype(np.float64)
    shifted = blocky[:, :, [1, 2, 0]]  # rotate channels: H&E pink/purple turns green/blue
    noisy = shifted + rng.normal(0.0, 40.0, size=shifted.shape)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def variant(pixels: np.ndarray, *, kind: str, seed: int) -> np.ndarray:
    """A trial's variant of a render: ``corrupted`` for attention checks, a mirror or half turn for repeats.

    A repeat shows the same tissue mirrored or turned (histology has no canonical
    orientation), so its bytes differ from the original's while the picture to judge does not.
    """
    if kind == "corrupted":
        return corrupted(pixels, seed=seed)
    if kind == "flip_h":
        return np.ascontiguousarray(pixels[:, ::-1])
    if kind == "flip_v":
        return np.ascontiguousarray(pixels[::-1])
    if kind == "rot180":
        return np.ascontiguousarray(pixels[::-1, ::-1])
    raise ValueError(f"unknown variant {kind!r}")


def noise_mask(*, presentation: Presentation, seed: int) -> bytes:
    """The backward mask served instead of an image once its viewing window is over: coloured noise."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(0, 256, size=(max(presentation.height // 8, 1), max(presentation.width // 8, 1), 3), dtype=np.uint8)
    pixels = np.asarray(
        PILImage.fromarray(coarse).resize((presentation.width, presentation.height), PILImage.Resampling.NEAREST)
    )
    return encode_fixed_png(np.ascontiguousarray(pixels))
