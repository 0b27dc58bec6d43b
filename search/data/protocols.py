"""Evaluation protocols: how LR inputs and metric targets are made from HR images.

A protocol fixes every choice that moves published PSNR/SSIM by hundredths of a dB: how
a single-channel (gray) model's channel is derived from an RGB image, what a gray test
image means, how the LR image is produced and rounded, whether the output is quantised,
in which space (Y or gray) the metrics are computed, and the border shave.

``standard``
    The protocol of SRCNN/VDSR/IMDN/SMSR/BasicSR evaluation: PSNR/SSIM on the Y channel of
    MATLAB ``rgb2ycbcr``, shave = scale. RGB models get the MATLAB-bicubic LR of the
    mod-cropped uint8 HR (uint8, from ``LR_bicubic/X{s}`` files when the set has them);
    their output is clamped to [0, 1], quantised to 8 bits, and scored on its Y kept in
    float. Gray models (and ``--model bicubic``) work on the Y channel itself, SRCNN-style:
    Y of the HR rounded to uint8, LR = float MATLAB bicubic of it (unrounded), output
    clamped and rounded. A gray test image (Set14's bridge) is replicated to RGB before
    taking Y (``gray_images="rgb"``, default, as in the Set14 copies IMDN/SMSR used) or
    taken as its own Y (``gray_images="y"``, the canonical SRCNN/VDSR tables).
``esr``
    The protocol that reproduces the eSR authors' published ``tests.pkl`` numbers for
    their gray-in/gray-out released models; see docs/evaluation.md for how it was found.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from search.data.color import gray2y, rgb2y
from search.data.images import mod_crop
from search.data.imresize import imresize
from search.errors import UserError

# The SSIM window (11x11 Gaussian, Wang et al. 2004): the smallest image a protocol can score
# must hold it after the shave (search.evaluate.metrics uses the same constant).
SSIM_WINDOW = 11

_GRAY_WEIGHTS = {
    # name: weights applied to the array's channels 0, 1, 2 (float, unrounded)
    "bt601": (0.299, 0.587, 0.114),
    "bt601-bgr": (0.114, 0.587, 0.299),  # BT.601 luma on a BGR array read as RGB
}


def _round(values: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(values + 0.5), 0, 255)


@dataclass(frozen=True)
class Sample:
    """One prepared test image: the model input and the metric target."""

    lr: torch.Tensor      # 1 x C x h x w float32 in [0, 1] (C = 1 or 3)
    target: torch.Tensor  # H x W float64, metric space, 0..255
    gray_image: bool      # the HR file was a gray image
    extras: dict = field(default_factory=dict, compare=False, repr=False)  # per-device caches


@dataclass(frozen=True)
class Protocol:
    name: str
    description: str
    # Gray (1-channel) models: how their channel is made from an RGB image.
    #   "y"          MATLAB Y (rgb2ycbcr), the standard;
    #   "bt601"      0.299 R + 0.587 G + 0.114 B (full range, float);
    #   "bt601-bgr"  the same weights applied to B, G, R (cv2.imread + RGB formula);
    #   "pil-l"      PIL's convert('L') (integer BT.601).
    gray_channel: str = "y"
    round_gray_hr: bool = True          # round the gray/Y HR to 8 bits before use
    gray_metric: str = "as-is"          # "as-is" or "replicated-y" (16 + 219/255 * gray)
    gray_images: str = "rgb"            # gray test image: "rgb" (replicate, then Y) or "y"
    lr_from_files: bool = True          # use LR_bicubic/X{s} files when the set has them
    round_lr: bool = False              # gray models: round the float LR to 8 bits
    quantize_output: bool = True        # round the clamped output to 8 bits before scoring
    crop: str = "top-left"              # mod-crop position: "top-left" or "center"
    precision: str = "fp32"             # model input/weights precision: "fp32" or "fp16"

    def with_options(self, **changes) -> "Protocol":
        return dataclasses.replace(self, **changes)

    @property
    def key(self) -> tuple:
        """Everything that changes the prepared samples (for caching)."""
        return (self.gray_channel, self.round_gray_hr, self.gray_metric, self.gray_images,
                self.lr_from_files, self.round_lr, self.crop)

    def border(self, scale: int) -> int:
        return int(scale)

    def min_image_side(self, scale: int) -> int:
        """Smallest HR height/width this protocol can score at ``scale``.

        The HR image is mod-cropped to a multiple of ``scale`` and :meth:`border` pixels are
        shaved on each side; the SSIM window (``SSIM_WINDOW`` x ``SSIM_WINDOW``) must still
        fit: the smallest multiple of ``scale`` that is at least ``SSIM_WINDOW + 2 border``.
        """
        scale = int(scale)
        need = SSIM_WINDOW + 2 * self.border(scale)
        return -(-need // scale) * scale

    # ------------------------------------------------------------------ preparation
    def crop_hr(self, image: np.ndarray, scale: int) -> np.ndarray:
        if self.crop == "top-left":
            return mod_crop(image, scale)
        height, width = image.shape[:2]
        top, left = (height % scale) // 2, (width % scale) // 2
        return image[top: top + height - height % scale, left: left + width - width % scale]

    def gray_of(self, image: np.ndarray) -> np.ndarray:
        """The single channel a gray model sees for an HR image (float, 0..255)."""
        if image.ndim == 2:
            if self.gray_channel == "y" and self.gray_images == "rgb":
                return gray2y(image)  # Y of the gray image replicated to RGB
            return image.astype(np.float64)
        if self.gray_channel == "y":
            return rgb2y(image)
        if self.gray_channel == "pil-l":
            weights = np.array([299, 587, 114])
            return ((image.astype(np.int64) @ weights + 500) // 1000).astype(np.float64)
        if self.gray_channel in _GRAY_WEIGHTS:
            return image.astype(np.float64) @ np.array(_GRAY_WEIGHTS[self.gray_channel])
        raise UserError(f"protocol {self.name!r}: unknown gray_channel {self.gray_channel!r}")

    def gray_to_metric(self, gray: np.ndarray | torch.Tensor, gray_image: bool):
        if self.gray_metric == "replicated-y" and not (gray_image and self.gray_images == "y"):
            return 16.0 + (219.0 / 255.0) * gray
        return gray

    def prepare(self, image: np.ndarray, scale: int, color: str,
                lr_image: np.ndarray | None = None) -> Sample:
        """Model input and metric target for one uint8 HR image."""
        hr = self.crop_hr(image, scale)
        gray_image = hr.ndim == 2
        if lr_image is not None and lr_image.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
            lr_image = None  # a stored LR that does not fit this crop is not used
        if color == "rgb":
            rgb_hr = np.repeat(hr[..., None], 3, axis=2) if gray_image else hr
            if lr_image is not None and self.lr_from_files:
                lr = np.repeat(lr_image[..., None], 3, axis=2) if lr_image.ndim == 2 else lr_image
                lr = lr.astype(np.float64)
            else:
                lr = imresize(rgb_hr, 1.0 / scale)  # uint8 in -> rounded, as MATLAB
            if gray_image and self.gray_images == "y":
                target = hr.astype(np.float64)
            else:
                target = rgb2y(rgb_hr)
            lr_tensor = torch.from_numpy(np.ascontiguousarray(lr.transpose(2, 0, 1)) / 255.0)
        else:
            gray = self.gray_of(hr)
            if self.round_gray_hr:
                gray = _round(gray)
            if lr_image is not None and self.lr_from_files:
                lr = self.gray_of(lr_image)
                lr = _round(lr) if self.round_gray_hr else lr
            else:
                lr = imresize(gray, 1.0 / scale)  # float in -> float out (no rounding)
                if self.round_lr:
                    lr = _round(lr)
            target = self.gray_to_metric(gray, gray_image)
            lr_tensor = torch.from_numpy(lr / 255.0)[None]
        return Sample(
            lr=lr_tensor[None].to(torch.float32),
            target=torch.from_numpy(np.ascontiguousarray(target, dtype=np.float64)),
            gray_image=gray_image,
        )

    # ------------------------------------------------------------------ scoring
    def output_to_metric(self, sr: torch.Tensor, color: str, gray_image: bool) -> torch.Tensor:
        """``1 x C x H x W`` model output -> ``H x W`` metric image (0..255, float32 or more).

        float32 is exact for the 8-bit quantisation and within 2e-5 of float64 otherwise.
        """
        out = sr.detach()
        out = out.float() if out.dtype in (torch.float16, torch.bfloat16) else out
        out = out.clamp(0.0, 1.0).mul_(255.0)
        if self.quantize_output:
            out = torch.floor(out + 0.5)
        out = out[0]
        if color == "rgb":
            r, g, b = out[0], out[1], out[2]
            y = 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0
            if gray_image and self.gray_images == "y":
                return (y - 16.0) * (255.0 / 219.0)
            return y
        return self.gray_to_metric(out[0], gray_image)


PROTOCOLS: dict[str, Protocol] = {}


def register_protocol(protocol: Protocol) -> Protocol:
    PROTOCOLS[protocol.name] = protocol
    return protocol


register_protocol(Protocol(
    name="standard",
    description="Y of MATLAB rgb2ycbcr, MATLAB bicubic LR, shave = scale; gray images replicated to RGB",
))
register_protocol(PROTOCOLS["standard"].with_options(
    name="standard-gray-y",
    description="standard, but a gray test image is its own Y (canonical SRCNN/VDSR Set14 tables)",
    gray_images="y",
))
# Recovered from the released eSR models and their published results (docs/evaluation.md).
register_protocol(Protocol(
    name="esr",
    description="eSR tests.pkl protocol: gray = BT.601 luma of the BGR-ordered array (float), "
                "float MATLAB-bicubic LR, float output, metrics on Y of the gray replicated to RGB",
    gray_channel="bt601-bgr",
    round_gray_hr=False,
    gray_metric="replicated-y",
    gray_images="rgb",
    lr_from_files=False,
    round_lr=False,
    quantize_output=False,
))


def get_protocol(name: str | Protocol) -> Protocol:
    """A protocol by name (``standard``, ``standard-gray-y``, ``esr``)."""
    if isinstance(name, Protocol):
        return name
    key = str(name).strip().lower()
    if key in PROTOCOLS:
        return PROTOCOLS[key]
    raise UserError(f"unknown protocol {name!r}; known: {', '.join(sorted(PROTOCOLS))}")


def list_protocols() -> list[str]:
    return sorted(PROTOCOLS)
