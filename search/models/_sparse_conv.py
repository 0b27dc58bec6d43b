"""Sparse 3x3 convolution on a spatial mask, as gather + GEMM (SMSR's inference path).

A layer's channels are split by a hard channel mask into *dense* channels (computed at
every position) and *sparse* channels (computed only where the spatial mask is 1, zero
elsewhere). A convolution from layer ``i-1`` to layer ``i`` then splits into four parts:

* dense -> dense   every position: a plain ``conv2d`` on the dense channel subsets;
* dense -> sparse  masked positions only: the 3x3 neighbourhoods of the dense input at
                   those positions are gathered and multiplied by the kernel;
* sparse -> dense  masked positions only (the sparse input is zero elsewhere, and SMSR adds
* sparse -> sparse its contribution to dense outputs only at masked positions): the sparse
                   input's neighbourhoods are gathered (a zero row stands for unmasked
                   neighbours) and one product gives both outputs.

Features are kept channels-last (``H W x C`` rows), so a gather copies whole rows and the
results scatter back into the dense map with ``index_add_`` on rows.

The gathered neighbourhoods are laid out as a ``C x 3 x 3N`` channels-last "patch strip"
(patch ``n`` in columns ``3n..3n+2``), so the product is a 3x3 convolution with stride 3:
the same multiply-adds as ``(N x 9C) @ (9C x C_out)``, but run by oneDNN's direct
convolution, which on CPU is markedly faster than BLAS for these skinny shapes.

Multiply-accumulates of one layer (``P`` = all positions, ``N`` = masked positions)::

    9 * (Cd_in * Cd_out * P + Cd_in * Cs_out * N + Cs_in * (Cd_out + Cs_out) * N)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass
class SpatialIndex:
    """Where the spatial mask is 1, and the row indices of each position's 3x3 neighbours."""

    height: int
    width: int
    positions: torch.Tensor  # (N,) flat indices h * W + w of masked positions
    # neighbour rows in patch-strip order (kernel row, position, kernel column), 9 N each:
    dense_neighbours: torch.Tensor  # rows of the zero-padded (H+2) x (W+2) grid
    sparse_neighbours: torch.Tensor  # rows of the sparse features; row N is the zero row

    @property
    def count(self) -> int:
        return int(self.positions.numel())


def build_spatial_index(mask: torch.Tensor) -> SpatialIndex:
    """Index of a boolean ``H x W`` mask."""
    if mask.ndim != 2:
        raise ValueError(f"spatial mask must be H x W, got shape {tuple(mask.shape)}")
    height, width = mask.shape
    device = mask.device
    positions = mask.reshape(-1).nonzero().squeeze(1)
    rows = positions // width
    cols = positions % width
    padded_width = width + 2
    centre = (rows + 1) * padded_width + (cols + 1)
    steps = torch.arange(-1, 2, device=device)
    dense_neighbours = (
        centre.view(1, -1, 1) + (steps * padded_width).view(3, 1, 1) + steps.view(1, 1, 3)
    ).reshape(-1)
    count = positions.numel()
    sparse_rows = torch.full(((height + 2) * padded_width,), count, dtype=torch.long, device=device)
    sparse_rows[centre] = torch.arange(count, device=device)
    sparse_neighbours = sparse_rows[dense_neighbours]
    return SpatialIndex(height, width, positions, dense_neighbours, sparse_neighbours)


@dataclass
class SplitConv:
    """One conv's kernel split by the channel masks of its input and output layers.

    ``dense_in/sparse_in/dense_out/sparse_out`` are channel index tensors; the three parts
    are conv2d kernels (``sparse_to_all``: dense outputs first, then sparse ones).
    """

    kernel_size: int
    dense_in: torch.Tensor
    sparse_in: torch.Tensor
    dense_out: torch.Tensor
    sparse_out: torch.Tensor
    dense_to_dense: torch.Tensor | None
    dense_to_sparse: torch.Tensor | None
    sparse_to_all: torch.Tensor | None
    bias: torch.Tensor | None = None

    def macs(self, positions: int, masked: int) -> int:
        k2 = self.kernel_size ** 2
        d_in, s_in = len(self.dense_in), len(self.sparse_in)
        d_out, s_out = len(self.dense_out), len(self.sparse_out)
        return k2 * (d_in * d_out * positions + d_in * s_out * masked + s_in * (d_out + s_out) * masked)


def split_conv(weight: torch.Tensor, dense_in: torch.Tensor, sparse_in: torch.Tensor,
               dense_out: torch.Tensor, sparse_out: torch.Tensor,
               bias: torch.Tensor | None = None) -> SplitConv:
    kernel_size = weight.shape[-1]
    dense_to_dense = dense_to_sparse = sparse_to_all = None
    if len(dense_in) and len(dense_out):
        dense_to_dense = weight[dense_out][:, dense_in].contiguous()
    if len(dense_in) and len(sparse_out):
        dense_to_sparse = weight[sparse_out][:, dense_in].contiguous()
    if len(sparse_in):
        sparse_to_all = weight[torch.cat([dense_out, sparse_out])][:, sparse_in].contiguous()
    return SplitConv(kernel_size, dense_in, sparse_in, dense_out, sparse_out,
                     dense_to_dense, dense_to_sparse, sparse_to_all, bias)


class Workspace:
    """Reusable scratch buffers. Large fresh CPU allocations are page-faulted in on every
    call (they cost as much as the gathers themselves), so gathers and GEMMs write into
    buffers kept between layers and forwards."""

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


def _patch_strip(rows: torch.Tensor, neighbours: torch.Tensor, count: int, workspace: Workspace) -> torch.Tensor:
    """Gathered neighbourhoods as a ``1 x C x 3 x 3N`` channels-last patch strip."""
    channels = rows.shape[1]
    out = workspace.get("gathered", count * 9, channels, rows)
    torch.index_select(rows, 0, neighbours, out=out)
    return out.view(1, 3, 3 * count, channels).permute(0, 3, 1, 2)


def _patch_product(strip: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Each 3x3 patch of the strip times ``kernel``: ``N x C_out`` rows."""
    out = F.conv2d(strip, kernel, stride=3).contiguous(memory_format=torch.channels_last)
    return out.permute(0, 2, 3, 1).view(strip.shape[-1] // 3, kernel.shape[0])


def gather_dense_neighbours(dense: torch.Tensor, index: SpatialIndex, workspace: Workspace) -> torch.Tensor:
    """Patch strip of a channels-last dense map's 3x3 neighbourhoods at the masked positions."""
    channels, height, width = dense.shape[1], index.height, index.width
    padded = workspace.get("padded", (height + 2) * (width + 2), channels, dense).view(height + 2, width + 2, channels)
    padded[0].zero_()
    padded[-1].zero_()
    padded[:, 0].zero_()
    padded[:, -1].zero_()
    padded[1:-1, 1:-1].copy_(dense[0].permute(1, 2, 0))
    return _patch_strip(padded.view(-1, channels), index.dense_neighbours, index.count, workspace)


def sparse_conv3x3(dense: torch.Tensor, sparse_padded: torch.Tensor | None, conv: SplitConv,
                   index: SpatialIndex, workspace: Workspace, layer: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One split 3x3 conv (no bias).

    ``dense``: ``1 x C_d x H x W`` channels-last (``C_d`` may be 0); ``sparse_padded``:
    ``(N + 1) x C_s`` sparse rows plus a zero row, or None. Returns the dense output and the
    sparse output as ``(N + 1) x C_s_out`` rows (zero last row), a workspace buffer named
    after ``layer`` (valid until the same layer index is computed again).
    """
    height, width, count = index.height, index.width, index.count
    d_out, s_out = len(conv.dense_out), len(conv.sparse_out)
    if conv.dense_to_dense is not None:
        dense_out = F.conv2d(dense, conv.dense_to_dense, padding=1)
        dense_out = dense_out.contiguous(memory_format=torch.channels_last)
    else:
        dense_out = dense.new_zeros(1, d_out, height, width).contiguous(memory_format=torch.channels_last)
    sparse_out_padded = workspace.get(f"sparse{layer}", count + 1, s_out, dense)
    sparse_out_padded[count].zero_()
    sparse_out = sparse_out_padded[:count]
    if not count:
        return dense_out, sparse_out_padded
    from_dense = None
    if conv.dense_to_sparse is not None:
        from_dense = _patch_product(gather_dense_neighbours(dense, index, workspace), conv.dense_to_sparse)
    if conv.sparse_to_all is not None:
        strip = _patch_strip(sparse_padded, index.sparse_neighbours, count, workspace)
        both = _patch_product(strip, conv.sparse_to_all)
        if d_out:
            channel_rows(dense_out).index_add_(0, index.positions, both[:, :d_out])
        if s_out:
            if from_dense is None:
                sparse_out.copy_(both[:, d_out:])
            else:
                torch.add(from_dense, both[:, d_out:], out=sparse_out)
    elif from_dense is not None:
        sparse_out.copy_(from_dense)
    else:
        sparse_out.zero_()
    return dense_out, sparse_out_padded
