"""The one object that flows from a model to every view: :class:`Analysis`.

An Analysis holds what the model saw (token ids, segment ids, character offsets, the special-token
mask), the attention ``[layer, head, query, key]`` of the layers it holds and statistics of every
layer. It is either *runnable* (made by :mod:`core.engine.run` from a tokenization: its inputs can
be run again, see :meth:`Analysis.model_inputs`) or *derived* (words, rollout, norm-based
attention, a comparison: made by :meth:`Analysis.derive`, for showing only).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from core.engine import stats
from core.engine.attended import AttendedToken, Ranking, attended_tokens
from core.engine.long_range import LongRange, long_range_of
from core.engine.streaming import THUMBNAIL_SIZE, layer_statistics
from core.engine.tokens import readable_raw_token
from core.policy.errors import AttnScopeError, InputError

if TYPE_CHECKING:
    from core.engine.models import ModelKind

__all__ = ["Analysis", "AttendedToken", "Derivation", "LayerNotHeldError", "Ranking"]

# How a derived analysis was made from a runnable one ("byo": captured from a user's own model).
Derivation = Literal["words", "rollout", "norm", "norm_residual", "comparison", "byo"]


class LayerNotHeldError(AttnScopeError, KeyError):
    """A layer's weights were not kept (long input): recompute them with
    :func:`core.engine.run.with_layers`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything AttnScope knows about one text under one model.

    Attention is ``[layer, head, query_pos, key_pos]``, float32 on the CPU; every row sums to 1
    and, for decoders, is 0 above the diagonal. Statistics (defined in
    :mod:`core.engine.stats`) cover every layer; those ending ``_choice`` average over the queries
    that have a choice (``i >= 1`` in a decoder, whose query 0 sees only itself), the others over
    every query; the full weights are held for ``held_layers``
    only: all of them for short inputs, fewer for long ones, the rest recomputed on demand by
    :func:`core.engine.run.with_layers`.
    """

    model_name: str
    kind: ModelKind
    text: str
    pair: str | None
    # The tokenization, as the model saw it (position t is token_ids[t]).
    token_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None  # segment ids, for sentence pairs in encoders
    raw_tokens: tuple[str, ...]
    tokens: tuple[str, ...]  # readable labels, see core.engine.tokens
    special: tuple[bool, ...]
    sentence_b_start: int | None
    layer_weights: tuple[Tensor | None, ...]  # per layer (n_heads, seq_len, seq_len) or None
    head_entropy: Tensor  # (n_layers, n_heads)
    normalized_head_entropy: Tensor  # (n_layers, n_heads)
    layer_entropy: Tensor  # (n_layers,)
    received_by_head: Tensor  # (n_layers, n_heads, seq_len)
    pooled_maps: Tensor | None  # (n_layers, n_heads, S, S) made layer by layer, or None
    head_entropy_choice: Tensor  # (n_layers, n_heads), over queries with a choice
    normalized_head_entropy_choice: Tensor  # (n_layers, n_heads), over queries with a choice
    layer_entropy_choice: Tensor  # (n_layers,), over queries with a choice
    truncated: bool
    n_input_tokens: int
    max_tokens: int
    forward_seconds: float
    stats_seconds: float
    # Where token t's characters are: texts[sequence_ids[t]][start:end], texts = (text, pair or
    # ""); None where the tokenizer gives no offsets (slow tokenizers) or the analysis is derived.
    offsets: tuple[tuple[int, int], ...] | None = None
    sequence_ids: tuple[int | None, ...] | None = None
    # sink / local / far split and distance profile of every head (core.engine.long_range)
    long_range: LongRange | None = None
    derived_from: Derivation | None = None  # None: runnable
    derived_with: tuple[tuple[str, Any], ...] = ()  # the options of the derivation, if any

    @classmethod
    def from_statistics(
        cls,
        statistics: Mapping[str, Any],
        layer_weights: Sequence[Tensor | None],
        tokens: Sequence[str],
        *,
        kind: ModelKind,
        model_name: str = "",
        text: str = "",
        pair: str | None = None,
        token_ids: Sequence[int] | None = None,
        token_type_ids: Sequence[int] | None = None,
        raw_tokens: Sequence[str] | None = None,
        special: Sequence[bool] | None = None,
        sentence_b_start: int | None = None,
        offsets: Sequence[tuple[int, int]] | None = None,
        sequence_ids: Sequence[int | None] | None = None,
        truncated: bool = False,
        n_input_tokens: int | None = None,
        max_tokens: int | None = None,
        forward_seconds: float = 0.0,
        stats_seconds: float = 0.0,
    ) -> Analysis:
        """The one constructor of a runnable analysis: ``statistics`` as
        :func:`core.engine.streaming.layer_statistics` makes them (stacked over layers, plus
        ``pooled_maps``), the held ``layer_weights`` and the tokenization."""
        seq_len = len(tokens)
        return cls(
            model_name=model_name,
            kind=kind,
            text=text,
            pair=pair if pair and pair.strip() else None,
            token_ids=tuple(token_ids) if token_ids is not None else tuple(range(seq_len)),
            token_type_ids=tuple(token_type_ids) if token_type_ids is not None else None,
            raw_tokens=tuple(raw_tokens) if raw_tokens is not None else tuple(tokens),
            tokens=tuple(tokens),
            special=tuple(special) if special is not None else (False,) * seq_len,
            sentence_b_start=sentence_b_start,
            offsets=tuple(offsets) if offsets is not None else None,
            sequence_ids=tuple(sequence_ids) if sequence_ids is not None else None,
            layer_weights=tuple(layer_weights),
            truncated=truncated,
            n_input_tokens=n_input_tokens if n_input_tokens is not None else seq_len,
            max_tokens=max_tokens if max_tokens is not None else seq_len,
            forward_seconds=forward_seconds,
            stats_seconds=stats_seconds,
            head_entropy=statistics["head_entropy"],
            normalized_head_entropy=statistics["normalized_head_entropy"],
            layer_entropy=statistics["layer_entropy"],
            received_by_head=statistics["received_by_head"],
            pooled_maps=statistics.get("pooled_maps"),
            head_entropy_choice=statistics["head_entropy_choice"],
            normalized_head_entropy_choice=statistics["normalized_head_entropy_choice"],
            layer_entropy_choice=statistics["layer_entropy_choice"],
            long_range=statistics.get("long_range"),
        )

    @classmethod
    def from_attentions(cls, attentions: Tensor, tokens: Sequence[str], **meta: Any) -> Analysis:
        """Build an analysis from all layers' ``attentions`` ``(n_layers, n_heads, seq_len,
        seq_len)`` at once, computing every statistic (``meta``: as for
        :meth:`from_statistics`); the input tensor is not modified.

        >>> a = torch.full((1, 2, 3, 3), 1 / 3)
        >>> result = Analysis.from_attentions(a, ["a", "b", "c"], kind="encoder")
        >>> result.head_entropy  # ln 3 for both heads
        tensor([[1.0986, 1.0986]])
        """
        attn = _checked(attentions, len(tokens))  # (L, H, T, T)
        statistics, seconds = _statistics(attn, meta["kind"])
        meta.setdefault("stats_seconds", seconds)
        return cls.from_statistics(statistics, tuple(attn), tokens, **meta)

    @property
    def n_layers(self) -> int:
        return self.head_entropy.shape[0]

    @property
    def n_heads(self) -> int:
        return self.head_entropy.shape[1]

    @property
    def seq_len(self) -> int:
        return len(self.tokens)

    @property
    def causal(self) -> bool:
        return self.kind == "decoder"

    @property
    def runnable(self) -> bool:
        """Whether this analysis' tokens are the model's input (not words, rollout, ...)."""
        return self.derived_from is None

    @property
    def content_key(self) -> tuple:
        """What this analysis is, as a hashable key for memoising things built from it: the
        model, the exact input and how it was derived. Two analyses with the same key show the
        same thing (never key a cache by ``id()``: a dropped object's id is reused)."""
        return (
            self.model_name,
            self.kind,
            self.token_ids,
            self.token_type_ids,
            self.max_tokens,
            self.derived_from,
            self.derived_with,
            self.tokens if self.derived_from else None,
        )

    @property
    def texts(self) -> tuple[str, ...]:
        """The texts ``sequence_ids`` index: the text and the second sentence (or "")."""
        return (self.text, self.pair or "")

    def model_inputs(self) -> dict[str, Tensor]:
        """The exact model inputs behind this analysis (token ids, segment ids), each ``(1,
        T)``, so a layer can be recomputed without tokenizing again. A derived analysis (words,
        rollout, ...) has none: its positions are not the model's tokens.

        >>> Analysis.from_attentions(torch.ones(1, 1, 1, 1), ["a"], kind="encoder").model_inputs()
        {'input_ids': tensor([[0]]), 'attention_mask': tensor([[1]])}
        """
        if self.derived_from is not None:
            raise InputError("error.derived_inputs", derived=self.derived_from)
        inputs = {
            "input_ids": torch.tensor([self.token_ids]),  # (1, T)
            "attention_mask": torch.ones(1, self.seq_len, dtype=torch.long),  # (1, T)
        }
        if self.token_type_ids is not None:
            inputs["token_type_ids"] = torch.tensor([self.token_type_ids])  # (1, T)
        return inputs

    @property
    def mean_head_entropy(self) -> Tensor:
        """``mean_h E[l, h]`` per layer, ``(n_layers,)``, reported beside ``layer_entropy``."""
        return self.head_entropy.mean(dim=-1)

    @property
    def received_by_layer(self) -> Tensor:
        """``r_l[j] = mean_i A_l[i, j]`` with ``A_l`` the head average, ``(n_layers, seq_len)``
        (the mean over heads of ``received_by_head``: both means are linear)."""
        return self.received_by_head.mean(dim=1)

    def derive(self, attentions: Tensor, *, via: Derivation, **changes: Any) -> Analysis:
        """The one constructor of a derived analysis: this one with attention ``attentions``
        ``(n_layers, H', T', T')`` made ``via`` rollout, norms, words, ...; statistics
        recomputed, ``changes`` replacing fields (words change ``tokens``, ``offsets`` and the
        like; options that shape the result go in ``derived_with``, part of
        :attr:`content_key`), all else kept. The result is not runnable.

        >>> eye = torch.eye(2).expand(1, 1, 2, 2)
        >>> a = Analysis.from_attentions(eye, ["a", "b"], kind="encoder")
        >>> rolled = a.derive(torch.full((1, 1, 2, 2), 0.5), via="rollout")
        >>> rolled.runnable, rolled.head_entropy  # ln 2
        (False, tensor([[0.6931]]))
        """
        seq_len = len(changes.get("tokens", self.tokens))
        attn = _checked(attentions, seq_len)  # (L, H', T', T')
        statistics, seconds = _statistics(attn, self.kind)
        return replace(
            self,
            **statistics,
            **changes,
            layer_weights=tuple(attn),
            stats_seconds=seconds,
            derived_from=via,
        )

    @functools.cached_property
    def thumbnails(self) -> Tensor:
        """Every head's map max-pooled to ``S x S``, ``(n_layers, n_heads, S, S)`` with ``S =
        min(seq_len, 32)`` (see :func:`core.engine.stats.pooled_attention`): kept from the
        layer-by-layer pass for long inputs, else made from the held weights once."""
        if self.pooled_maps is not None:
            return self.pooled_maps
        return torch.stack(
            [stats.pooled_attention(self.layer(i), THUMBNAIL_SIZE) for i in range(self.n_layers)]
        )

    @property
    def held_layers(self) -> tuple[int, ...]:
        """The layers whose full weights this analysis holds."""
        return tuple(i for i, w in enumerate(self.layer_weights) if w is not None)

    def holding(self, weights: Mapping[int, Tensor]) -> Analysis:
        """This analysis with the full weights in ``weights`` (layer -> ``(n_heads, T, T)``)
        held too; ``self`` is not changed."""
        held = tuple(weights.get(i, w) for i, w in enumerate(self.layer_weights))
        return replace(self, layer_weights=held)

    def layer(self, layer: int) -> Tensor:
        """All heads of one layer, ``(n_heads, query_pos, key_pos)``."""
        if not 0 <= layer < self.n_layers:
            raise IndexError(f"layer {layer} out of range 0..{self.n_layers - 1}")
        weights = self.layer_weights[layer]
        if weights is None:
            raise LayerNotHeldError("error.layer_not_held", layer=layer, tokens=self.seq_len)
        return weights

    def head(self, layer: int, head: int) -> Tensor:
        """One head's attention, ``(query_pos, key_pos)``."""
        return self.layer(layer)[head]

    def layer_average(self, layer: int) -> Tensor:
        """The head-averaged attention of one layer, ``(query_pos, key_pos)``."""
        return self.layer(layer).mean(dim=0)

    @property
    def attentions(self) -> Tensor:
        """Every layer stacked, ``(n_layers, n_heads, seq_len, seq_len)``: a copy, and only when
        every layer is held. Prefer :meth:`layer` and :meth:`head`."""
        return torch.stack([self.layer(layer) for layer in range(self.n_layers)])

    def most_attended(
        self, top_k: int = 5, *, per_head: bool = False, ranking: Ranking = "plain"
    ) -> tuple[AttendedToken, ...]:
        """The ``top_k`` key positions receiving the most attention in each layer (or head).

        ``ranking="plain"`` (default) ranks by ``r_l[j] = mean_i A_l[i, j]`` (layer average) or
        ``mean_i a[l, h, i, j]``, the share of all attention. ``"visible"`` shows position 0 (the
        sink) apart and ranks the other keys by the attention per query that can see them (see
        :func:`core.engine.stats.visibility_normalized`), which in a decoder no longer favours
        early positions for being visible to more queries.
        """
        received = self.received_by_head if per_head else self.received_by_layer.unsqueeze(1)
        return attended_tokens(
            received, self.tokens, top_k, per_head=per_head, causal=self.causal, ranking=ranking
        )

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        """The JSON form (``python -m core analyze --json``): plain lists, numbers and strings.

        The keys and definitions of earlier versions are kept; statistics over the queries with a
        choice arrive as ``*_choice`` and the visibility-normalised ranking as
        ``most_attended_visible`` (per layer: ``sink``, then ``top``)."""
        per_layer: list[list[dict[str, Any]]] = [[] for _ in range(self.n_layers)]
        for row in self.most_attended(top_k):
            per_layer[row.layer].append(
                {"position": row.position, "token": row.token, "share": row.share}
            )
        visible: list[dict[str, Any]] = [{"sink": None, "top": []} for _ in range(self.n_layers)]
        for row in self.most_attended(top_k, ranking="visible"):
            entry = {"position": row.position, "token": row.token, "share": row.share}
            if row.sink:
                visible[row.layer]["sink"] = entry
            else:
                visible[row.layer]["top"].append({**entry, "seen_by": row.seen_by})
        return {
            "model": self.model_name,
            "kind": self.kind,
            "text": self.text,
            "pair": self.pair,
            "tokens": list(self.tokens),
            "raw_tokens": [readable_raw_token(raw) for raw in self.raw_tokens],
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "seq_len": self.seq_len,
            "truncated": self.truncated,
            "n_input_tokens": self.n_input_tokens,
            "head_entropy": self.head_entropy.tolist(),
            "normalized_head_entropy": self.normalized_head_entropy.tolist(),
            "layer_entropy": self.layer_entropy.tolist(),
            "mean_head_entropy": self.mean_head_entropy.tolist(),
            "most_attended": per_layer,
            "head_entropy_choice": self.head_entropy_choice.tolist(),
            "normalized_head_entropy_choice": self.normalized_head_entropy_choice.tolist(),
            "layer_entropy_choice": self.layer_entropy_choice.tolist(),
            "most_attended_visible": visible,
        }


def _checked(attentions: Tensor, seq_len: int) -> Tensor:
    """``attentions`` as float32 on the CPU, after checking it is ``(L, H, T, T)`` with ``T =
    seq_len``."""
    attn = attentions.detach().float().cpu()  # (L, H, T, T)
    if attn.dim() != 4 or attn.shape[-2:] != (seq_len, seq_len):
        raise ValueError(
            f"attentions must be (L, H, T, T) with T = {seq_len} tokens, got {tuple(attn.shape)}"
        )
    return attn


def _statistics(attn: Tensor, kind: ModelKind) -> tuple[dict[str, Any], float]:
    """Every layer's statistics of held weights ``(L, H, T, T)``, and the seconds they took.
    Thumbnails are made from the weights when a view asks (``pooled_maps`` None)."""
    started = time.perf_counter()
    computed: dict[str, Any] = dict(layer_statistics(attn, causal=kind == "decoder"))
    computed["pooled_maps"] = None
    computed["long_range"] = long_range_of(attn, causal=kind == "decoder")
    return computed, time.perf_counter() - started
