"""The query-key map (AttentionViz, Yeh et al. 2023, "AttentionViz: A Global View of Transformer
Attention", IEEE VIS): one head's query and key vectors of a sample of tokens, put in one space
and projected together to 2-D, so that a query lands near the keys it attends to.

Vectors are taken as the head's attention multiplies them (:func:`core.methods.neuron.
queries_and_keys`): ``x W_Q + b_Q`` and ``x W_K + b_K`` per head, after the rotary embedding in
Llama-family models (SmolLM2), and with grouped-query attention query head ``h`` is paired with
key head ``h // (n_heads / n_kv_heads)``.

Normalisation (the paper's Sec. 4.1: keys translated so the two centroids coincide, then both
scaled to the same mean norm; neither changes any attention weight):

1. translate keys: ``k' = k - mean(k) + mean(q)``. For a query, ``q·k'_j = q·k_j + q·c`` with
   ``c`` the same for every key ``j``, so its softmax over keys is unchanged;
2. scale: ``q'' = q · s`` and ``k'' = k' / s`` with ``s = sqrt(mean_j |k'_j| / mean_i |q_i|)``,
   so ``mean |q''| = mean |k''|`` and every ``q''·k''`` equals ``q·k'``.

The ``2N`` normalised vectors (queries first, then keys of the same tokens in the same order) go
to scikit-learn's ``PCA(n_components=2, svd_solver="full")``; its explained variance ratio is
kept. PCA's axes have no sign of their own: compare maps up to a sign per axis.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import torch
from torch import Tensor

from core.engine.tokenize import check_text, tokenize
from core.methods.ablation_hooks import check_head
from core.methods.head_metrics import punctuation_positions
from core.methods.neuron import queries_and_keys
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "CONTEXT_TOKENS",
    "QKMap",
    "TokenType",
    "normalise",
    "qk_map",
    "qk_map_of_analysis",
    "token_types",
]

TokenType = Literal["special", "word", "punct"]
CONTEXT_TOKENS = 6  # tokens of context shown on each side of a point's token


def normalise(queries: Tensor, keys: Tensor) -> tuple[Tensor, Tensor, float]:
    """AttentionViz's normalisation of one head's ``queries`` ``(N, d)`` and ``keys`` ``(M, d)``:
    keys translated onto the queries' centroid, then queries times ``s`` and keys divided by it,
    ``s = sqrt(mean |k'| / mean |q|)``, so both have the same mean norm. Returns ``(q'', k'',
    s)``; every dot product ``q''·k''`` equals ``q·k'``.

    >>> q, k, s = normalise(torch.tensor([[1.0, 0.0], [3.0, 0.0]]), torch.tensor([[0.0, 8.0]]))
    >>> k, s  # k' = (2, 0): mean |k'| = 2 = mean |q|, so s = 1
    (tensor([[2., 0.]]), 1.0)
    """
    queries, keys = queries.double(), keys.double()
    moved = keys - keys.mean(dim=0) + queries.mean(dim=0)  # (M, d)
    scale = float((moved.norm(dim=-1).mean() / queries.norm(dim=-1).mean()).sqrt())
    return (queries * scale).float(), (moved / scale).float(), scale


def token_types(tokens: Sequence[str], special: Sequence[bool]) -> tuple[TokenType, ...]:
    """``special`` (the tokenizer's own), ``punct`` (only punctuation, see
    :func:`core.methods.head_metrics.punctuation_positions`) or ``word``.

    >>> token_types(["[CLS]", "Hi", "!"], [True, False, False])
    ('special', 'word', 'punct')
    """
    punct = punctuation_positions(tokens, special).tolist()
    return tuple(
        "special" if s else "punct" if p else "word" for s, p in zip(special, punct, strict=True)
    )


@dataclass(frozen=True, eq=False)
class QKMap:
    """One head's query-key map: ``2N`` points, the ``N`` sampled tokens' queries then their
    keys (same order); every per-point field has ``2N`` entries."""

    layer: int
    head: int
    kv_head: int  # the key head query head ``head`` reads (GQA)
    rotary: bool  # q and k after the rotary embedding
    points: np.ndarray  # (2N, 2) float32: PCA coordinates
    vectors: np.ndarray  # (2N, d) float32: the normalised vectors PCA was fitted on
    kind: tuple[str, ...]  # "query" or "key"
    token: tuple[str, ...]  # readable token labels
    position: np.ndarray  # (2N,) int: the token's position in its text
    text_index: np.ndarray  # (2N,) int: which of the texts it came from
    token_type: tuple[TokenType, ...]
    context: tuple[str, ...]  # a window of the text's tokens, the token in [brackets]
    explained_variance: np.ndarray  # (2,): PCA's explained variance ratio of each axis
    scale: float  # s of :func:`normalise`
    n_texts: int

    @property
    def n_tokens(self) -> int:
        return len(self.points) // 2


@dataclass(frozen=True)
class _Text:
    inputs: dict[str, Tensor]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]


def _context(tokens: Sequence[str], position: int) -> str:
    """The tokens around ``position`` with it in brackets, ``…`` where the text goes on."""
    start, end = max(0, position - CONTEXT_TOKENS), position + CONTEXT_TOKENS + 1
    words = [*tokens[start:position], f"[{tokens[position]}]", *tokens[position + 1 : end]]
    return ("… " if start else "") + " ".join(words) + (" …" if end < len(tokens) else "")


def _project(
    loaded: LoadedModel, texts: Sequence[_Text], layer: int, head: int, max_tokens: int, seed: int
) -> QKMap:
    """Queries and keys of ``texts`` (in a seeded order, until ``max_tokens`` tokens), sampled
    down to ``max_tokens`` (seeded), normalised and projected."""
    from sklearn.decomposition import PCA

    check_head(loaded, layer, head)
    rng = random.Random(seed)
    order = list(range(len(texts)))
    rng.shuffle(order)
    queries, keys, rows = [], [], []
    kv_head, rotary, total = 0, False, 0
    for index in order:
        if total >= max_tokens:
            break
        text = texts[index]
        found = queries_and_keys(loaded, text.inputs, layer)
        kv_head, rotary = found.kv_head(head), found.rotary
        queries.append(found.queries[head])  # (T, d)
        keys.append(found.keys[kv_head])  # (T, d)
        types = token_types(text.tokens, text.special)
        rows += [(index, t, text.tokens[t], types[t], text.tokens) for t in range(len(types))]
        total += len(types)
    keep = sorted(rng.sample(range(total), max_tokens)) if total > max_tokens else range(total)
    keep = torch.tensor(list(keep), dtype=torch.long)  # (N,)
    q, k, scale = normalise(torch.cat(queries)[keep], torch.cat(keys)[keep])  # (N, d) each
    vectors = torch.cat([q, k]).numpy()  # (2N, d)
    pca = PCA(n_components=2, svd_solver="full", random_state=seed)
    points = pca.fit_transform(vectors.astype(np.float64)).astype(np.float32)  # (2N, 2)
    chosen = [rows[i] for i in keep.tolist()]
    n = len(chosen)
    return QKMap(
        layer=layer,
        head=head,
        kv_head=kv_head,
        rotary=rotary,
        points=points,
        vectors=vectors,
        kind=("query",) * n + ("key",) * n,
        token=tuple(r[2] for r in chosen) * 2,
        position=np.array([r[1] for r in chosen] * 2, dtype=np.int64),
        text_index=np.array([r[0] for r in chosen] * 2, dtype=np.int64),
        token_type=tuple(r[3] for r in chosen) * 2,
        context=tuple(_context(r[4], r[1]) for r in chosen) * 2,
        explained_variance=pca.explained_variance_ratio_.astype(np.float32),
        scale=scale,
        n_texts=len(texts),
    )


def qk_map(
    model: LoadedModel,
    texts: list[str],
    layer: int,
    head: int,
    *,
    max_tokens: int = 2000,
    seed: int = 0,
) -> QKMap:
    """The query-key map of ``head`` in ``layer`` over ``texts`` (a corpus sample): each text
    tokenized as an analysis would (special tokens included), texts taken in a seeded order until
    ``max_tokens`` tokens are in, then ``max_tokens`` of them drawn (seeded). One forward pass
    per text, each stopping after ``layer``."""
    if not texts:
        raise InputError("error.no_tokens")
    if max_tokens < 2:
        raise InputError("error.qk_max_tokens", max_tokens=max_tokens)
    prepared = []
    for text in texts:
        tokenized = tokenize(model, check_text(text))
        prepared.append(_Text(tokenized.inputs, tokenized.tokens, tokenized.special))
    return _project(model, prepared, layer, head, max_tokens, seed)


def qk_map_of_analysis(
    model: LoadedModel,
    analysis: Analysis,
    layer: int,
    head: int,
    *,
    max_tokens: int = 2000,
    seed: int = 0,
) -> QKMap:
    """The query-key map of one analysis (the app's current text, its own inputs: no
    re-tokenizing), every token while there are at most ``max_tokens``."""
    text = _Text(analysis.model_inputs(), analysis.tokens, analysis.special)
    return _project(model, [text], layer, head, max(2, max_tokens), seed)
