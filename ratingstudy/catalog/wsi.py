"""Whole-slide images (SVS, NDPI, MRXS, SCN, pyramidal TIFF...) through OpenSlide: choose a
pyramid level, find the tissue, cut tiles that lie on tissue.

Tissue is found as in most WSI pipelines: a thumbnail of the whole slide (at most
:data:`THUMBNAIL_SIDE` pixels on its long side) is turned to grey and thresholded with
Otsu's method (tissue is darker than the bright glass background). A tile is kept when
the share of tissue pixels of the thumbnail under it is at least the threshold. When
more tiles qualify than asked for, the ones with the most tissue are kept (ties by
position), so the same slide and options always give the same tiles.

OpenSlide comes from PyPI (``openslide-python`` with the library in ``openslide-bin``),
so nothing needs a system package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import openslide
from PIL import Image as PILImage

from ratingstudy.errors import ApplicationError

THUMBNAIL_SIDE = 2048
#: ``--mpp`` picks the level nearest in resolution; one further off than this is refused.
MPP_TOLERANCE = 0.25


@dataclass(frozen=True)
class SlideTiling:
    """How to tile slides: a level (or a resolution in microns per pixel), the tile size at
    that level, the minimum tissue share of a kept tile, and how many tiles at most per slide."""

    tile: int
    tissue_threshold: float
    max_tiles: int
    level: int | None = None
    mpp: float | None = None

    def __post_init__(self) -> None:
        if (self.level is None) == (self.mpp is None):
            raise ApplicationError("give exactly one of --level L or --mpp M")
        if self.level is not None and self.level < 0:
            raise ApplicationError(f"--level must be 0 or more, got {self.level}")
        if self.mpp is not None and not self.mpp > 0:
            raise ApplicationError(f"--mpp must be a positive number of microns, got {self.mpp}")
        if self.tile < 16:
            raise ApplicationError(f"--tile must be at least 16 pixels, got {self.tile}")
        if not 0 < self.tissue_threshold <= 1:
            raise ApplicationError(
                f"--tissue-threshold is a share of the tile: above 0 and at most 1, got "
                f"{self.tissue_threshold}"
            )
        if self.max_tiles < 1:
            raise ApplicationError(f"--max-tiles must be at least 1, got {self.max_tiles}")


@dataclass(frozen=True)
class SlideTile:
    """A tile's top-left corner at the chosen level (``x``, ``y``) and at level 0 (``x0``, ``y0``)."""

    x: int
    y: int
    x0: int
    y0: int
    tissue_fraction: float


@dataclass(frozen=True)
class SlideLevel:
    index: int
    downsample: float
    mpp: float | None  # microns per pixel at this level, when the slide records it


def slide_open(path: Path) -> openslide.OpenSlide:
    """Open a slide, or raise ApplicationError saying that ``path`` is not one OpenSlide reads."""
    if not path.is_file():
        raise ApplicationError(f"{path}: no such file")
    try:
        return openslide.OpenSlide(str(path))
    except openslide.OpenSlideError as exc:
        raise ApplicationError(
            f"{path}: not a whole-slide image OpenSlide can read ({exc}); give an SVS, NDPI, "
            "MRXS, SCN or tiled pyramidal TIFF slide, or use import_folder for plain images"
        ) from None


def base_mpp(slide: openslide.OpenSlide) -> float | None:
    """Microns per pixel at level 0 (mean of x and y), or None when the slide does not say."""
    values = []
    for key in (openslide.PROPERTY_NAME_MPP_X, openslide.PROPERTY_NAME_MPP_Y):
        try:
            values.append(float(slide.properties[key]))
        except (KeyError, ValueError):
            return None
    return sum(values) / 2 if all(v > 0 for v in values) else None


def level_choose(slide: openslide.OpenSlide, *, tiling: SlideTiling, path: Path) -> SlideLevel:
    """The level ``tiling`` asks for: by index, or the one whose resolution is nearest ``mpp``."""
    mpp0 = base_mpp(slide)

    def level(index: int) -> SlideLevel:
        downsample = float(slide.level_downsamples[index])
        return SlideLevel(index, downsample, mpp0 * downsample if mpp0 else None)

    if tiling.level is not None:
        if tiling.level >= slide.level_count:
            raise ApplicationError(
                f"{path}: has levels 0 to {slide.level_count - 1}, not {tiling.level}"
            )
        return level(tiling.level)
    if mpp0 is None:
        raise ApplicationError(
            f"{path}: the slide does not record its resolution (openslide.mpp-x/-y); "
            "choose a pyramid level with --level instead of --mpp"
        )
    nearest = min(
        (level(i) for i in range(slide.level_count)),
        key=lambda lv: abs(math.log(lv.mpp / tiling.mpp)),
    )
    if abs(math.log(nearest.mpp / tiling.mpp)) > math.log(1 + MPP_TOLERANCE):
        available = ", ".join(f"{level(i).mpp:.3g}" for i in range(slide.level_count))
        raise ApplicationError(
            f"{path}: no level is near {tiling.mpp} µm/px (levels: {available} µm/px); "
            "choose one of those with --mpp, or a level with --level"
        )
    return nearest


def tissue_mask(slide: openslide.OpenSlide) -> tuple[np.ndarray, float, float]:
    """Tissue pixels of a whole-slide thumbnail (Otsu on grey), and the thumbnail's scale
    (thumbnail pixels per level-0 pixel) in x and y."""
    from skimage.color import rgb2gray
    from skimage.filters import threshold_otsu

    thumbnail = slide.get_thumbnail((THUMBNAIL_SIDE, THUMBNAIL_SIDE)).convert("RGB")
    grey = rgb2gray(np.asarray(thumbnail))
    width0, height0 = slide.dimensions
    scale_x, scale_y = thumbnail.width / width0, thumbnail.height / height0
    if float(grey.max() - grey.min()) < 1e-6:  # one colour: nothing to separate
        return np.zeros(grey.shape, dtype=bool), scale_x, scale_y
    return grey < threshold_otsu(grey), scale_x, scale_y


def tissue_tiles(
    slide: openslide.OpenSlide, *, level: SlideLevel, tiling: SlideTiling
) -> list[SlideTile]:
    """Whole tiles of the level grid with at least ``tissue_threshold`` tissue, at most
    ``max_tiles`` (the most tissue first), in reading order."""
    mask, scale_x, scale_y = tissue_mask(slide)
    width, height = slide.level_dimensions[level.index]
    span0 = tiling.tile * level.downsample  # a tile's side in level-0 pixels
    found = []
    for y in range(0, height - tiling.tile + 1, tiling.tile):
        for x in range(0, width - tiling.tile + 1, tiling.tile):
            x0, y0 = round(x * level.downsample), round(y * level.downsample)
            c0, r0 = int(x0 * scale_x), int(y0 * scale_y)
            c1 = max(c0 + 1, math.ceil((x0 + span0) * scale_x))
            r1 = max(r0 + 1, math.ceil((y0 + span0) * scale_y))
            window = mask[r0:r1, c0:c1]
            fraction = float(window.mean()) if window.size else 0.0
            if fraction >= tiling.tissue_threshold:
                found.append(SlideTile(x, y, x0, y0, round(fraction, 4)))
    found.sort(key=lambda t: (-t.tissue_fraction, t.y, t.x))
    return sorted(found[: tiling.max_tiles], key=lambda t: (t.y, t.x))


def tile_read(slide: openslide.OpenSlide, *, level: SlideLevel, tile: SlideTile, size: int) -> PILImage.Image:
    """The tile's pixels as RGB; transparent parts (outside the scanned area) become white."""
    region = slide.read_region((tile.x0, tile.y0), level.index, (size, size))
    white = PILImage.new("RGBA", region.size, (255, 255, 255, 255))
    return PILImage.alpha_composite(white, region).convert("RGB")
