"""Sparse 3x3 convolution on a spatial mask, as gather + GEMM (SMSR's inference path).

A layer's channels are split by a hard channel mask into *dense* channels (computed at
every position) and *sparse* channels (computed only where the spatial mask is 1, zero
elsewhere). A convolution from layer ``i-1`` to layer ``i`` then splits into four parts:

* dense -> dense    every position: a plain ``conv2d`` on the dense channel subsets;
* dense -> sparse   masked positions only;
* sparse -> dense   masked positions only (the sparse input is zero elsewhere, and SMSR
                    adds its contribution to dense outputs only at masked positions);
* sparse -> sparse  masked positions only.

The three masked parts are computed together: the input (dense channels, plus the sparse
rows scattered back to their positions) is written once into a zero-padded channels-last
buffer, the 3x3 neighbourhoods of the ``N`` masked positions are gathered from it, and one
product gives the sparse outputs and the sparse->dense contribution, which is added to the
dense output at those positions (``index_add_`` on rows). In that product the
dense->dense block of the kernel is zero (it is done by the dense conv), so it executes
``9 * Cd_in * Cd_out * N`` multiply-adds more than the split needs; :meth:`SplitConv.macs`
counts what the split needs (the paper's count), :meth:`SplitConv.executed_macs` what runs.

The gather works on *runs*: maximal horizontal segments of masked positions in one row
(17 positions long on average for the released x2 model on Set14). A run of length ``L``
needs a ``3 x (L + 2)`` window of the padded input; the windows of all runs are copied
side by side into a ``C x 3 x W_strip`` channels-last strip and one valid 3x3 convolution
(oneDNN's direct convolution, markedly faster than BLAS for these skinny products) gives
every run's outputs; the two outputs straddling each junction of windows are discarded.
Compared with gathering every position's 9 neighbours (im2col) this copies about 3.3x
instead of 9x the masked input, at the price of ``2 (runs - 1)`` discarded outputs
(:meth:`SplitConv.executed_macs` counts them).

Multiply-accumulates of one layer (``P`` = all positions, ``N`` = masked positions)::

    9 * (Cd_in * Cd_out * P + Cd_in * Cs_out * N + Cs_in * (Cd_out + Cs_out) * N)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SpatialIndex:
    """Where the spatial mask is 1, and the rows of each position's 3x3 neighbours."""

    height: int
    width: int
    positions: torch.Tensor  # (N,) flat indices h * W + w of masked positions (row-major)
    padded_positions: torch.Tensor  # (N,) the same positions in the (H+2) x (W+2) grid
    strip_rows: torch.Tensor  # (3 W_strip,) padded-grid rows of the run windows, row by row
    strip_valid: torch.Tensor  # (N,) which strip outputs are masked positions (row-major order)

    @property
    def strip_width(self) -> int:
        return self.strip_rows.numel() // 3

    @property
    def count(self) -> int:
        return int(self.positions.numel())


def build_spatial_index(mask: torch.Tensor) -> SpatialIndex:
    """Index of a boolean ``H x W`` mask: positions, runs and the strip gather."""
    if mask.ndim != 2:
        raise ValueError(f"spatial mask must be H x W, got shape {tuple(mask.shape)}")
    height, width = mask.shape
    device = mask.device
    positions = mask.reshape(-1).nonzero().squeeze(1)
    padded_width = width + 2
    padded_positions = (positions // width + 1) * padded_width + (positions % width + 1)
    edges = torch.diff(F.pad(mask.to(torch.int8), (1, 1)), dim=1)  # +1 run start, -1 run end
    starts = (edges == 1).nonzero()
    run_rows, run_starts = starts[:, 0], starts[:, 1]
    run_lengths = (edges == -1).nonzero()[:, 1] - run_starts
    window_widths = run_lengths + 2
    window_offsets = torch.cumsum(window_widths, 0) - window_widths
    strip_width = int(window_widths.sum())
    run_of_column = torch.repeat_interleave(torch.arange(len(run_lengths), device=device), window_widths)
    # padded column of strip column j: run start - 1 (+1 for the padding) + offset in window
    columns = run_starts[run_of_column] + torch.arange(strip_width, device=device) - window_offsets[run_of_column]
    top_rows = run_rows[run_of_column]  # padded row of the window's top row (row - 1 + 1)
    strip_rows = torch.stack([(top_rows + dy) * padded_width + columns for dy in range(3)]).reshape(-1)
    output_starts = torch.repeat_interleave(window_offsets, run_lengths)
    within_run = torch.arange(positions.numel(), device=device) - torch.repeat_interleave(
        torch.cumsum(run_lengths, 0) - run_lengths, run_lengths)
    strip_valid = output_starts + within_run
    return SpatialIndex(height, width, positions, padded_positions, strip_rows, strip_valid)


@dataclass
class SplitConv:
    """One 3x3 conv (no bias) split by the channel masks of its input and output layers.

    ``dense_to_dense``: kernel on the dense channel subsets (None if either is empty).
    ``at_mask``: kernel applied at masked positions to the input channels ordered
    ``[dense_in, sparse_in]``; its output channels are ``[dense_out, sparse_out]`` when
    there are sparse inputs, else ``sparse_out`` only; the dense_out x dense_in block is
    zero. None when nothing is computed at masked positions.
    """

    dense_in: torch.Tensor
    sparse_in: torch.Tensor
    dense_out: torch.Tensor
    sparse_out: torch.Tensor
    dense_to_dense: torch.Tensor | None
    at_mask: torch.Tensor | None

    def macs(self, positions: int, masked: float) -> float:
        """Multiply-adds the split needs (dense->dense everywhere, the rest at the mask)."""
        d_in, s_in = len(self.dense_in), len(self.sparse_in)
        d_out, s_out = len(self.dense_out), len(self.sparse_out)
        return 9 * (d_in * d_out * positions + d_in * s_out * masked + s_in * (d_out + s_out) * masked)

    def executed_macs(self, positions: int, strip_outputs: float) -> float:
        """Multiply-adds this implementation runs: the zero block of ``at_mask`` and the
        discarded junction outputs included (``strip_outputs`` = strip width - 2)."""
        total = 0.0
        if self.dense_to_dense is not None:
            total += self.dense_to_dense.numel() * positions
        if self.at_mask is not None:
            total += self.at_mask.numel() * strip_outputs
        return total


def split_conv(weight: torch.Tensor, dense_in: torch.Tensor, sparse_in: torch.Tensor,
               dense_out: torch.Tensor, sparse_out: torch.Tensor) -> SplitConv:
    dense_to_dense = at_mask = None
    if len(dense_in) and len(dense_out):
        dense_to_dense = weight[dense_out][:, dense_in].contiguous()
    outputs = torch.cat([dense_out, sparse_out]) if len(sparse_in) else sparse_out
    if len(outputs):
        at_mask = weight[outputs][:, torch.cat([dense_in, sparse_in])].clone()
        if len(sparse_in):
            at_mask[: len(dense_out), : len(dense_in)] = 0
        at_mask = at_mask.contiguous()
    return SplitConv(dense_in, sparse_in, dense_out, sparse_out, dense_to_dense, at_mask)


class Workspace:
    """Reusable scratch buffers. Large fresh CPU allocations are page-faulted in on every
    call (they cost as much as the gathers themselves), so the padded inputs and the
    gathered patches are written into buffers kept between layers and forwards."""

    def __init__(self):
        self._buffers: dict[tuple, torch.Tensor] = {}

    def get(self, name: str, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
        # inference tensors may not be written outside inference mode (and vice versa)
        key = (name, like.dtype, like.device, torch.is_inference_mode_enabled())
        buffer = self._buffers.get(key)
        if buffer is None or buffer.numel() < rows * cols:
            buffer = torch.empty(max(rows * cols, 1), dtype=like.dtype, device=like.device)
            self._buffers[key] = buffer
        return buffer[: rows * cols].view(rows, cols)

    def clear(self) -> None:
        self._buffers.clear()


def channel_rows(feature: torch.Tensor) -> torch.Tensor:
    """``1 x C x H x W`` channels-last tensor -> its ``H W x C`` row view (no copy)."""
    _, channels, height, width = feature.shape
    return feature.permute(0, 2, 3, 1).view(height * width, channels)


def rows_to_feature(rows: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """``H W x C`` rows -> ``1 x C x H x W`` channels-last view (no copy)."""
    return rows.view(1, height, width, rows.shape[1]).permute(0, 3, 1, 2)


def _padded_input(dense: torch.Tensor, sparse: torch.Tensor | None, index: SpatialIndex,
                  workspace: Workspace) -> torch.Tensor:
    """``(H+2)(W+2) x (C_d + C_s)`` rows: dense channels, then sparse ones (zero off-mask)."""
    d_in = dense.shape[1]
    s_in = 0 if sparse is None else sparse.shape[1]
    height, width = index.height, index.width
    padded = workspace.get("padded", (height + 2) * (width + 2), d_in + s_in, dense)
    grid = padded.view(height + 2, width + 2, d_in + s_in)
    grid[0].zero_()
    grid[-1].zero_()
    grid[:, 0].zero_()
    grid[:, -1].zero_()
    if d_in:
        grid[1:-1, 1:-1, :d_in].copy_(dense[0].permute(1, 2, 0))
    if s_in:
        grid[1:-1, 1:-1, d_in:].zero_()
        padded[:, d_in:].index_copy_(0, index.padded_positions, sparse)
    return padded


def _strip_product(rows: torch.Tensor, index: SpatialIndex, kernel: torch.Tensor,
                   workspace: Workspace) -> torch.Tensor:
    """``kernel`` applied at each masked position: copy the run windows into a
    ``1 x C x 3 x W_strip`` channels-last strip, valid 3x3 conv, keep the run outputs."""
    channels, strip_width = rows.shape[1], index.strip_width
    strip = workspace.get("strip", 3 * strip_width, channels, rows)
    torch.index_select(rows, 0, index.strip_rows, out=strip)
    strip = strip.view(1, 3, strip_width, channels).permute(0, 3, 1, 2)
    out = F.conv2d(strip, kernel).contiguous(memory_format=torch.channels_last)
    return out.permute(0, 2, 3, 1).view(strip_width - 2, kernel.shape[0]).index_select(0, index.strip_valid)


def sparse_conv3x3(dense: torch.Tensor, sparse: torch.Tensor | None, conv: SplitConv,
                   index: SpatialIndex, workspace: Workspace) -> tuple[torch.Tensor, torch.Tensor]:
    """One split 3x3 conv (no bias).

    ``dense``: ``1 x C_d x H x W`` channels-last (``C_d`` may be 0); ``sparse``: ``N x C_s``
    rows of the sparse channels at the masked positions, or None. Returns the dense output
    (channels-last) and the sparse output rows ``N x C_s_out``.
    """
    height, width, count = index.height, index.width, index.count
    d_out, s_out = len(conv.dense_out), len(conv.sparse_out)
    if conv.dense_to_dense is not None:
        dense_out = F.conv2d(dense, conv.dense_to_dense, padding=1)
        dense_out = dense_out.contiguous(memory_format=torch.channels_last)
    else:
        dense_out = dense.new_zeros(1, d_out, height, width).contiguous(memory_format=torch.channels_last)
    if conv.at_mask is None or not count:
        return dense_out, dense.new_zeros(count, s_out)
    product = _strip_product(_padded_input(dense, sparse, index, workspace), index, conv.at_mask, workspace)
    if len(conv.sparse_in):
        if d_out:
            channel_rows(dense_out).index_add_(0, index.positions, product[:, :d_out])
        return dense_out, product[:, d_out:]
    return dense_out, product
