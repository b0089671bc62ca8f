"""Your own digit images made to look like MNIST's: pure functions, arrays in and out.

MNIST's digits are light ink on a dark field, cropped to the ink, scaled so the longer side
is 20 pixels (aspect ratio kept, anti-aliased), and placed in a 28x28 field so that their
centre of mass is at its centre (LeCun et al.'s description of the dataset). This module
does the same to any grey image: a photo of a digit on paper, a drawing, a scan.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
from PIL import Image
from scipy import ndimage

SIDE = 28  # MNIST's field
BOX = 20  # the ink's longer side after scaling
CENTRE = 14.0  # where MNIST's centre of mass sits (mean over its training set: 13.99, 14.00)
BORDER = 0.05  # the outer fraction of each side that is taken to be paper, not ink
INK_FLOOR = 0.2  # after normalising, fainter than this is paper texture or shading
MIN_CONTRAST = 0.1  # ink at most this far from the paper: no digit to find
SPECK = 0.05  # a blob with less ink than this fraction of the largest blob's is dust

Ink = Literal["auto", "light", "dark"]


class NoInkError(ValueError):
    """The image holds nothing that stands out from its background."""


@dataclass(frozen=True)
class Digit:
    """One image as the model sees it, and how it was read."""

    image: np.ndarray  # (28, 28) float32 in [0, 1], light ink on dark
    dark_ink: bool  # the original had dark ink on a light background (it was inverted)


def border_level(gray: np.ndarray) -> float:
    """The background's brightness: the median of the image's outer frame."""
    rows, cols = gray.shape
    band_r, band_c = max(1, round(rows * BORDER)), max(1, round(cols * BORDER))
    frame = np.concatenate(
        [
            gray[:band_r].ravel(),
            gray[-band_r:].ravel(),
            gray[:, :band_c].ravel(),
            gray[:, -band_c:].ravel(),
        ]
    )
    return float(np.median(frame))


def has_dark_ink(gray: np.ndarray) -> bool:
    """Dark ink on light paper (a pen on paper), rather than light on dark (MNIST, a
    blackboard): the background, read at the border, is the brighter half."""
    return border_level(gray) > 0.5


def isolate_ink(gray: np.ndarray, dark_ink: bool) -> np.ndarray:
    """Light ink on black, from 0 (paper) to 1 (the strongest ink); paper texture and
    shading fainter than ``INK_FLOOR`` of the ink's contrast are set to 0."""
    ink = 1.0 - gray if dark_ink else gray
    paper = border_level(ink)
    contrast = float(ink.max()) - paper
    if contrast < MIN_CONTRAST:
        raise NoInkError(f"no ink stands out from the background (contrast {contrast:.2f})")
    level = np.clip((ink - paper) / contrast, 0.0, 1.0)
    return np.clip((level - INK_FLOOR) / (1.0 - INK_FLOOR), 0.0, 1.0)


def drop_specks(ink: np.ndarray) -> np.ndarray:
    """Remove blobs of ink (8-connected) with less than ``SPECK`` of the largest blob's
    ink: dust and paper grain in a photo, which would widen the crop."""
    labels, count = ndimage.label(ink > 0, structure=np.ones((3, 3)))
    if count <= 1:
        return ink
    mass = ndimage.sum(ink, labels, index=np.arange(1, count + 1))
    keep = np.concatenate([[False], mass >= SPECK * mass.max()])
    return np.where(keep[labels], ink, 0.0).astype(ink.dtype)


def crop_to_ink(ink: np.ndarray) -> np.ndarray:
    """The smallest rectangle holding every pixel of ink."""
    rows, cols = np.flatnonzero(ink.any(axis=1)), np.flatnonzero(ink.any(axis=0))
    return ink[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def fit_box(ink: np.ndarray, box: int = BOX) -> np.ndarray:
    """Scale so the longer side is ``box`` pixels, keeping the aspect ratio (anti-aliased),
    then stretch the levels so the strongest ink is 1 again: thin strokes of a large
    drawing average out to grey when shrunk."""
    rows, cols = ink.shape
    scale = box / max(rows, cols)
    size = (max(1, round(cols * scale)), max(1, round(rows * scale)))  # PIL: (width, height)
    resized = Image.fromarray(ink.astype(np.float32), mode="F").resize(
        size, Image.Resampling.LANCZOS
    )
    scaled = np.clip(np.asarray(resized, dtype=np.float32), 0.0, 1.0)
    peak = float(scaled.max())
    return scaled / peak if peak > 0 else scaled


def centre_by_mass(glyph: np.ndarray, side: int = SIDE, centre: float = CENTRE) -> np.ndarray:
    """Place ``glyph`` in a ``side`` x ``side`` field with its centre of mass at
    ``centre`` (whole-pixel shifts, kept inside the field)."""
    rows, cols = glyph.shape
    com_r, com_c = ndimage.center_of_mass(glyph)
    top = int(np.clip(round(centre - com_r), 0, side - rows))
    left = int(np.clip(round(centre - com_c), 0, side - cols))
    field = np.zeros((side, side), dtype=np.float32)
    field[top : top + rows, left : left + cols] = glyph
    return field


def to_mnist(gray: np.ndarray, ink: Ink = "auto") -> Digit:
    """A grey image (2-D, values in [0, 1], any size) as an MNIST digit.

    ``ink``: ``"auto"`` detects the polarity from the border, ``"dark"`` or ``"light"``
    forces it. Raises :class:`NoInkError` for a blank image.
    """
    gray = np.asarray(gray, dtype=np.float32)
    if gray.ndim != 2 or min(gray.shape) < 1:
        raise ValueError(f"expected a 2-D grey image, got shape {gray.shape}")
    dark_ink = has_dark_ink(gray) if ink == "auto" else ink == "dark"
    glyph = fit_box(crop_to_ink(drop_specks(isolate_ink(gray, dark_ink))))
    return Digit(image=centre_by_mass(glyph), dark_ink=dark_ink)
