"""Statistics of attention over image patches, rollout onto patches, and the patch-to-pixel
mapping the overlay draws with. Pure functions: tensors in, tensors out.

Tokens are ``n_prefix`` prefix tokens ([CLS], [DIST], registers) then the ``rows x cols`` patches
in row-major order, as :mod:`core.engine.vision` makes them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine import stats
from core.methods.rollout import rollout

if TYPE_CHECKING:
    from core.engine.vision import ImageAnalysis

__all__ = [
    "SINK_NORM_RATIO",
    "PatchStatistics",
    "high_norm_patches",
    "mean_attention_distance",
    "patch_boxes",
    "patch_distances",
    "patch_entropy",
    "patch_at",
    "patch_map",
    "patch_statistics",
    "patch_to_pixels",
    "sink_share",
]

# A patch whose output norm is this many times the median patch norm is a high-norm token.
SINK_NORM_RATIO = 2.0


def patch_boxes(grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Each patch's pixel rectangle ``[x0, y0, x1, y1)`` on an image of ``size = (height,
    width)``, row-major: ``(rows * cols, 4)``. Patch (r, c) covers columns ``c*W/cols ..
    (c+1)*W/cols`` and rows ``r*H/rows .. (r+1)*H/rows`` (rounded down).

    A 2 x 3 grid on a 4 x 6 image: every patch is 2 x 2 pixels.

    >>> patch_boxes((2, 3), (4, 6)).tolist()
    [[0, 0, 2, 2], [2, 0, 4, 2], [4, 0, 6, 2], [0, 2, 2, 4], [2, 2, 4, 4], [4, 2, 6, 4]]
    """
    rows, cols = grid
    height, width = size
    r = torch.arange(rows).repeat_interleave(cols)  # (N,)
    c = torch.arange(cols).repeat(rows)  # (N,)
    return torch.stack(
        [c * width // cols, r * height // rows, (c + 1) * width // cols, (r + 1) * height // rows],
        dim=-1,
    )


def patch_to_pixels(values: Tensor, grid: tuple[int, int], size: tuple[int, int]) -> Tensor:
    """Per-patch ``values`` ``(rows * cols,)`` painted onto an image of ``size = (height,
    width)``: pixel (y, x) takes the value of patch ``(y * rows // H, x * cols // W)``,
    ``(height, width)``. The overlay is this map.

    >>> patch_to_pixels(torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0, 6.0]), (2, 3), (4, 6))
    tensor([[1., 1., 2., 2., 3., 3.],
            [1., 1., 2., 2., 3., 3.],
            [4., 4., 5., 5., 6., 6.],
            [4., 4., 5., 5., 6., 6.]])
    """
    rows, cols = grid
    height, width = size
    row_of = torch.arange(height) * rows // height  # (H,)
    col_of = torch.arange(width) * cols // width  # (W,)
    return values.reshape(rows, cols)[row_of][:, col_of]  # (H, W)


def patch_at(grid: tuple[int, int], size: tuple[int, int], x: float, y: float) -> int | None:
    """The patch (row-major index) holding pixel ``(x, y)`` of an image of ``size = (height,
    width)``, the inverse of :func:`patch_boxes`; None outside the image.

    >>> patch_at((2, 3), (4, 6), 4.5, 3.0), patch_at((2, 3), (4, 6), 6.0, 0.0)
    (5, None)
    """
    rows, cols = grid
    height, width = size
    if not (0 <= x < width and 0 <= y < height):
        return None
    boxes = patch_boxes(grid, size)  # (N, 4)
    col = int((boxes[:cols, 0] <= x).sum()) - 1
    row = int((boxes[::cols, 1] <= y).sum()) - 1
    return row * cols + col


def patch_distances(grid: tuple[int, int]) -> Tensor:
    """Euclidean distance between patch centres in patches, ``(N, N)`` with ``N = rows * cols``.

    >>> patch_distances((1, 3))
    tensor([[0., 1., 2.],
            [1., 0., 1.],
            [2., 1., 0.]])
    """
    rows, cols = grid
    r = torch.arange(rows).repeat_interleave(cols).float()  # (N,)
    c = torch.arange(cols).repeat(rows).float()  # (N,)
    return torch.sqrt((r[:, None] - r[None, :]) ** 2 + (c[:, None] - c[None, :]) ** 2)


def mean_attention_distance(attn: Tensor, grid: tuple[int, int], n_prefix: int) -> Tensor:
    """Mean attention distance in patches (Dosovitskiy et al. 2021, "An Image is Worth 16x16
    Words", Fig. 7, there in pixels: multiply by the patch size): over patch queries i,
    ``D = mean_i sum_j a[i, j] d(i, j) / sum_j a[i, j]`` with j over patches only (attention to
    prefix tokens has no place on the image). ``(..., T, T) -> (...)``.

    Query 0 looks at patches 0 and 2 equally (distance 2 x 0.5 = 1), query 2 at patch 1 (1):

    >>> a = torch.tensor([[0.5, 0.0, 0.5], [0.0, 1.0, 0.0], [0.0, 1.0, 0.0]])
    >>> mean_attention_distance(a, (1, 3), 0)  # (1 + 0 + 1) / 3
    tensor(0.6667)
    """
    patches = attn[..., n_prefix:, n_prefix:]  # (..., N, N)
    mass = patches.sum(dim=-1).clamp_min(torch.finfo(attn.dtype).tiny)  # (..., N)
    moved = (patches * patch_distances(grid).to(attn.dtype)).sum(dim=-1)  # (..., N)
    return (moved / mass).mean(dim=-1)


def patch_entropy(attn: Tensor, n_prefix: int) -> Tensor:
    """Mean row entropy of the patch queries (every key, prefix tokens included), nats:
    ``(..., T, T) -> (...)``.

    >>> patch_entropy(torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.5, 0.0, 0.5]]), 1)
    tensor(0.6931)
    """
    return stats.row_entropy(attn[..., n_prefix:, :]).mean(dim=-1)


def high_norm_patches(norms: Tensor, n_prefix: int, ratio: float = SINK_NORM_RATIO) -> Tensor:
    """Patches whose output norm exceeds ``ratio`` x the median patch norm: the high-norm,
    low-information tokens that Darcet et al. 2024 ("Vision Transformers Need Registers") found
    large ViTs repurpose as global sinks. ``(T,) -> (T,)`` bool, prefix tokens False.

    >>> high_norm_patches(torch.tensor([9.0, 1.0, 1.2, 8.0, 0.9]), 1)
    tensor([False, False, False,  True, False])
    """
    patches = norms[n_prefix:]
    flagged = patches > ratio * patches.median()
    return torch.cat([torch.zeros(n_prefix, dtype=torch.bool), flagged])


def sink_share(attn: Tensor, keys: Tensor) -> Tensor:
    """Share of attention on the ``keys`` (bool ``(T,)``: registers, high-norm patches),
    averaged over every query: ``s = mean_i sum_{j in keys} a[i, j]``. ``(..., T, T) -> (...)``.

    >>> sink_share(torch.tensor([[0.2, 0.8], [0.6, 0.4]]), torch.tensor([True, False]))
    tensor(0.4000)
    """
    return attn[..., keys].sum(dim=-1).mean(dim=-1)


def patch_map(image: ImageAnalysis, attn: Tensor, query: int = 0) -> Tensor:
    """One query's attention (``query``: a token index, 0 for [CLS]) over the patches, as the
    ``(rows, cols)`` grid: ``attn`` ``(T, T)`` (a head, a head average or rollout)."""
    return attn[query, image.n_prefix :].reshape(image.grid)  # (rows, cols)


def patch_rollout(image: ImageAnalysis, residual: float = 0.5) -> Tensor:
    """Attention rollout (Abnar & Zuidema 2020, :func:`core.methods.rollout.rollout`) of every
    layer, ``(n_layers, T, T)``: row 0 of the last layer is how much of [CLS] traces back to each
    input patch."""
    return rollout(image.analysis.attentions, residual=residual)  # (L, T, T)


@dataclass(frozen=True)
class PatchStatistics:
    """Per-head statistics of an image's attention, each ``(n_layers, n_heads)``."""

    entropy: Tensor  # mean row entropy of patch queries, nats
    distance: Tensor  # mean attention distance, patches
    register_share: Tensor  # attention on prefix tokens other than [CLS] (registers, [DIST])
    sink_share: Tensor  # attention on registers and high-norm patches
    sinks: tuple[int, ...]  # token positions of the high-norm patches


def patch_statistics(image: ImageAnalysis, ratio: float = SINK_NORM_RATIO) -> PatchStatistics:
    """Entropy, mean attention distance and sink shares of every head of ``image``."""
    attn = image.analysis.attentions  # (L, H, T, T)
    seq_len = attn.shape[-1]
    registers = torch.zeros(seq_len, dtype=torch.bool)
    registers[1 : image.n_prefix] = True
    high = high_norm_patches(image.norms, image.n_prefix, ratio)  # (T,)
    return PatchStatistics(
        entropy=patch_entropy(attn, image.n_prefix),
        distance=mean_attention_distance(attn, image.grid, image.n_prefix),
        register_share=sink_share(attn, registers),
        sink_share=sink_share(attn, registers | high),
        sinks=tuple(int(i) for i in torch.nonzero(high).flatten()),
    )
