"""The DASR degradation space: blur, resize, noise, JPEG, a second stage and a final sinc.

Three *degrees* (``weak``, ``standard``: one stage; ``severe``: two stages + final sinc) with
the ranges and probabilities of DASR's training config, read from
``published/dasr_degradations.yaml`` (REPORTED.md section 4.3). Every draw is a
:class:`Degradation` (plain numbers, seeded), which

* applies deterministically to an HR image (:func:`apply_degradation`), and
* encodes to / decodes from DASR's 33-number parameter vector (:func:`encode`,
  :func:`decode`): 10 kernel + 8 resize + 8 noise + 7 JPEG numbers, see :data:`VECTOR_LAYOUT`.

Images are ``torch`` tensors ``C x H x W`` (or ``1 x C x H x W``) float in [0, 1] on the CPU.
The order of operations follows DASR's data scripts (Real-ESRGAN's pipeline):

    one stage:  blur -> resize (up/down/keep) -> noise -> JPEG -> resize to H/s x W/s
    severe:     stage 1 as above, then [blur (p=0.8)] -> resize relative to H/s -> noise ->
                either (resize to H/s + sinc -> JPEG) or (JPEG -> resize to H/s + sinc)

and the result is clamped and rounded to 8 bits.

Deviations from the released scripts (documented in docs/dasr.md): the vector is normalised
with one set of ranges (the widest, ``vector_ranges`` in the YAML) rather than the drawing
degree's ranges, an absent kernel is marked by -0.5 in its size slot (the scripts' own
convention for an absent sinc) instead of overwriting the sinc frequency slot with a
second-blur flag, JPEG uses Pillow with an integer quality instead of DiffJPEG, and each
sample of a batch draws its own degree.
"""

from __future__ import annotations

import io
import math
import os
from dataclasses import dataclass, field, replace
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
import yaml

from search.errors import UserError
from search.paths import PUBLISHED_DIR

SETTINGS_FILE = PUBLISHED_DIR / "dasr_degradations.yaml"
DEGREES = ("weak", "standard", "severe")
RESIZE_MODES = ("area", "bilinear", "bicubic")
NOISE_KINDS = ("gaussian", "poisson")
FINAL_ORDERS = ("resize_first", "jpeg_first")  # severe: [resize + sinc] -> JPEG, or JPEG first
ABSENT = -0.5  # value of a size slot whose kernel is not applied (size 0 normalised to [7, 21])

# name -> (start, stop) in the 33-number vector. Groups: kernel 0-9, resize 10-17,
# noise 18-25, jpeg 26-32 (csjliang/DASR's "road map" [0, 10, 18, 26, 33]).
VECTOR_LAYOUT = {
    "blur1": (0, 4),        # size, sigma_x, sigma_y, rotation (size = ABSENT if no blur)
    "blur2": (4, 8),        # the same for stage 2
    "sinc": (8, 10),        # final sinc: size, omega_c (both ABSENT without sinc)
    "resize1": (10, 14),    # scale, one-hot area/bilinear/bicubic
    "resize2": (14, 18),    # stage 2 (all zero for one-stage degrees)
    "noise1": (18, 22),     # strength (sigma or Poisson scale), gray flag, one-hot gaussian/poisson
    "noise2": (22, 26),
    "jpeg": (26, 30),       # stage-1 quality, stage-2 quality, one-hot final order
    "final_resize": (30, 33),  # one-hot mode of the resize to the LR size
}
VECTOR_SIZE = 33


class DegradationError(UserError):
    """A malformed degradation settings file or parameter vector."""


# --------------------------------------------------------------------------- settings
@lru_cache(maxsize=4)
def _load_settings_cached(path: str, mtime: int) -> dict:
    try:
        settings = yaml.safe_load(Path(path).read_text())
    except (OSError, yaml.YAMLError) as exc:
        raise DegradationError(f"cannot read degradation settings ({exc})", path=path) from None
    if not isinstance(settings, dict) or "degrees" not in settings or "vector_ranges" not in settings:
        raise DegradationError("degradation settings need 'degrees' and 'vector_ranges'", path=path)
    for degree in DEGREES:
        spec = settings["degrees"].get(degree)
        if not isinstance(spec, dict) or not spec.get("stages"):
            raise DegradationError(f"degree {degree!r} missing or without stages", path=path)
        if len(spec["stages"]) not in (1, 2):
            raise DegradationError(f"degree {degree!r}: 1 or 2 stages supported", path=path)
        for index, stage in enumerate(spec["stages"]):
            if float(stage.get("sinc_prob", 0)) != 0:
                raise DegradationError(f"degree {degree!r} stage {index + 1}: in-stage sinc kernels "
                                       "are not supported (DASR uses sinc_prob 0)", path=path)
    return settings


def load_settings(path: str | os.PathLike | None = None) -> dict:
    """The degradation settings (``published/dasr_degradations.yaml`` by default)."""
    path = Path(path) if path is not None else SETTINGS_FILE
    if not path.is_file():
        raise DegradationError("degradation settings file not found", path=path)
    return _load_settings_cached(str(path), path.stat().st_mtime_ns)


def degree_probabilities(settings: dict | None = None) -> dict[str, float]:
    settings = settings or load_settings()
    probs = {k: float(v) for k, v in settings["degree_probabilities"].items()}
    total = sum(probs.values())
    return {k: v / total for k, v in probs.items()}


def level_degrees(settings: dict | None = None) -> dict[str, str]:
    """``{"I": "weak", "II": "standard", "III": "severe"}`` (from the settings file)."""
    settings = settings or load_settings()
    return dict(settings["levels"])


# --------------------------------------------------------------------------- parameters
@dataclass(frozen=True)
class Blur:
    size: int
    sigma_x: float
    sigma_y: float
    rotation: float = 0.0
    kind: str = "aniso"  # "iso" kernels have sigma_y == sigma_x and rotation 0


@dataclass(frozen=True)
class Stage:
    blur: Blur | None
    resize_scale: float          # 1.0 = keep
    resize_mode: str
    noise_kind: str              # "gaussian" or "poisson"
    noise_strength: float        # Gaussian sigma on the 0..255 scale, or the Poisson scale
    noise_gray: bool
    jpeg_quality: int


@dataclass(frozen=True)
class Degradation:
    """One drawn degradation. ``seed`` fixes the noise realisation."""

    stages: tuple[Stage, ...]
    final_mode: str
    scale: int = 4
    sinc: tuple[int, float] | None = None   # (kernel size, omega_c) of the final sinc
    final_order: str = "resize_first"        # two-stage only
    degree: str = ""
    seed: int = 0

    def with_seed(self, seed: int) -> "Degradation":
        return replace(self, seed=int(seed))


# --------------------------------------------------------------------------- kernels
def gaussian_kernel(size: int, sigma_x: float, sigma_y: float | None = None,
                    rotation: float = 0.0) -> np.ndarray:
    """Normalised (an)isotropic Gaussian ``size x size`` kernel, rotated by ``rotation`` rad."""
    sigma_y = sigma_x if sigma_y is None else sigma_y
    radius = size // 2
    grid = np.arange(-radius, radius + 1, dtype=np.float64)
    xx, yy = np.meshgrid(grid, grid)
    cos, sin = math.cos(rotation), math.sin(rotation)
    rot = np.array([[cos, -sin], [sin, cos]])
    cov = rot @ np.diag([sigma_x ** 2, sigma_y ** 2]) @ rot.T
    inv = np.linalg.inv(cov)
    points = np.stack([xx, yy], axis=-1)
    exponent = np.einsum("...i,ij,...j->...", points, inv, points)
    kernel = np.exp(-0.5 * exponent)
    return kernel / kernel.sum()


def sinc_kernel(size: int, omega_c: float, pad_to: int = 0) -> np.ndarray:
    """Circular low-pass (2-D sinc / Airy) kernel with cut-off ``omega_c`` rad/pixel."""
    from scipy.special import j1

    radius = (size - 1) / 2
    grid = np.arange(size, dtype=np.float64) - radius
    xx, yy = np.meshgrid(grid, grid)
    r = np.hypot(xx, yy)
    with np.errstate(divide="ignore", invalid="ignore"):
        kernel = omega_c * j1(omega_c * r) / (2 * np.pi * r)
    kernel[r == 0] = omega_c ** 2 / (4 * np.pi)
    kernel /= kernel.sum()
    if pad_to > size:
        pad = (pad_to - size) // 2
        kernel = np.pad(kernel, ((pad, pad), (pad, pad)))
    return kernel


def blur_kernel(blur: Blur) -> np.ndarray:
    return gaussian_kernel(blur.size, blur.sigma_x, blur.sigma_y, blur.rotation)


# --------------------------------------------------------------------------- operators
def _as_batch(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if image.dim() == 3:
        return image[None], True
    if image.dim() == 4:
        return image, False
    raise ValueError(f"expected C x H x W or N x C x H x W, got shape {tuple(image.shape)}")


def _restore(image: torch.Tensor, squeezed: bool) -> torch.Tensor:
    return image[0] if squeezed else image


def _trim_kernel(kernel: np.ndarray, tolerance: float = 1e-7) -> np.ndarray:
    """Drop outer rings whose taps are all below ``tolerance`` x the peak (a sigma-0.2 kernel
    of size 21 is 1 tap wide): the result differs by far less than one 8-bit level, and the
    convolution gets up to 40x cheaper. Kernels keep odd sizes and their centre."""
    peak = np.abs(kernel).max()
    while kernel.shape[0] > 1 and np.abs(np.concatenate(
            [kernel[0], kernel[-1], kernel[:, 0], kernel[:, -1]])).max() < tolerance * peak:
        kernel = kernel[1:-1, 1:-1]
    return kernel


def filter2d(image: torch.Tensor, kernel: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Convolve every channel with ``kernel`` (odd size), reflect padding (replicate if tiny)."""
    batch, squeezed = _as_batch(image)
    kernel = torch.as_tensor(_trim_kernel(np.asarray(kernel, dtype=np.float64)), dtype=batch.dtype)
    size = kernel.shape[-1]
    pad = size // 2
    height, width = batch.shape[-2:]
    mode = "reflect" if pad < height and pad < width else "replicate"
    padded = F.pad(batch, (pad, pad, pad, pad), mode=mode)
    channels = batch.shape[1]
    # conv2d is a correlation; flipping makes it a convolution (matters for rotated kernels).
    weight = torch.flip(kernel, dims=(0, 1)).expand(channels, 1, size, size).contiguous()
    out = F.conv2d(padded, weight, groups=channels)
    return _restore(out, squeezed)


def resize(image: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """``F.interpolate`` to ``size`` (h, w) with ``mode`` in area / bilinear / bicubic."""
    if mode not in RESIZE_MODES:
        raise ValueError(f"resize mode must be one of {RESIZE_MODES}, got {mode!r}")
    batch, squeezed = _as_batch(image)
    size = (max(1, int(size[0])), max(1, int(size[1])))
    if tuple(batch.shape[-2:]) == size:
        return image
    kwargs = {} if mode == "area" else {"align_corners": False}
    out = F.interpolate(batch, size=size, mode=mode, **kwargs)
    return _restore(out, squeezed)


def add_gaussian_noise(image: torch.Tensor, sigma: float, gray: bool,
                       rng: np.random.Generator) -> torch.Tensor:
    """Add N(0, (sigma/255)^2) noise; ``gray``: one noise map shared by all channels."""
    channels, height, width = image.shape[-3:]
    shape = (1 if gray else channels, height, width)
    noise = rng.standard_normal(size=image.shape[:-3] + shape).astype(np.float32) * (sigma / 255.0)
    return image + torch.from_numpy(noise).to(image.dtype)


def _luma(image: torch.Tensor) -> torch.Tensor:
    if image.shape[-3] == 1:
        return image
    weights = torch.tensor([0.299, 0.587, 0.114], dtype=image.dtype).view(3, 1, 1)
    return (image * weights).sum(dim=-3, keepdim=True)


def add_poisson_noise(image: torch.Tensor, scale: float, gray: bool,
                      rng: np.random.Generator) -> torch.Tensor:
    """Real-ESRGAN's Poisson noise: photon counts ``vals = 2^ceil(log2(#levels))`` per unit
    intensity, noise = (Poisson(x * vals) / vals - x) * ``scale`` (on the luma if ``gray``)."""
    base = _luma(image) if gray else image
    clipped = base.clamp(0, 1)
    levels = len(np.unique(np.floor(clipped.numpy() * 255.0 + 0.5)))
    vals = float(2 ** math.ceil(math.log2(max(levels, 2))))
    counts = rng.poisson(clipped.numpy().astype(np.float64) * vals)
    noisy = torch.from_numpy((counts / vals).astype(np.float32)).to(image.dtype)
    return image + (noisy - clipped) * scale


def jpeg(image: torch.Tensor, quality: int) -> torch.Tensor:
    """JPEG round trip through Pillow at integer ``quality`` (image clamped, rounded to 8 bits)."""
    from PIL import Image

    batch, squeezed = _as_batch(image)
    out = torch.empty_like(batch)
    for index in range(batch.shape[0]):
        array = (batch[index].clamp(0, 1) * 255.0 + 0.5).floor().to(torch.uint8).numpy()
        array = array[0] if array.shape[0] == 1 else array.transpose(1, 2, 0)
        buffer = io.BytesIO()
        Image.fromarray(np.ascontiguousarray(array)).save(buffer, format="JPEG", quality=int(quality))
        buffer.seek(0)
        with Image.open(buffer) as decoded:
            result = np.asarray(decoded, dtype=np.float32) / 255.0
        result = result[None] if result.ndim == 2 else result.transpose(2, 0, 1)
        out[index] = torch.from_numpy(np.ascontiguousarray(result))
    return _restore(out, squeezed)


def quantize(image: torch.Tensor) -> torch.Tensor:
    return (image.clamp(0, 1) * 255.0).round() / 255.0


# --------------------------------------------------------------------------- sampling
def _uniform(rng: np.random.Generator, bounds) -> float:
    return float(rng.uniform(float(bounds[0]), float(bounds[1])))


def _choice(rng: np.random.Generator, probs: dict) -> str:
    names = list(probs)
    weights = np.array([float(probs[n]) for n in names], dtype=np.float64)
    return names[int(rng.choice(len(names), p=weights / weights.sum()))]


def _kernel_sizes(bounds) -> list[int]:
    low, high = int(bounds[0]), int(bounds[1])
    return [k for k in range(low, high + 1) if k % 2 == 1]


def _sample_stage(rng: np.random.Generator, spec: dict) -> Stage:
    blur = None
    if rng.uniform() < float(spec.get("blur_prob", 1.0)):
        size = int(rng.choice(_kernel_sizes(spec["kernel_size"])))
        kind = _choice(rng, spec["kernel_prob"])
        if kind == "iso":
            sigma = _uniform(rng, spec["blur_sigma"])
            blur = Blur(size, sigma, sigma, 0.0, "iso")
        elif kind == "aniso":
            blur = Blur(size, _uniform(rng, spec["blur_sigma"]), _uniform(rng, spec["blur_sigma"]),
                        float(rng.uniform(-math.pi, math.pi)), "aniso")
        else:
            raise DegradationError(f"unsupported kernel type {kind!r} (iso, aniso)", path=SETTINGS_FILE)
    direction = _choice(rng, spec["resize_prob"])
    low, high = (float(v) for v in spec["resize_range"])
    scale = {"up": lambda: float(rng.uniform(1.0, high)),
             "down": lambda: float(rng.uniform(low, 1.0)),
             "keep": lambda: 1.0}[direction]()
    mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    if rng.uniform() < float(spec["gaussian_noise_prob"]):
        kind, strength = "gaussian", _uniform(rng, spec["noise_range"])
    else:
        kind, strength = "poisson", _uniform(rng, spec["poisson_scale_range"])
    gray = bool(rng.uniform() < float(spec["gray_noise_prob"]))
    quality = int(rng.integers(int(spec["jpeg_range"][0]), int(spec["jpeg_range"][1]) + 1))
    return Stage(blur, scale, mode, kind, strength, gray, quality)


def sample_degradation(rng: np.random.Generator, degree: str | None = None, *, scale: int = 4,
                       settings: dict | None = None) -> Degradation:
    """Draw one degradation of ``degree`` (drawn with the training probabilities if None)."""
    settings = settings or load_settings()
    if degree is None:
        degree = _choice(rng, degree_probabilities(settings))
    if degree not in settings["degrees"]:
        raise DegradationError(f"unknown degradation degree {degree!r} (known: {', '.join(settings['degrees'])})")
    spec = settings["degrees"][degree]
    stages = tuple(_sample_stage(rng, stage) for stage in spec["stages"])
    sinc = None
    if rng.uniform() < float(spec.get("final_sinc_prob", 0)):
        size = int(rng.choice(_kernel_sizes(spec["stages"][0]["kernel_size"])))
        sinc = (size, _uniform(rng, spec.get("final_sinc_omega", [math.pi / 3, math.pi])))
    order = FINAL_ORDERS[int(rng.integers(2))] if len(stages) == 2 else "resize_first"
    final_mode = RESIZE_MODES[int(rng.integers(len(RESIZE_MODES)))]
    seed = int(rng.integers(2 ** 31 - 1))
    return Degradation(stages, final_mode, int(scale), sinc, order, degree, seed)


# --------------------------------------------------------------------------- applying
def _apply_noise(image: torch.Tensor, stage: Stage, rng: np.random.Generator) -> torch.Tensor:
    if stage.noise_kind == "gaussian":
        out = add_gaussian_noise(image, stage.noise_strength, stage.noise_gray, rng)
    elif stage.noise_kind == "poisson":
        out = add_poisson_noise(image, stage.noise_strength, stage.noise_gray, rng)
    else:
        raise ValueError(f"noise kind must be one of {NOISE_KINDS}, got {stage.noise_kind!r}")
    return out.clamp(0, 1)


def _scaled(size: tuple[int, int], factor: float) -> tuple[int, int]:
    # The tolerance makes a scale that went through the float32 vector give the same size.
    return int(size[0] * factor + 1e-4), int(size[1] * factor + 1e-4)


def apply_degradation(hr: torch.Tensor, degradation: Degradation) -> torch.Tensor:
    """LR image (``C x h x w`` with h = H // scale, w = W // scale), 8-bit values in [0, 1]."""
    if hr.dim() != 3:
        raise ValueError(f"apply_degradation takes one C x H x W image, got {tuple(hr.shape)}")
    rng = np.random.default_rng(degradation.seed)
    height, width = hr.shape[-2:]
    target = (height // degradation.scale, width // degradation.scale)
    if min(target) < 1:
        raise ValueError(f"image {height}x{width} is smaller than the scale {degradation.scale}")
    out = hr.float()
    first = degradation.stages[0]
    if first.blur is not None:
        out = filter2d(out, blur_kernel(first.blur))
    out = resize(out, _scaled((height, width), first.resize_scale), first.resize_mode)
    out = _apply_noise(out, first, rng)
    out = jpeg(out, first.jpeg_quality)
    if len(degradation.stages) == 1:
        out = resize(out, target, degradation.final_mode)
        return quantize(out)
    second = degradation.stages[1]
    if second.blur is not None:
        out = filter2d(out, blur_kernel(second.blur))
    out = resize(out, _scaled(target, second.resize_scale), second.resize_mode)
    out = _apply_noise(out, second, rng)

    def resize_and_sinc(image):
        image = resize(image, target, degradation.final_mode)
        if degradation.sinc is not None:
            image = filter2d(image, sinc_kernel(degradation.sinc[0], degradation.sinc[1]))
        return image

    if degradation.final_order == "resize_first":
        out = jpeg(resize_and_sinc(out), second.jpeg_quality)
    else:
        out = resize_and_sinc(jpeg(out, second.jpeg_quality))
    return quantize(out)


# --------------------------------------------------------------------------- the 33 numbers
def _norm(value: float, bounds) -> float:
    low, high = float(bounds[0]), float(bounds[1])
    return (float(value) - low) / (high - low)


def _denorm(value: float, bounds) -> float:
    low, high = float(bounds[0]), float(bounds[1])
    return float(value) * (high - low) + low


def _one_hot(names, name) -> list[float]:
    return [1.0 if n == name else 0.0 for n in names]


def _from_one_hot(names, values, what: str) -> str:
    values = np.asarray(values, dtype=np.float64)
    if not np.isclose(values.sum(), 1.0) or not np.isclose(values.max(), 1.0):
        raise DegradationError(f"parameter vector: {what} one-hot {values.tolist()} is not one-hot")
    return names[int(values.argmax())]


def encode(degradation: Degradation, settings: dict | None = None) -> np.ndarray:
    """The 33-number parameter vector (float64, exact inverse of :func:`decode`)."""
    settings = settings or load_settings()
    ranges = settings["vector_ranges"]
    vector = np.zeros(VECTOR_SIZE, dtype=np.float64)

    def put(name, values):
        start, stop = VECTOR_LAYOUT[name]
        vector[start:start + len(values)] = values

    for index, stage in enumerate(degradation.stages):
        stage_ranges = ranges[f"stage{index + 1}"]
        if stage.blur is None:
            put(f"blur{index + 1}", [ABSENT, 0.0, 0.0, 0.0])
        else:
            put(f"blur{index + 1}", [_norm(stage.blur.size, ranges["kernel_size"]),
                                     _norm(stage.blur.sigma_x, stage_ranges["blur_sigma"]),
                                     _norm(stage.blur.sigma_y, stage_ranges["blur_sigma"]),
                                     _norm(stage.blur.rotation, ranges["rotation"])])
        put(f"resize{index + 1}", [_norm(stage.resize_scale, stage_ranges["resize_range"])]
            + _one_hot(RESIZE_MODES, stage.resize_mode))
        strength_range = stage_ranges["noise_range" if stage.noise_kind == "gaussian" else "poisson_scale_range"]
        put(f"noise{index + 1}", [_norm(stage.noise_strength, strength_range), float(stage.noise_gray)]
            + _one_hot(NOISE_KINDS, stage.noise_kind))
        vector[VECTOR_LAYOUT["jpeg"][0] + index] = _norm(stage.jpeg_quality, stage_ranges["jpeg_range"])
    if len(degradation.stages) == 1:
        put("blur2", [ABSENT, 0.0, 0.0, 0.0])
    else:
        put("jpeg", [vector[26], vector[27]] + _one_hot(FINAL_ORDERS, degradation.final_order))
    if degradation.sinc is None:
        put("sinc", [ABSENT, ABSENT])
    else:
        put("sinc", [_norm(degradation.sinc[0], ranges["kernel_size"]),
                     _norm(degradation.sinc[1], ranges["sinc_omega"])])
    put("final_resize", _one_hot(RESIZE_MODES, degradation.final_mode))
    return vector


def decode(vector, *, scale: int = 4, seed: int = 0, settings: dict | None = None) -> Degradation:
    """The :class:`Degradation` a 33-number vector describes (inverse of :func:`encode`)."""
    settings = settings or load_settings()
    ranges = settings["vector_ranges"]
    v = np.asarray(vector, dtype=np.float64).reshape(-1)
    if v.size != VECTOR_SIZE or not np.all(np.isfinite(v)):
        raise DegradationError(f"parameter vector must hold {VECTOR_SIZE} finite numbers, got {v.size}")

    def get(name):
        start, stop = VECTOR_LAYOUT[name]
        return v[start:stop]

    two_stage = bool(np.any(get("resize2")[1:] > 0.5))
    stages = []
    for index in range(2 if two_stage else 1):
        stage_ranges = ranges[f"stage{index + 1}"]
        size_n, sx_n, sy_n, rot_n = get(f"blur{index + 1}")
        blur = None
        if size_n > ABSENT / 2:
            size = int(round(_denorm(size_n, ranges["kernel_size"])))
            sigma_x = _denorm(sx_n, stage_ranges["blur_sigma"])
            sigma_y = _denorm(sy_n, stage_ranges["blur_sigma"])
            rotation = _denorm(rot_n, ranges["rotation"])
            iso = math.isclose(sigma_x, sigma_y, rel_tol=1e-5) and abs(rotation) < 1e-5
            blur = Blur(size, sigma_x, sigma_y, 0.0 if iso else rotation, "iso" if iso else "aniso")
        resize_values = get(f"resize{index + 1}")
        noise_values = get(f"noise{index + 1}")
        kind = _from_one_hot(NOISE_KINDS, noise_values[2:], f"stage {index + 1} noise kind")
        strength_range = stage_ranges["noise_range" if kind == "gaussian" else "poisson_scale_range"]
        quality = int(round(_denorm(v[VECTOR_LAYOUT["jpeg"][0] + index], stage_ranges["jpeg_range"])))
        stages.append(Stage(
            blur=blur,
            resize_scale=_denorm(resize_values[0], stage_ranges["resize_range"]),
            resize_mode=_from_one_hot(RESIZE_MODES, resize_values[1:], f"stage {index + 1} resize mode"),
            noise_kind=kind,
            noise_strength=_denorm(noise_values[0], strength_range),
            noise_gray=bool(noise_values[1] > 0.5),
            jpeg_quality=quality,
        ))
    sinc_size_n, sinc_omega_n = get("sinc")
    sinc = None
    if sinc_size_n > ABSENT / 2:
        sinc = (int(round(_denorm(sinc_size_n, ranges["kernel_size"]))), _denorm(sinc_omega_n, ranges["sinc_omega"]))
    order = "resize_first"
    if two_stage:
        order = _from_one_hot(FINAL_ORDERS, get("jpeg")[2:4], "final order")
    final_mode = _from_one_hot(RESIZE_MODES, get("final_resize"), "final resize mode")
    return Degradation(tuple(stages), final_mode, int(scale), sinc, order, "", int(seed))


# --------------------------------------------------------------------------- batches
def degrade_image(hr: torch.Tensor, rng: np.random.Generator, degree: str | None = None, *,
                  scale: int = 4, settings: dict | None = None) -> tuple[torch.Tensor, np.ndarray, Degradation]:
    """Draw a degradation and apply it: ``(lr, vector, degradation)``."""
    degradation = sample_degradation(rng, degree, scale=scale, settings=settings)
    return apply_degradation(hr, degradation), encode(degradation, settings), degradation


def degrade_batch(hr: torch.Tensor, rng: np.random.Generator, *, scale: int = 4,
                  degree: str | None = None, settings: dict | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Degrade every ``C x H x W`` image of an ``N x C x H x W`` batch independently.

    Each sample draws its own degree (training probabilities 0.3/0.3/0.4 unless ``degree``
    is given). Returns ``(lr N x C x H/s x W/s, vectors N x 33)`` on ``hr``'s device.
    """
    settings = settings or load_settings()
    device = hr.device
    source = hr.detach().to("cpu", torch.float32)
    lrs, vectors = [], []
    for image in source:
        lr, vector, _ = degrade_image(image, rng, degree, scale=scale, settings=settings)
        lrs.append(lr)
        vectors.append(torch.from_numpy(vector))
    return torch.stack(lrs).to(device), torch.stack(vectors).to(device)


@dataclass
class DegradationSampler:
    """Callable ``(hr_batch) -> (lr_batch, vectors)`` with its own seeded generator."""

    scale: int = 4
    seed: int = 0
    degree: str | None = None
    settings_path: str | None = None
    rng: np.random.Generator = field(init=False, repr=False)

    def __post_init__(self):
        self.rng = np.random.default_rng(self.seed)

    def __call__(self, hr: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        settings = load_settings(self.settings_path)
        return degrade_batch(hr, self.rng, scale=self.scale, degree=self.degree, settings=settings)
