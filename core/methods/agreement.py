"""Where attention agrees with attributions: Spearman's rank correlation between what each head
(and attention rollout, and norm-based attention) gives the keys from the target's position and
what each attribution method gives the same tokens (Jain & Wallace 2019, "Attention is not
Explanation"; Wiegreffe & Pinter 2019, "Attention is not not Explanation").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from core.methods.attention_gradient import relevance_row
from core.methods.norms import norm_based_attention
from core.methods.rollout import rollout

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel
    from core.methods.attribution import Attributions

__all__ = ["Agreement", "agreement", "agreement_table", "compared_keys", "ranks", "spearman"]


def ranks(values: Tensor) -> Tensor:
    """Ranks along the last axis, 1 for the smallest, ties given their average rank.
    ``(..., n) -> (..., n)``, float64.

    >>> ranks(torch.tensor([0.3, 0.1, 0.3, 0.7]))
    tensor([2.5000, 1.0000, 2.5000, 4.0000], dtype=torch.float64)
    """
    x = values.double()
    below = (x[..., None, :] < x[..., :, None]).sum(dim=-1)  # (..., n): how many are smaller
    equal = (x[..., None, :] == x[..., :, None]).sum(dim=-1)  # (..., n): itself included
    return below.double() + (equal.double() + 1) / 2


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Spearman's rank correlation ``ρ = corr(rank(a), rank(b))`` (Pearson's r of the average
    ranks, so ties are handled; Spearman 1904) along the last axis, broadcast over the leading
    ones: ``(..., n), (..., n) -> (...)``, float64; NaN where either side is constant.

    >>> spearman(torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([10.0, 20.0, 40.0, 30.0]))
    tensor(0.8000, dtype=torch.float64)
    >>> spearman(torch.tensor([[1.0, 2.0, 3.0], [1.0, 1.0, 1.0]]), torch.tensor([3.0, 2.0, 1.0]))
    tensor([-1., nan], dtype=torch.float64)
    """
    ra, rb = ranks(a), ranks(b)
    ra = ra - ra.mean(dim=-1, keepdim=True)
    rb = rb - rb.mean(dim=-1, keepdim=True)
    denominator = (ra.square().sum(dim=-1) * rb.square().sum(dim=-1)).sqrt()
    numerator = (ra * rb).sum(dim=-1)
    return torch.where(denominator > 0, numerator / denominator, torch.nan)


def compared_keys(
    special: tuple[bool, ...], query_positions: tuple[int, ...], *, causal: bool
) -> tuple[int, ...]:
    """The tokens both sides rank: the ordinary tokens (no [CLS], [SEP], BOS), and in a decoder
    only those the target's position sees (keys after it get no attention and no attribution).

    >>> compared_keys((True, False, False, False), (2,), causal=True)
    (1, 2)
    """
    last = max(query_positions) if causal else len(special) - 1
    return tuple(j for j, s in enumerate(special) if not s and j <= last)


@dataclass(frozen=True, eq=False)
class Agreement:
    """Spearman's ρ between attention from the target position and each attribution's
    magnitude, float64 (NaN where one side is constant over the keys compared).

    ``heads[l, h, m]`` for head (l, h) and method ``methods[m]``; ``rollout[m]`` for attention
    rollout (Abnar & Zuidema 2020) at the last layer; ``norms[l, m]`` for norm-based attention
    (Kobayashi et al. 2020) of layer l."""

    methods: tuple[str, ...]
    keys: tuple[int, ...]  # positions compared
    heads: Tensor  # (n_layers, n_heads, n_methods)
    rollout: Tensor  # (n_methods,)
    norms: Tensor  # (n_layers, n_methods)

    def rows(self, sort_by: str | None = None) -> list[dict[str, Any]]:
        """One row per head, then rollout, then each layer's norm-based attention: ``source``,
        ``layer``, ``head`` and one column per method; sorted by ``sort_by`` (a method), highest
        ρ first, NaN last."""
        out: list[dict[str, Any]] = []
        n_layers, n_heads, _ = self.heads.shape
        for layer in range(n_layers):
            for head in range(n_heads):
                out.append(self._row("head", layer, head, self.heads[layer, head]))
        out.append(self._row("rollout", None, None, self.rollout))
        for layer in range(n_layers):
            out.append(self._row("norms", layer, None, self.norms[layer]))
        if sort_by is not None:
            column = self.methods.index(sort_by)
            out.sort(key=lambda row: _descending(row[self.methods[column]]))
        return out

    def _row(self, source: str, layer: int | None, head: int | None, values: Tensor) -> dict:
        row: dict[str, Any] = {"source": source, "layer": layer, "head": head}
        row.update({m: float(v) for m, v in zip(self.methods, values.tolist(), strict=True)})
        return row


def _descending(value: float) -> tuple[bool, float]:
    return (value != value, -value if value == value else 0.0)  # NaN last


def agreement_table(
    attentions: Tensor,
    norms: Tensor,
    scores: dict[str, Tensor],
    query_positions: tuple[int, ...],
    keys: tuple[int, ...],
) -> Agreement:
    """:class:`Agreement` from ``attentions`` ``(L, H, T, T)``, norm-based attention ``norms``
    ``(L, T, T)`` and token ``scores`` ``{method: (T,)}``: each map's row at the target (the mean
    of ``query_positions``' rows) against ``|score|`` over ``keys``. Magnitudes, because
    attention is never negative: a token that pushes the target down matters as much as one
    that pushes it up."""
    methods = tuple(scores)
    keep = list(keys)
    wanted = torch.stack([scores[m].abs()[keep] for m in methods])  # (M, K)
    rows = attentions[..., list(query_positions), :].mean(dim=-2)[..., keep]  # (L, H, K)
    rolled = relevance_row(rollout(attentions)[-1], query_positions)[keep]  # (K,)
    norm_rows = norms[..., list(query_positions), :].mean(dim=-2)[..., keep]  # (L, K)
    return Agreement(
        methods=methods,
        keys=keys,
        heads=spearman(rows[:, :, None, :], wanted),  # (L, H, M)
        rollout=spearman(rolled[None, :], wanted),  # (M,)
        norms=spearman(norm_rows[:, None, :], wanted),  # (L, M)
    )


def agreement(loaded: LoadedModel, analysis: Analysis, attributions: Attributions) -> Agreement:
    """:func:`agreement_table` for ``attributions`` of ``analysis``: attention and norm-based
    attention from one more forward pass of its own inputs (hooks always removed)."""
    norm = norm_based_attention(loaded, analysis)
    target = attributions.target
    keys = compared_keys(analysis.special, target.query_positions, causal=loaded.causal)
    return agreement_table(
        norm.attentions, norm.layer_norms, attributions.scores(), target.query_positions, keys
    )
