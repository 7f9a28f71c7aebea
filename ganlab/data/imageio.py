"""Torch-free image decoding and normalisation to 8-bit RGB PNG.

Every image that enters the lab (BreakHis import, any folder, generated images)
goes through :func:`load_rgb` so that real and generated images end up in the
same representation: 8-bit RGB, no metadata. High-bit-depth and grayscale input
is scaled by the full range of its data type (a 16-bit value ``v`` becomes
``round(v / 257)``), never clipped, so a 16-bit slide is not turned black.

Before any pixel is decoded, the frame's true width x height is checked against
the pixel limit, whatever its layout (TIFF samples contiguous ``H x W x S`` or
planar ``S x H x W``). A file holding several frames (multi-page TIFF, animated
PNG, multi-picture JPEG) contributes its first one, and :class:`DecodedImage`
says how many there were. The orientation stored with the image (the EXIF
Orientation of a JPEG or PNG, the Orientation tag of a TIFF) is applied first, so
the pixels are upright as a viewer shows them and no orientation metadata is needed.
"""

from __future__ import annotations

import hashlib
import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

#: Default ceiling on width x height; larger files are rejected before decoding
#: (decompression bombs). BreakHis tiles are 700x460 = 322,000 pixels.
DEFAULT_MAX_PIXELS = 50_000_000

SUPPORTED_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff"})


class ImageDecodeError(ValueError):
    """An input file is not a usable image; the message names the file and the reason."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


@dataclass(frozen=True)
class DecodedImage:
    """A decoded image and the facts an importer records about its source file."""

    pixels: np.ndarray  # uint8, H x W x 3, upright (orientation applied)
    source_sha256: str
    source_format: str
    source_mode: str
    # Frames (TIFF pages, PNG/JPEG frames) in the file; only the first one is decoded.
    frame_count: int = 1
    # The EXIF/TIFF orientation (1..8) applied to the pixels; 1 means stored upright.
    orientation: int = 1

    @property
    def height(self) -> int:
        return int(self.pixels.shape[0])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[1])


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _to_uint8(array: np.ndarray, path: Path | str) -> np.ndarray:
    """Scale an integer or float array to uint8 by the full range of its dtype."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if np.issubdtype(array.dtype, np.unsignedinteger):
        maximum = np.iinfo(array.dtype).max
        return np.rint(array.astype(np.float64) * (255.0 / maximum)).astype(np.uint8)
    if np.issubdtype(array.dtype, np.signedinteger):
        # Pillow decodes 16-bit grayscale PNG into int32 mode "I" with values in 0..65535.
        if array.min() < 0:
            raise ImageDecodeError(path, "signed pixel values below zero are not supported")
        maximum = 65535 if array.max() > 255 else 255
        return np.rint(array.astype(np.float64) * (255.0 / maximum)).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        if not np.isfinite(array).all():
            raise ImageDecodeError(path, "floating-point image contains NaN or infinity")
        lo, hi = float(array.min()), float(array.max())
        if lo < 0.0 or hi > 1.0:
            raise ImageDecodeError(
                path, f"floating-point pixel values must lie in [0, 1], found [{lo:g}, {hi:g}]"
            )
        return np.rint(array * 255.0).astype(np.uint8)
    raise ImageDecodeError(path, f"unsupported pixel type {array.dtype}")


def _to_rgb(array: np.ndarray, path: Path | str) -> np.ndarray:
    if array.ndim == 2:
        return np.repeat(array[:, :, None], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (1, 2):  # gray, gray+alpha
        return np.repeat(array[:, :, :1], 3, axis=2)
    if array.ndim == 3 and array.shape[2] in (3, 4):  # RGB, RGBA (alpha dropped)
        return array[:, :, :3]
    raise ImageDecodeError(path, f"unsupported image shape {array.shape}")


#: TIFF/EXIF Orientation value -> the array transposition that shows the image upright:
#: the same as :func:`PIL.ImageOps.exif_transpose` (6 = rotate 90 degrees clockwise).
_ORIENTATIONS = {
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.swapaxes(0, 1),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].swapaxes(0, 1),
    8: lambda a: np.rot90(a, 1),
}


def _orientation(value: object) -> int:
    """An Orientation tag's value, 1 (upright) when absent or outside 1..8 (Pillow ignores those)."""
    return value if isinstance(value, int) and value in _ORIENTATIONS else 1


#: How each single-frame TIFF layout (tifffile's ``TiffPage.axes``) becomes ``H x W [x S]``.
_TIFF_LAYOUTS = {
    "YX": lambda a: a,  # one sample: gray
    "YXS": lambda a: a,  # contiguous samples (PlanarConfiguration 1)
    "SYX": lambda a: np.moveaxis(a, 0, -1),  # planar samples (PlanarConfiguration 2)
}


def _decode_tiff(
    data: bytes, path: Path | str, max_pixels: int
) -> tuple[np.ndarray, str, int, int]:
    """The first page of a TIFF as ``H x W [x S]``, with its mode, page count and orientation.

    The limit is checked on the page's ImageWidth x ImageLength, read from its tags
    before any pixel is decoded, so the sample layout cannot hide a large image.
    """
    import tifffile  # ships with scikit-image; reads 16-bit and multi-sample TIFFs exactly

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tif:
            page_count = len(tif.pages)
            page = tif.pages[0]
            width, height = int(page.imagewidth), int(page.imagelength)
            if width * height > max_pixels:
                raise ImageDecodeError(
                    path, f"{width}x{height} pixels exceeds the limit of {max_pixels} pixels"
                )
            if page.imagedepth > 1:
                raise ImageDecodeError(
                    path,
                    f"volumetric TIFF ({page.imagedepth} slices per page) is not supported; "
                    "export one 2-D image per file",
                )
            if page.samplesperpixel > 4:
                raise ImageDecodeError(
                    path,
                    f"{page.samplesperpixel} samples per pixel are not supported; "
                    "use gray, gray+alpha, RGB or RGBA",
                )
            layout = _TIFF_LAYOUTS.get(page.axes)
            if layout is None:
                raise ImageDecodeError(path, f"unsupported TIFF layout {page.axes} {page.shape}")
            orientation = _orientation(page.tags.valueof(274))  # 274: Orientation
            array = layout(page.asarray())
            if orientation != 1:
                array = _ORIENTATIONS[orientation](array)
    except ImageDecodeError:
        raise
    except Exception as exc:  # tifffile raises many types for corrupt files
        raise ImageDecodeError(path, f"cannot read TIFF: {exc}") from exc
    return array, f"tiff-{array.dtype}", page_count, orientation


def decode_image(
    data: bytes, *, path: Path | str = "<bytes>", max_pixels: int = DEFAULT_MAX_PIXELS
) -> DecodedImage:
    """Decode PNG, JPEG or TIFF bytes into upright 8-bit RGB (first frame only).

    Raises :class:`ImageDecodeError` naming ``path`` for empty, truncated or
    unreadable files, files that are not images, and images over ``max_pixels``
    (checked on the frame's width x height before its pixels are decoded).
    """
    if not data:
        raise ImageDecodeError(path, "file is empty (zero bytes)")
    digest = sha256_bytes(data)
    if data[:4] in (b"II*\x00", b"MM\x00*"):
        array, mode, frame_count, orientation = _decode_tiff(data, path, max_pixels)
        pixels = _to_rgb(_to_uint8(array, path), path)
        return DecodedImage(
            np.ascontiguousarray(pixels), digest, "TIFF", mode, frame_count, orientation
        )
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.width * image.height > max_pixels:
                raise ImageDecodeError(
                    path,
                    f"{image.width}x{image.height} pixels exceeds the limit of {max_pixels} pixels",
                )
            fmt, mode = image.format or "unknown", image.mode
            if fmt not in ("PNG", "JPEG", "MPO"):
                raise ImageDecodeError(path, f"unsupported format {fmt}; use PNG, JPEG or TIFF")
            image.load()
            frame_count = getattr(image, "n_frames", 1)
            orientation = _orientation(image.getexif().get(ExifTags.Base.Orientation))
            if orientation != 1:  # first: everything after (crops, tiles) sees it upright
                image = ImageOps.exif_transpose(image)
            if mode == "P":
                image = image.convert("RGBA")
            elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
                image = image.convert("RGB")
            array = np.asarray(image)
    except ImageDecodeError:
        raise
    except UnidentifiedImageError as exc:
        raise ImageDecodeError(path, "not an image (format not recognised)") from exc
    except (OSError, SyntaxError, ValueError) as exc:
        raise ImageDecodeError(path, f"cannot decode image (truncated or corrupt): {exc}") from exc
    except Image.DecompressionBombError as exc:
        raise ImageDecodeError(path, f"image too large: {exc}") from exc
    pixels = _to_rgb(_to_uint8(array, path), path)
    return DecodedImage(np.ascontiguousarray(pixels), digest, fmt, mode, frame_count, orientation)


def load_rgb(path: Path | str, *, max_pixels: int = DEFAULT_MAX_PIXELS) -> np.ndarray:
    """Read an image file as a uint8 ``H x W x 3`` array (see :func:`decode_image`)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ImageDecodeError(path, f"cannot read file: {exc.strerror or exc}") from exc
    return decode_image(data, path=path, max_pixels=max_pixels).pixels


def encode_png(pixels: np.ndarray) -> bytes:
    """Encode a uint8 ``H x W x 3`` array as a PNG with no metadata (same bytes for same pixels)."""
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"expected uint8 HxWx3 pixels, got {pixels.dtype} {pixels.shape}")
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG", compress_level=6)
    return buffer.getvalue()


def resize(pixels: np.ndarray, size: int) -> np.ndarray:
    """Bicubic resize of uint8 (H, W, 3) to ``size x size`` (the reference's
    ``transforms.Resize([s, s], BICUBIC)``): how training and generation see every image."""
    if pixels.shape[0] == size and pixels.shape[1] == size:
        return pixels
    return np.asarray(Image.fromarray(pixels).resize((size, size), Image.Resampling.BICUBIC))
