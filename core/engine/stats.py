"""Attention statistics: pure functions from attention tensors to numbers.

Every function takes attention probabilities laid out ``(..., query_pos, key_pos)`` (usually
``(n_layers, n_heads, seq_len, seq_len)``), never modifies its input, and is vectorised over the
leading axes. Logarithms are natural; ``0 * ln 0`` is taken as 0 (``torch.special.entr``).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = [
    "choice_queries",
    "head_entropy",
    "layer_average",
    "layer_entropy",
    "max_entropy",
    "normalize_row_entropy",
    "pooled_attention",
    "query_mean",
    "received_attention",
    "row_entropy",
    "top_k_positions",
    "visibility_normalized",
    "visible_keys",
    "visible_queries",
]


# Above this many elements, row entropies are taken in blocks of whole rows (about 2 MB of
# float32 each): measured on 2 cores, 256 kB blocks spent more on per-call overhead than they
# gained in cache hits (3.0 ms vs 2.2 ms for 12 x 512 x 512, 55 ms vs 29 ms for 9 x 2048 x 2048).
_CHUNK_ELEMENTS = 1 << 19
# Below this many, one fused ``entr`` call is quicker than any loop.
_SMALL_ELEMENTS = 1 << 16


def row_entropy(attn: Tensor) -> Tensor:
    """Entropy of every attention row: ``H[..., i] = -sum_j a[..., i, j] * ln a[..., i, j]``.

    Shapes: ``(..., query_pos, key_pos) -> (..., query_pos)``. A uniform row over k keys gives
    ``ln k``; a one-hot row gives 0.

    >>> a = torch.tensor([[0.5, 0.5, 0.0], [1.0, 0.0, 0.0], [0.25, 0.25, 0.5]])
    >>> row_entropy(a)  # ln 2, 0, 1.5 ln 2
    tensor([0.6931, 0.0000, 1.0397])
    """
    if attn.dim() < 2 or attn.numel() < _SMALL_ELEMENTS:
        # entr(x) = -x ln x with entr(0) = 0, i.e. -xlogy(x, x); one-hot rows give +0, not -0.
        return torch.special.entr(attn).sum(dim=-1)
    # Large maps (the layer-by-layer path sees n_heads x T x T at once): the same sum, taken in
    # blocks of rows through one scratch buffer, 2-3x faster than entr and never a full-size copy.
    n_keys = attn.shape[-1]
    flat = attn.reshape(-1, n_keys)  # (N * Q, K), a view when the input is contiguous
    out = torch.empty(flat.shape[0], dtype=attn.dtype, device=attn.device)  # (N * Q,)
    rows = max(1, _CHUNK_ELEMENTS // n_keys)
    scratch = torch.empty(min(rows, flat.shape[0]), n_keys, dtype=attn.dtype, device=attn.device)
    tiny = torch.finfo(attn.dtype).tiny
    for start in range(0, flat.shape[0], rows):
        block = flat[start : start + rows]  # (r, K), a view of the input
        buf = scratch[: block.shape[0]]
        torch.clamp_min(block, tiny, out=buf)  # ln(tiny) is finite, and 0 * ln(tiny) = 0
        buf.log_().mul_(block)  # x ln x, in the scratch buffer only
        torch.sum(buf, dim=-1, out=out[start : start + rows])
    return out.neg_().add_(0.0).reshape(attn.shape[:-1])


def head_entropy(attn: Tensor) -> Tensor:
    """Head entropy ``E[l, h] = mean_i -sum_j a[l, h, i, j] * ln a[l, h, i, j]``.

    The mean over query positions of each row's entropy. Shapes: ``(..., query_pos, key_pos) ->
    (...)``, e.g. ``(n_layers, n_heads, seq_len, seq_len) -> (n_layers, n_heads)``.

    >>> uniform = torch.full((1, 1, 4, 4), 0.25)        # every row uniform over 4 keys
    >>> round(head_entropy(uniform).item(), 4) == round(math.log(4), 4)
    True
    >>> head_entropy(torch.eye(3).reshape(1, 1, 3, 3))  # one-hot rows
    tensor([[0.]])
    """
    return row_entropy(attn).mean(dim=-1)


def visible_keys(seq_len: int, *, causal: bool) -> Tensor:
    """How many keys each query position can see: ``seq_len`` in an encoder, ``i + 1`` when causal.

    >>> visible_keys(3, causal=False)
    tensor([3, 3, 3])
    >>> visible_keys(3, causal=True)
    tensor([1, 2, 3])
    """
    if causal:
        return torch.arange(1, seq_len + 1)
    return torch.full((seq_len,), seq_len)


def choice_queries(seq_len: int, *, causal: bool) -> Tensor:
    """Which query positions have a choice, i.e. see more than one key: every query of an
    encoder, ``i >= 1`` in a causal decoder (query 0 sees only itself, so its row is ``[1]``
    whatever the head does). Returns a bool ``(seq_len,)``. A one-token text has no query with a
    choice; then every query counts, so statistics over these queries stay defined.

    >>> choice_queries(3, causal=True), choice_queries(3, causal=False)
    (tensor([False,  True,  True]), tensor([True, True, True]))
    >>> choice_queries(1, causal=True)
    tensor([True])
    """
    chosen = visible_keys(seq_len, causal=causal) > 1
    return chosen if bool(chosen.any()) else torch.ones(seq_len, dtype=torch.bool)


def query_mean(values: Tensor, queries: Tensor | None = None) -> Tensor:
    """Mean over query positions of ``values`` ``(..., query_pos)``, over those where the bool
    ``queries`` ``(query_pos,)`` is true (None: all of them): ``mean_{i in Q} v[..., i]``.
    Shapes: ``(..., T) -> (...)``.

    >>> query_mean(torch.tensor([1.0, 0.5, 0.25]), torch.tensor([False, True, True]))  # 0.75 / 2
    tensor(0.3750)
    """
    if queries is None:
        return values.mean(dim=-1)
    weights = queries.to(values.device, values.dtype)  # (T,)
    return (values * weights).sum(dim=-1) / weights.sum().clamp_min(1.0)


def normalize_row_entropy(row_entropies: Tensor, *, causal: bool) -> Tensor:
    """Normalised row entropy: each row's entropy ``(..., query_pos)`` divided by ``ln k_i``,
    ``k_i`` the number of keys query i can see (``T`` in an encoder, ``i + 1`` when causal).

    A row that sees one key (``k_i = 1``, the first row of a decoder) has nothing to spread over
    and counts 0. Values lie in [0, 1]: 0 is one-hot, 1 is uniform over the visible keys. The
    normalised head entropy is its mean over queries: over every query (``normalized_head_entropy``,
    so a uniform causal head scores ``(T - 1) / T``), or over the queries with a choice
    (:func:`choice_queries`; ``normalized_head_entropy_choice``, 1 for a uniform causal head).

    It is not length-free: a head that always spreads evenly over ``m`` keys scores ``ln m / ln
    k_i`` on row i, which falls as texts get longer.

    >>> normalize_row_entropy(torch.tensor([0.0, math.log(2), math.log(3)]), causal=True)
    tensor([0., 1., 1.])
    >>> causal_uniform = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    >>> rows = normalize_row_entropy(row_entropy(causal_uniform), causal=True)
    >>> rows.mean()  # over every query: (0 + 1 + 1) / 3
    tensor(0.6667)
    >>> query_mean(rows, choice_queries(3, causal=True))  # over queries 1 and 2: (1 + 1) / 2
    tensor(1.)
    """
    seq_len = row_entropies.shape[-1]
    k = visible_keys(seq_len, causal=causal).to(row_entropies.device, row_entropies.dtype)  # (T,)
    log_k = torch.log(k)
    # ln 1 = 0: divide by 1 instead and zero the row, so a one-key row is 0, not 0/0.
    safe = torch.where(k > 1, log_k, torch.ones_like(log_k))
    return torch.where(k > 1, row_entropies / safe, torch.zeros_like(log_k))


def visible_queries(seq_len: int, *, causal: bool) -> Tensor:
    """How many queries can see each key position: ``seq_len`` in an encoder, ``T - j`` when
    causal (only queries ``i >= j`` see key j).

    >>> visible_queries(3, causal=True)
    tensor([3, 2, 1])
    """
    if causal:
        return torch.arange(seq_len, 0, -1)
    return torch.full((seq_len,), seq_len)


def visibility_normalized(received: Tensor, *, causal: bool) -> Tensor:
    """Attention key j receives per query that can see it: ``v[..., j] = sum_i a[..., i, j] / n_j``
    with ``n_j`` from :func:`visible_queries`, from ``received`` ``r[..., j] = mean_i a[..., i,
    j]`` (:func:`received_attention`) as ``v = r * T / n_j``. Shapes: ``(..., T) -> (..., T)``.

    In a decoder ``r[j]`` is at most ``(T - j) / T``, because only ``T - j`` queries can see key
    j, so ranking by ``r`` favours early positions whatever the content; ``v[j]`` lies in [0, 1]
    for every key (1: every query that can see key j puts all its attention there). It no longer
    sums to 1, and the last keys rest on few queries (key ``T - 1`` on one). In an encoder ``v =
    r``.

    Uniform causal attention over 3 tokens: key 0 gets 1, 1/2, 1/3 from its three queries, key 2
    gets 1/3 from the one query that sees it.

    >>> causal_uniform = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    >>> visibility_normalized(received_attention(causal_uniform), causal=True)
    tensor([0.6111, 0.4167, 0.3333])
    """
    seq_len = received.shape[-1]
    n = visible_queries(seq_len, causal=causal).to(received.device, received.dtype)  # (T,)
    return received * (seq_len / n)


def layer_average(attn: Tensor) -> Tensor:
    """Head-averaged attention ``A_l = mean_h a[l, h]``: ``(n_layers, n_heads, T, T) -> (n_layers,
    T, T)``. Rows still sum to 1.

    >>> a = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]).unsqueeze(0)
    >>> layer_average(a)
    tensor([[[0.5000, 0.5000],
             [0.5000, 0.5000]]])
    """
    return attn.mean(dim=-3)


def layer_entropy(attn: Tensor) -> Tensor:
    """Layer entropy: entropy of the head-averaged attention ``A_l``, averaged over queries.

    ``layer_entropy[l] = mean_i -sum_j A_l[i, j] * ln A_l[i, j]`` with ``A_l = mean_h a[l, h]``
    (the definition tutorials use). It is at least the mean of the layer's head entropies (entropy
    is concave), with equality when all heads agree. Shapes: ``(n_layers, n_heads, T, T) ->
    (n_layers,)``.

    Two one-hot heads pointing at different keys: each head has entropy 0, their average is
    uniform over two keys, so the layer entropy is ln 2.

    >>> a = torch.stack([torch.eye(2), torch.tensor([[0.0, 1.0], [1.0, 0.0]])]).unsqueeze(0)
    >>> layer_entropy(a)
    tensor([0.6931])
    >>> head_entropy(a).mean(dim=-1)  # the mean of its head entropies
    tensor([0.])
    """
    return head_entropy(layer_average(attn))


def received_attention(attn: Tensor) -> Tensor:
    """Attention each key position receives, averaged over queries: ``r[..., j] = mean_i a[..., i,
    j]``.

    Shapes: ``(..., query_pos, key_pos) -> (..., key_pos)``. Because every row sums to 1, ``r``
    sums to 1 too, so ``r[j]`` reads as key j's share of all attention. Pass a layer average
    ``A_l`` for the per-layer table or raw ``a[l, h]`` for the per-head one.

    >>> a = torch.tensor([[1.0, 0.0], [0.5, 0.5]])
    >>> received_attention(a)
    tensor([0.7500, 0.2500])
    """
    return attn.mean(dim=-2)


def top_k_positions(received: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The ``k`` largest entries along the last axis, largest first, ties broken by position.

    Returns ``(shares, positions)``, each ``(..., min(k, n))``.

    >>> top_k_positions(torch.tensor([0.2, 0.4, 0.2, 0.2]), 3)
    (tensor([0.4000, 0.2000, 0.2000]), tensor([1, 0, 2]))
    """
    if k < 1:
        raise ValueError(f"k must be at least 1, got {k}")
    k = min(k, received.shape[-1])
    shares, positions = torch.sort(received, dim=-1, descending=True, stable=True)
    return shares[..., :k], positions[..., :k]


def pooled_attention(attn: Tensor, size: int) -> Tensor:
    """A thumbnail of each ``(query_pos, key_pos)`` map by max-pooling blocks, at most ``size``
    on each side.

    Max (not mean) keeps sparse patterns visible: a previous-token head stays a sharp diagonal
    and an attention sink a bright column however long the input. Maps of at most ``size``
    positions are returned unchanged. Each axis is pooled on its own, so a rectangular map
    (cross-attention: target queries, source keys) stays rectangular. Shapes: ``(..., Q, K) ->
    (..., min(Q, size), min(K, size))``.

    >>> a = torch.eye(4)
    >>> pooled_attention(a, 2)
    tensor([[1., 0.],
            [0., 1.]])
    >>> pooled_attention(torch.tensor([[0.5, 0.5, 0.0, 0.0], [0.0, 0.25, 0.0, 0.75]]), 2)
    tensor([[0.5000, 0.0000],
            [0.2500, 0.7500]])
    """
    n_queries, n_keys = attn.shape[-2:]
    if n_queries <= size and n_keys <= size:
        return attn.clone()
    lead = attn.shape[:-2]
    out = (min(n_queries, size), min(n_keys, size))
    flat = attn.reshape(-1, 1, n_queries, n_keys)  # (N, 1, Q, K)
    pooled = torch.nn.functional.adaptive_max_pool2d(flat, out)  # (N, 1, S_q, S_k)
    return pooled.reshape(*lead, *out)


def max_entropy(seq_len: int) -> float:
    """The largest possible row entropy over ``seq_len`` keys, ``ln seq_len``.

    >>> round(max_entropy(4), 4)
    1.3863
    """
    return math.log(seq_len) if seq_len > 1 else 0.0
