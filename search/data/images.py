"""Reading images (PNG/BMP/JPG/TIFF) as uint8 arrays, with one-line errors."""

from __future__ import annotations

import contextlib
import os
import threading
import warnings
from pathlib import Path

import numpy as np

from search.errors import DataError

IMAGE_SUFFIXES = (".png", ".bmp", ".jpg", ".jpeg", ".tif", ".tiff", ".pgm", ".ppm")

# Largest image (width x height, from the file's header) that read_image decodes. A 64 MP
# RGB image already costs about 1.5 GiB as float64 during MATLAB resizing; a PNG a few
# hundred bytes long can declare far more (a decompression bomb). Override with the
# environment variable SR_MAX_IMAGE_PIXELS (a pixel count; 0 = no limit).
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
MAX_IMAGE_PIXELS_ENV = "SR_MAX_IMAGE_PIXELS"

# Pillow's own bomb check is a process-wide setting (Image.MAX_IMAGE_PIXELS); read_image
# replaces it by its own limit while it reads a file, under this lock.
_PIL_LIMIT_LOCK = threading.Lock()


def max_image_pixels() -> int | None:
    """The pixel limit of :func:`read_image`: ``$SR_MAX_IMAGE_PIXELS`` or the default; None = none."""
    text = os.environ.get(MAX_IMAGE_PIXELS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_IMAGE_PIXELS
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        value = float("nan")
    if not value >= 0 or value == float("inf"):
        raise DataError(f"expected a pixel count (e.g. 64000000, 0 = no limit), got {text!r}",
                        path=MAX_IMAGE_PIXELS_ENV)
    return int(value) or None


@contextlib.contextmanager
def _own_pixel_limit():
    """Pillow's bomb check off (under a lock), its warning silenced: the limit is ours.

    Pillow warns above ``Image.MAX_IMAGE_PIXELS`` (89 MP) and raises DecompressionBombError
    (not an OSError) above twice that inside ``Image.open``, before the size could be
    reported or $SR_MAX_IMAGE_PIXELS honoured.
    """
    from PIL import Image

    with _PIL_LIMIT_LOCK, warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = None
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


def _check_pixel_limit(size: tuple[int, int], path: Path, limit: int | None) -> None:
    width, height = size
    if limit is not None and width * height > limit:
        raise DataError(f"image is {width}x{height} ({width * height / 1e6:.1f} megapixels), over the "
                        f"limit of {limit} pixels (set {MAX_IMAGE_PIXELS_ENV} to raise it)", path=path)


def is_image_file(path: str | os.PathLike) -> bool:
    return Path(path).suffix.lower() in IMAGE_SUFFIXES


def read_image(path: str | os.PathLike) -> np.ndarray:
    """Read ``path`` as ``uint8``: ``H x W`` for gray images, ``H x W x 3`` for colour.

    Alpha is dropped, palettes are expanded, 16-bit images are scaled to 8 bits. A missing
    or undecodable file, or one whose header declares more than :func:`max_image_pixels`
    pixels (checked before anything is decoded), raises :class:`DataError` naming the file.
    """
    from PIL import Image, UnidentifiedImageError

    path = Path(path)
    if not path.is_file():
        raise DataError("image not found", path=path)
    limit = max_image_pixels()
    try:
        with _own_pixel_limit(), Image.open(path) as image:
            _check_pixel_limit(image.size, path, limit)  # header only: nothing decoded yet
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
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError, EOFError,
            Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image ({type(exc).__name__}: {exc})", path=path) from None
    except MemoryError:
        raise DataError("not enough memory to decode the image", path=path) from None
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
