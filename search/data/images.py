"""Reading images (PNG/BMP/JPG/TIFF) as uint8 arrays, with one-line errors."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from search.errors import DataError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".ppm")


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` as ``uint8``: ``H x W`` for gray images, ``H x W x 3`` for colour.

    Alpha is dropped, palettes are expanded, 16-bit images are scaled to 8 bits. A missing
    or undecodable file raises :class:`DataError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError("image not found", path=path)
    try:
        with Image.open(path) as image:
            image.load()
            mode = image.mode
            if mode in ("I;16", "I;16B", "I;16L", "I"):
                array = np.asarray(image, dtype=np.float64)
                top = 65535.0 if array.max() > 255 else 255.0
                return np.clip(np.floor(array * 255.0 / top + 0.5), 0, 255).astype(np.uint8)
            if mode in ("1", "L", "LA"):
                image = image.convert("L")
            elif mode == "P":
                image = image.convert("RGBA" if "transparency" in image.info else "RGB").convert("RGB")
            elif mode != "RGB":
                image = image.convert("RGB")
            array = np.asarray(image, dtype=np.uint8).copy()
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise DataError(f"cannot read image ({type(exc).__name__}: {exc})", path=path) from None
    if array.ndim not in (2, 3) or array.size == 0:
        raise DataError(f"unsupported image shape {array.shape}", path=path)
    return array


def write_image(path: str | os.PathLike, image: np.ndarray) -> None:
    """Save a ``uint8`` (or [0, 255] float, rounded) gray or RGB array."""
    from PIL import Image

    array = np.asarray(image)
    if array.dtype != np.uint8:
        array = np.clip(np.floor(array.astype(np.float64) + 0.5), 0, 255).astype(np.uint8)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def mod_crop(image: np.ndarray, scale: int) -> np.ndarray:
    """Crop the bottom/right so both sides are multiples of ``scale`` (top-left kept)."""
    height, width = image.shape[:2]
    return image[: height - height % scale, : width - width % scale]


def is_gray(image: np.ndarray) -> bool:
    return image.ndim == 2
