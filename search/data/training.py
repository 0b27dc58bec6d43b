"""Random aligned HR/LR training patches (with flips and 90-degree rotations).

A :class:`PatchSampler` loads every HR image of one or more training folders once, converts
it to the model's colour space (gray or RGB), mod-crops it to the scale and makes the LR
image of the *whole* image with MATLAB bicubic (:func:`search.data.imresize`). Patches are
then aligned crops of the cached pair: LR window ``[y, y + p)`` and HR window
``[s*y, s*(y + p))``. Downscaling whole images once is much faster than resizing every patch
and avoids border effects inside patches; away from its border (2 LR pixels, the reach of
the bicubic kernel) an LR patch equals ``imresize`` of its HR patch.

Colour: RGB models get RGB ``uint8`` HR and MATLAB ``imresize`` of the ``uint8`` image (rounded
after each 1-D pass, as MATLAB does: the DIV2K ``LR_bicubic`` recipe). Gray models get the
gray channel, rounding and LR recipe of their evaluation protocol (``gray_recipe``, a
:class:`search.data.protocols.Protocol`), e.g. for the eSR protocol the float gray
``0.299*B + 0.587*G + 0.114*R`` and an unrounded, unclipped bicubic LR.

Values are divided by 255 (model range [0, 1]). Sampling uses only the sampler's own
``numpy`` generator, so the same seed gives the same patches in the same order.
"""

from __future__ import annotations

import hashlib
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from search.data.datasets import find_test_set, load_test_set
from search.data.images import mod_crop, read_image
from search.data.imresize import imresize
from search.errors import DataError
from search.paths import data_roots

# Where training sets live under a data root, besides the root itself.
_TRAIN_SUBFOLDERS = ("", "train", "training", "trainsets")
# LR pixels at a patch border that depend on HR pixels outside the patch (bicubic reach).
BICUBIC_REACH_LR = 2


def _round(values: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(values + 0.5), 0, 255)


def hr_lr_pair(image: np.ndarray, scale: int, color: str = "rgb",
               gray_recipe=None) -> tuple[np.ndarray, np.ndarray]:
    """``(hr, lr)`` as ``C x H x W`` float32 in [0, 1] (LR may overshoot slightly) for one image.

    ``color="rgb"``: LR = MATLAB imresize of the uint8 RGB image (rounded after each pass,
    as MATLAB). ``color="gray"``: ``gray_recipe`` (an evaluation protocol, see
    :mod:`search.data.protocols`) supplies ``crop_hr``, ``gray_of``, ``round_gray_hr`` and
    ``round_lr``, so training data is made exactly like the protocol's test inputs.
    """
    if color == "rgb":
        image = mod_crop(image, scale)
        hr = image if image.ndim == 3 else np.repeat(image[..., None], 3, axis=2)
        hr = hr.astype(np.uint8)
        lr = imresize(hr, 1.0 / scale)  # uint8 in -> rounded like MATLAB, float64 out
        hr_chw = hr.astype(np.float32).transpose(2, 0, 1) / 255.0
        lr_chw = lr.astype(np.float32).transpose(2, 0, 1) / 255.0
    elif color == "gray":
        if gray_recipe is None:
            raise ValueError("gray training data needs a gray_recipe (an evaluation protocol)")
        image = gray_recipe.crop_hr(image, scale)
        gray = gray_recipe.gray_of(image)
        if gray_recipe.round_gray_hr:
            gray = _round(gray)
        lr = imresize(gray, 1.0 / scale)  # float in -> float out
        if gray_recipe.round_lr:
            lr = _round(lr)
        hr_chw = (gray / 255.0).astype(np.float32)[None]
        lr_chw = (lr / 255.0).astype(np.float32)[None]
    else:
        raise ValueError(f"color must be 'rgb' or 'gray', got {color!r}")
    return np.ascontiguousarray(hr_chw), np.ascontiguousarray(lr_chw)


def find_training_set(name_or_path: str | os.PathLike, data_root: str | os.PathLike | None = None):
    """A training folder (``T91``, ``BSD200``, a path; ``<set>/HR`` layouts too) as a TestSet."""
    text = str(name_or_path)
    path = Path(text).expanduser()
    if path.is_dir():
        return load_test_set(path)
    if os.sep not in text and not path.is_absolute():
        for root in data_roots(data_root):
            for sub in _TRAIN_SUBFOLDERS:
                base = root / sub if sub else root
                if not base.is_dir():
                    continue
                for entry in sorted(base.iterdir()):
                    if entry.is_dir() and entry.name.lower() == text.lower():
                        return load_test_set(entry, name=entry.name)
    try:
        return find_test_set(name_or_path, data_root)
    except DataError:
        roots = ", ".join(str(r) for r in data_roots(data_root))
        raise DataError(
            f"training set {text!r} not found (searched data roots {roots}, also in their "
            f"train/ subfolders; pass a folder path or --data-root / SR_DATA_ROOT)"
        ) from None


@dataclass
class CachedPairs:
    names: list[str]
    hr: list[np.ndarray]  # C x H x W float32
    lr: list[np.ndarray]  # C x H/s x W/s float32


# (resolved image paths + mtimes, scale, color) -> CachedPairs; shared by all samplers
# of a process so that the trials of a study decode and downscale each set only once.
_CACHE: dict[tuple, CachedPairs] = {}
_CACHE_LOCK = threading.Lock()


def _cache_key(paths: list[Path], scale: int, color: str, gray_recipe) -> tuple:
    stamps = tuple((str(p.resolve()), p.stat().st_size, p.stat().st_mtime_ns) for p in paths)
    recipe = None
    if color == "gray" and gray_recipe is not None:
        recipe = (getattr(gray_recipe, "name", ""), getattr(gray_recipe, "key", repr(gray_recipe)))
    return stamps, int(scale), color, recipe


def cache_dir() -> Path | None:
    """Folder for the on-disk copy of prepared training pairs (``SR_CACHE_DIR``; ``off`` disables)."""
    env = os.environ.get("SR_CACHE_DIR")
    if env is not None:
        return None if env.strip().lower() in ("", "0", "off", "none") else Path(env)
    return Path.home() / ".cache" / "sr-search"


def _disk_path(key: tuple) -> Path | None:
    folder = cache_dir()
    if folder is None:
        return None
    digest = hashlib.sha256(repr(key).encode()).hexdigest()[:24]
    return folder / "training-pairs" / f"{digest}.npz"


def _read_disk(path: Path | None, count: int) -> CachedPairs | None:
    if path is None or not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as data:
            names = [str(n) for n in data["names"]]
            pairs = CachedPairs(names, [data[f"hr{i}"] for i in range(len(names))],
                                [data[f"lr{i}"] for i in range(len(names))])
    except Exception:  # a partial or foreign file: rebuild it
        return None
    return pairs if len(names) <= count else None


def _write_disk(path: Path | None, pairs: CachedPairs) -> None:
    if path is None:
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        arrays = {"names": np.array(pairs.names)}
        for i, (hr, lr) in enumerate(zip(pairs.hr, pairs.lr)):
            arrays[f"hr{i}"], arrays[f"lr{i}"] = hr, lr
        temporary = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(temporary, **arrays)
        os.replace(temporary, path)  # atomic: concurrent trials never see half a file
    except OSError:
        pass  # the cache is an optimisation only


def load_pairs(paths: list[Path], scale: int, color: str, gray_recipe=None, *,
               progress: bool = False, disk_cache: bool = True) -> CachedPairs:
    """HR/LR pairs of ``paths``, cached in memory per process and (``disk_cache``) on disk.

    The disk copy (``~/.cache/sr-search`` or ``SR_CACHE_DIR``) is keyed by the files' paths,
    sizes and modification times, the scale and the colour recipe, so separate trial
    processes of a study prepare each training set only once.
    """
    key = _cache_key(paths, scale, color, gray_recipe)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if cached is not None:
        return cached
    disk_path = _disk_path(key) if disk_cache else None
    pairs = _read_disk(disk_path, len(paths))
    if pairs is None:
        from tqdm import tqdm

        names, hrs, lrs = [], [], []
        for path in tqdm(paths, desc=f"training LR x{scale}", unit="img", disable=not progress,
                         leave=False):
            hr, lr = hr_lr_pair(read_image(path), scale, color, gray_recipe)
            if lr.shape[1] == 0 or lr.shape[2] == 0:
                continue
            names.append(path.name)
            hrs.append(hr)
            lrs.append(lr)
        pairs = CachedPairs(names, hrs, lrs)
        _write_disk(disk_path, pairs)
    with _CACHE_LOCK:
        _CACHE[key] = pairs
    return pairs


def clear_cache() -> None:
    with _CACHE_LOCK:
        _CACHE.clear()


def augment(array: np.ndarray, code: int) -> np.ndarray:
    """One of the 8 flips/rotations of a ``... x H x W`` array (``code`` in 0..7)."""
    if code & 1:
        array = array[..., :, ::-1]
    if code & 2:
        array = array[..., ::-1, :]
    if code & 4:
        array = np.swapaxes(array, -1, -2)
    return array


class PatchSampler:
    """Draws batches of aligned ``(lr, hr)`` patches from training folders.

    ``patch_size`` is the **HR** patch side (rounded down to a multiple of ``scale``); the
    LR patch side is ``patch_size // scale``. Images smaller than a patch are skipped.
    Images are drawn uniformly, then a uniform position and one of 8 flips/rotations.
    """

    def __init__(self, train_sets=("T91",), *, scale: int, patch_size: int, color: str = "rgb",
                 gray_recipe=None, seed: int = 0, data_root=None, augment: bool = True,
                 progress: bool = False, disk_cache: bool = True):
        if isinstance(train_sets, (str, os.PathLike)):
            train_sets = (train_sets,)
        self.scale = int(scale)
        self.lr_patch = int(patch_size) // self.scale
        if self.lr_patch < 1:
            raise ValueError(f"patch_size {patch_size} is smaller than the scale {scale}")
        self.hr_patch = self.lr_patch * self.scale
        self.color = color
        self.augment = augment
        self.sets = [find_training_set(name, data_root) for name in train_sets]
        paths = [image for train_set in self.sets for image in train_set.images]
        if not paths:
            raise DataError(f"training sets {list(train_sets)} hold no images")
        pairs = load_pairs(paths, self.scale, color, gray_recipe, progress=progress,
                           disk_cache=disk_cache)
        keep = [i for i, lr in enumerate(pairs.lr)
                if lr.shape[1] >= self.lr_patch and lr.shape[2] >= self.lr_patch]
        if not keep:
            raise DataError(
                f"no image of training sets {[s.name for s in self.sets]} is at least "
                f"{self.hr_patch}x{self.hr_patch} (HR patch); lower patch_size"
            )
        self.hr = [pairs.hr[i] for i in keep]
        self.lr = [pairs.lr[i] for i in keep]
        self.names = [pairs.names[i] for i in keep]
        self.channels = self.hr[0].shape[0]
        self.rng = np.random.default_rng(seed)

    def __len__(self) -> int:
        return len(self.hr)

    def crop(self, index: int, y: int, x: int, code: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """The aligned pair at LR position ``(y, x)`` of image ``index``, augmented by ``code``."""
        p, s = self.lr_patch, self.scale
        lr = self.lr[index][:, y:y + p, x:x + p]
        hr = self.hr[index][:, s * y:s * (y + p), s * x:s * (x + p)]
        return augment(lr, code), augment(hr, code)

    def sample(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """``(lr, hr)`` float32 arrays ``N x C x p x p`` and ``N x C x sp x sp``."""
        p, s = self.lr_patch, self.scale
        lr_batch = np.empty((batch_size, self.channels, p, p), dtype=np.float32)
        hr_batch = np.empty((batch_size, self.channels, s * p, s * p), dtype=np.float32)
        indices = self.rng.integers(0, len(self.hr), size=batch_size)
        codes = self.rng.integers(0, 8 if self.augment else 1, size=batch_size)
        unit = self.rng.random((batch_size, 2))
        for k in range(batch_size):
            index = int(indices[k])
            height, width = self.lr[index].shape[1:]
            y = int(unit[k, 0] * (height - p + 1))
            x = int(unit[k, 1] * (width - p + 1))
            lr_batch[k], hr_batch[k] = self.crop(index, y, x, int(codes[k]))
        return lr_batch, hr_batch


# At most this many LR pixels go into a NeighbourhoodBank (a uniform draw without
# replacement when a training set has more): 2^20 pixels of a 7 x 7 neighbourhood are 200 MB.
BANK_PIXELS = 1 << 20


def dihedral_orders(side: int) -> np.ndarray:
    """``8 x side^2`` index arrays: row ``code`` lists, for each position of a flattened
    ``side x side`` block after :func:`augment` with ``code``, the position it came from."""
    positions = np.arange(side * side).reshape(side, side)
    return np.stack([np.ascontiguousarray(augment(positions, code)).ravel() for code in range(8)])


class NeighbourhoodBank:
    """Single LR pixels with their ``K x K`` neighbourhood and their ``s x s`` HR block.

    For models whose ``s x s`` output block depends only on the ``K x K`` LR neighbourhood of
    one LR pixel (the one-layer eSR models), a batch of independent pixels trains the same
    function as a batch of patches, without patch borders and with no pixel seen twice in a
    batch. Only pixels whose whole neighbourhood lies inside the image are kept (``K // 2`` LR
    pixels at each image edge are left out): the zero padding the convolution sees at an image
    edge is a small share of a test image but up to a quarter of a small training image's
    pixels at x3-x4, and fitting it cost 0.15-0.25 dB on Set14 (measured, docs/training.md),
    as patch edges do without a loss border. ``features`` is ``P x K^2`` (row-major taps),
    ``targets`` ``P x s^2`` (sub-pixel ``i * s + j``); a flip/rotation (``augment``) of the
    image permutes both in the same way (:func:`dihedral_orders`). Gray (one-channel) only.
    """

    def __init__(self, train_sets=("T91",), *, scale: int, kernel: int, color: str = "gray",
                 gray_recipe=None, seed: int = 0, data_root=None, augment: bool = True,
                 max_pixels: int = BANK_PIXELS, progress: bool = False, disk_cache: bool = True):
        if isinstance(train_sets, (str, os.PathLike)):
            train_sets = (train_sets,)
        if kernel < 1 or kernel % 2 == 0:
            raise ValueError(f"kernel must be an odd positive size, got {kernel}")
        self.scale, self.kernel, self.augment = int(scale), int(kernel), augment
        self.sets = [find_training_set(name, data_root) for name in train_sets]
        paths = [image for train_set in self.sets for image in train_set.images]
        if not paths:
            raise DataError(f"training sets {list(train_sets)} hold no images")
        pairs = load_pairs(paths, self.scale, color, gray_recipe, progress=progress, disk_cache=disk_cache)
        if pairs.lr[0].shape[0] != 1:
            raise ValueError("a NeighbourhoodBank holds one-channel (gray) images only")
        self.image_count = len(pairs.lr)
        self.rng = np.random.default_rng(seed)
        radius = self.kernel // 2
        inner = [(max(0, lr.shape[1] - 2 * radius), max(0, lr.shape[2] - 2 * radius)) for lr in pairs.lr]
        sizes = np.array([height * width for height, width in inner])
        if sizes.sum() == 0:
            raise DataError(f"no image of training sets {list(train_sets)} is larger than a {kernel}x{kernel} "
                            f"LR neighbourhood at x{scale}")
        total = int(sizes.sum())
        # which pixels: all of them, or a seeded uniform draw (sorted, so images are visited in order)
        chosen = np.arange(total) if total <= max_pixels else np.sort(
            self.rng.choice(total, size=max_pixels, replace=False))
        starts = np.concatenate([[0], np.cumsum(sizes)])
        self.features = np.empty((len(chosen), self.kernel**2), dtype=np.float32)
        self.targets = np.empty((len(chosen), self.scale**2), dtype=np.float32)
        s, row = self.scale, 0
        for index, (lr, hr) in enumerate(zip(pairs.lr, pairs.hr)):
            lo, hi = np.searchsorted(chosen, [starts[index], starts[index + 1]])
            if hi == lo:
                continue
            height, width = lr.shape[1:]
            local = chosen[lo:hi] - starts[index]
            # window (i, j) of the unpadded image is the neighbourhood of LR pixel (i + r, j + r)
            ys, xs = local // inner[index][1], local % inner[index][1]
            windows = np.lib.stride_tricks.sliding_window_view(lr[0], (self.kernel, self.kernel))
            blocks = hr[0, :height * s, :width * s].reshape(height, s, width, s).transpose(0, 2, 1, 3)
            self.features[row:row + hi - lo] = windows[ys, xs].reshape(hi - lo, -1)
            self.targets[row:row + hi - lo] = blocks[ys + radius, xs + radius].reshape(hi - lo, -1)
            row += hi - lo
        self.tap_orders = dihedral_orders(self.kernel)
        self.block_orders = dihedral_orders(self.scale)

    def __len__(self) -> int:
        return len(self.features)

    def second_moment(self) -> np.ndarray:
        """``E[x x^T]`` of the neighbourhoods (float64, ``K^2 x K^2``), averaged over the 8
        flips/rotations when training augments (then it commutes with every tap permutation)."""
        moment = np.zeros((self.kernel**2, self.kernel**2))
        for start in range(0, len(self), 1 << 16):
            chunk = self.features[start:start + (1 << 16)].astype(np.float64)
            moment += chunk.T @ chunk
        moment /= max(1, len(self))
        if self.augment:
            moment = np.mean([moment[np.ix_(order, order)] for order in self.tap_orders], axis=0)
        return moment

    def transform_features(self, matrix: np.ndarray) -> None:
        """Replace every neighbourhood ``x`` by ``x @ matrix`` (e.g. a whitening; a matrix that
        commutes with the tap permutations keeps augmentation exact)."""
        matrix = np.asarray(matrix, dtype=np.float32)
        for start in range(0, len(self), 1 << 16):
            self.features[start:start + (1 << 16)] = self.features[start:start + (1 << 16)] @ matrix

    def sample(self, count: int) -> tuple[np.ndarray, np.ndarray]:
        """``(features, targets)``: ``count x K^2`` and ``count x s^2`` float32, each pixel
        flipped/rotated by one of 8 codes drawn uniformly (identity when not augmenting)."""
        rows = self.rng.integers(0, len(self), size=count)
        codes = self.rng.integers(0, 8 if self.augment else 1, size=count)
        features = np.take_along_axis(self.features[rows], self.tap_orders[codes], axis=1)
        targets = np.take_along_axis(self.targets[rows], self.block_orders[codes], axis=1)
        return features, targets
