"""The most-attended table: key positions ranked by the attention they receive, per layer or per
head, plain (the share of all attention) or visibility-normalised with the sink shown apart.
:meth:`core.engine.analysis.Analysis.most_attended` reads it; the formulas are in
:mod:`core.engine.stats`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from torch import Tensor

from core.engine import stats

__all__ = ["RANKINGS", "AttendedToken", "Ranking", "attended_tokens"]

# "plain": r[j] = mean_i a[i, j], the share of all attention (the seed's definition, the default);
# "visible": v[j] = sum_i a[i, j] / n_j over the n_j queries that can see key j, with position 0
# (the attention sink) shown apart from the content tokens.
Ranking = Literal["plain", "visible"]
RANKINGS: tuple[Ranking, ...] = ("plain", "visible")


@dataclass(frozen=True)
class AttendedToken:
    """One row of the most-attended table: key ``position`` received ``share`` of the attention.

    ``rank`` 1 is the most attended. In the ``"visible"`` ranking the sink (position 0) comes
    first with ``rank`` 0 and ``sink`` true, and ``seen_by`` is the number of queries that can see
    the key (``T - j`` in a decoder): the share is an average over that many rows.
    """

    layer: int
    head: int | None  # None: the layer average
    rank: int  # 1 = most attended; 0 = the sink, shown apart ("visible" ranking)
    position: int
    token: str
    share: float
    sink: bool = False
    seen_by: int | None = None  # "visible" ranking only


def attended_tokens(
    received: Tensor,
    tokens: Sequence[str],
    top_k: int,
    *,
    per_head: bool,
    causal: bool,
    ranking: Ranking = "plain",
) -> tuple[AttendedToken, ...]:
    """The table rows from ``received`` ``r[l, h, j] = mean_i a[l, h, i, j]`` ``(L, H or 1, T)``
    (``H = 1``: the layer average, ``head`` None unless ``per_head``).

    ``"plain"``: the ``top_k`` keys by ``r``. ``"visible"``: position 0 apart (rank 0), then the
    ``top_k`` other keys by :func:`core.engine.stats.visibility_normalized`.

    >>> import torch
    >>> causal_uniform = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    >>> r = stats.received_attention(causal_uniform).reshape(1, 1, 3)  # [11/18, 5/18, 2/18]
    >>> [(t.rank, t.position, round(t.share, 4)) for t in attended_tokens(
    ...     r, "abc", 2, per_head=False, causal=True)]
    [(1, 0, 0.6111), (2, 1, 0.2778)]
    >>> [(t.rank, t.position, round(t.share, 4), t.sink, t.seen_by) for t in attended_tokens(
    ...     r, "abc", 2, per_head=False, causal=True, ranking="visible")]
    [(0, 0, 0.6111, True, 3), (1, 1, 0.4167, False, 2), (2, 2, 0.3333, False, 1)]
    """
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {RANKINGS}, got {ranking!r}")
    seq_len = received.shape[-1]
    rows: list[AttendedToken] = []
    if ranking == "plain":
        shares, positions = stats.top_k_positions(received, top_k)  # (L, H, k)
        for layer in range(shares.shape[0]):
            for index in range(shares.shape[1]):
                head = index if per_head else None
                ranked = zip(shares[layer, index].tolist(), positions[layer, index].tolist())
                for rank, (share, position) in enumerate(ranked, start=1):
                    rows.append(AttendedToken(layer, head, rank, position, tokens[position], share))
        return tuple(rows)
    visible = stats.visibility_normalized(received, causal=causal)  # (L, H, T)
    seen_by = stats.visible_queries(seq_len, causal=causal).tolist()  # (T,)
    if seq_len > 1:
        shares, positions = stats.top_k_positions(visible[..., 1:], top_k)  # (L, H, k)
        positions = positions + 1  # positions among keys 1..T-1
    for layer in range(visible.shape[0]):
        for index in range(visible.shape[1]):
            head = index if per_head else None
            sink_share = float(visible[layer, index, 0])
            rows.append(AttendedToken(layer, head, 0, 0, tokens[0], sink_share, True, seen_by[0]))
            if seq_len < 2:
                continue
            ranked = zip(shares[layer, index].tolist(), positions[layer, index].tolist())
            for rank, (share, position) in enumerate(ranked, start=1):
                label, seen = tokens[position], seen_by[position]
                rows.append(AttendedToken(layer, head, rank, position, label, share, False, seen))
    return tuple(rows)
