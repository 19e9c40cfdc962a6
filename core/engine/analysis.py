"""Turning a text into an analysis: tokens, attention ``[layer, head, query, key]`` and statistics.

:func:`analyze` runs one forward pass with attention outputs and returns one frozen
:class:`Analysis`, which every view, table, export and the command line read from.
:func:`analyze_ids` does the same for an exact sequence of token ids (a generated text), which
re-tokenizing its text could split differently.
"""

from __future__ import annotations

import functools
import time
import unicodedata
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from core.engine import budget, stats
from core.engine.streaming import (
    THUMBNAIL_SIZE,
    layer_statistics,
    model_inputs_to_device,
    recompute_layers,
    stream_statistics,
)
from core.engine.tokens import (
    Decode,
    broken_as_bytes,
    labels_by_decoding,
    labels_from_offsets,
    offsets_by_decoding,
    readable_raw_token,
)
from core.policy.errors import AttnScopeError, InputError, UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel, ModelKind

__all__ = [
    "DEFAULT_KEEP_BYTES",
    "Analysis",
    "AttendedToken",
    "KeepLayers",
    "LayerNotHeldError",
    "Tokenized",
    "analyze",
    "analyze_ids",
    "check_text",
    "decoder",
    "forward_all_layers",
    "model_inputs",
    "special_ids",
    "tokenize",
    "tokenize_ids",
    "with_layers",
]

Method = Literal["layers", "all"]
KeepLayers = Literal["auto", "all", "none"] | Sequence[int]
# Hold every layer's weights while they fit the budget (core.engine.budget); beyond it only
# statistics and the chosen layers.
DEFAULT_KEEP_BYTES = budget.DEFAULT_BUDGET_BYTES


@dataclass(frozen=True)
class AttendedToken:
    """One row of the most-attended table: key ``position`` received ``share`` of the attention."""

    layer: int
    head: int | None  # None: the layer average
    rank: int  # 1 = most attended
    position: int
    token: str
    share: float


@dataclass(frozen=True)
class Tokenized:
    """A text as the model sees it, with labels a person can read."""

    input_ids: Tensor  # (1, seq_len)
    extra_inputs: dict[str, Tensor]  # token_type_ids etc., each (1, seq_len)
    raw_tokens: tuple[str, ...]
    tokens: tuple[str, ...]  # readable labels, see core.engine.tokens
    special: tuple[bool, ...]
    sentence_b_start: int | None  # first token of the second sentence, if any
    truncated: bool
    n_input_tokens: int  # before truncation
    # Where each token's characters are: texts[sequence_ids[t]][start:end] (None: special token
    # or no offsets). None where the tokenizer gives no offsets (slow tokenizers).
    texts: tuple[str, ...] = ()
    offsets: tuple[tuple[int, int], ...] | None = None
    sequence_ids: tuple[int | None, ...] | None = None

    @property
    def inputs(self) -> dict[str, Tensor]:
        """The model's keyword inputs: ``input_ids`` and the extra ones, each ``(1, seq_len)``."""
        return {"input_ids": self.input_ids, **self.extra_inputs}


class LayerNotHeldError(AttnScopeError, KeyError):
    """A layer's weights were not kept (long input): recompute them with :func:`with_layers`."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything AttnScope knows about one text under one model.

    Attention is ``[layer, head, query_pos, key_pos]``, float32 on the CPU; every row sums to 1
    and, for decoders, is 0 above the diagonal. Statistics (defined in
    :mod:`core.engine.stats`) cover every layer; the full weights are held for ``held_layers``
    only: all of them for short inputs, fewer for long ones (see :func:`analyze`), the rest
    recomputed on demand by :func:`with_layers`.
    """

    model_name: str
    kind: ModelKind
    text: str
    pair: str | None
    token_ids: tuple[int, ...]
    token_type_ids: tuple[int, ...] | None  # segment ids, for sentence pairs in encoders
    raw_tokens: tuple[str, ...]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    sentence_b_start: int | None
    layer_weights: tuple[Tensor | None, ...]  # per layer (n_heads, seq_len, seq_len) or None
    head_entropy: Tensor  # (n_layers, n_heads)
    normalized_head_entropy: Tensor  # (n_layers, n_heads)
    layer_entropy: Tensor  # (n_layers,)
    received_by_head: Tensor  # (n_layers, n_heads, seq_len)
    pooled_maps: Tensor | None  # (n_layers, n_heads, S, S) made layer by layer, or None
    truncated: bool
    n_input_tokens: int
    max_tokens: int
    forward_seconds: float
    stats_seconds: float

    @classmethod
    def from_attentions(
        cls,
        attentions: Tensor,
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
        truncated: bool = False,
        n_input_tokens: int | None = None,
        max_tokens: int | None = None,
        forward_seconds: float = 0.0,
    ) -> Analysis:
        """Build an analysis from all layers' ``attentions`` ``(n_layers, n_heads, seq_len,
        seq_len)`` at once (the all-layers path), computing every statistic; the input tensor is
        not modified.

        >>> a = torch.full((1, 2, 3, 3), 1 / 3)
        >>> result = Analysis.from_attentions(a, ["a", "b", "c"], kind="encoder")
        >>> result.head_entropy  # ln 3 for both heads
        tensor([[1.0986, 1.0986]])
        """
        attn = attentions.detach().float().cpu()  # (L, H, T, T)
        seq_len = attn.shape[-1]
        if attn.dim() != 4 or attn.shape[-2] != seq_len or len(tokens) != seq_len:
            raise ValueError(
                f"attentions must be (L, H, T, T) with T = {len(tokens)} tokens, "
                f"got {tuple(attn.shape)}"
            )
        started = time.perf_counter()
        computed = layer_statistics(attn, causal=kind == "decoder")
        computed["pooled_maps"] = None  # every layer is held: thumbnails made when asked for
        stats_seconds = time.perf_counter() - started
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
            layer_weights=tuple(attn),  # views into attn, no copy
            truncated=truncated,
            n_input_tokens=n_input_tokens if n_input_tokens is not None else seq_len,
            max_tokens=max_tokens if max_tokens is not None else seq_len,
            forward_seconds=forward_seconds,
            stats_seconds=stats_seconds,
            **computed,
        )

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
    def mean_head_entropy(self) -> Tensor:
        """``mean_h E[l, h]`` per layer, ``(n_layers,)``, reported beside ``layer_entropy``."""
        return self.head_entropy.mean(dim=-1)

    @property
    def received_by_layer(self) -> Tensor:
        """``r_l[j] = mean_i A_l[i, j]`` with ``A_l`` the head average, ``(n_layers, seq_len)``
        (the mean over heads of ``received_by_head``: both means are linear)."""
        return self.received_by_head.mean(dim=1)

    def derived(self, attentions: Tensor) -> Analysis:
        """An analysis of the same input whose attention is ``attentions`` ``(n_layers, H', T,
        T)`` (rollout, norm-based, ...): statistics recomputed, everything else kept."""
        return Analysis.from_attentions(
            attentions,
            self.tokens,
            kind=self.kind,
            model_name=self.model_name,
            text=self.text,
            pair=self.pair,
            token_ids=self.token_ids,
            token_type_ids=self.token_type_ids,
            raw_tokens=self.raw_tokens,
            special=self.special,
            sentence_b_start=self.sentence_b_start,
            truncated=self.truncated,
            n_input_tokens=self.n_input_tokens,
            max_tokens=self.max_tokens,
            forward_seconds=self.forward_seconds,
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

    def most_attended(self, top_k: int = 5, *, per_head: bool = False) -> tuple[AttendedToken, ...]:
        """The ``top_k`` key positions receiving the most attention in each layer (or head).

        Ranked by ``r_l[j] = mean_i A_l[i, j]`` (layer average) or ``mean_i a[l, h, i, j]``.
        """
        received = self.received_by_head if per_head else self.received_by_layer.unsqueeze(1)
        shares, positions = stats.top_k_positions(received, top_k)  # (L, H or 1, k)
        rows: list[AttendedToken] = []
        for layer in range(shares.shape[0]):
            for index in range(shares.shape[1]):
                head = index if per_head else None
                ranked = zip(shares[layer, index].tolist(), positions[layer, index].tolist())
                for rank, (share, position) in enumerate(ranked, start=1):
                    rows.append(
                        AttendedToken(layer, head, rank, position, self.tokens[position], share)
                    )
        return tuple(rows)

    def to_dict(self, top_k: int = 5) -> dict[str, Any]:
        """The JSON form (``python -m core analyze --json``): plain lists, numbers and strings."""
        per_layer: list[list[dict[str, Any]]] = [[] for _ in range(self.n_layers)]
        for row in self.most_attended(top_k):
            per_layer[row.layer].append(
                {"position": row.position, "token": row.token, "share": row.share}
            )
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
        }


def check_text(text: str | None) -> str:
    """``text`` if it holds something to analyse; an :class:`InputError` if it is empty or
    only whitespace, control and invisible format characters (zero-width spaces, BOMs).

    >>> check_text("  \\u200b\\x00")
    Traceback (most recent call last):
    ...
    core.policy.errors.InputError: The text is empty: type or paste some text to analyse.
    >>> check_text("a\\u200b")
    'a\\u200b'
    """
    visible = (ch for ch in text or "" if not ch.isspace())
    if not any(unicodedata.category(ch) not in ("Cc", "Cf", "Zs", "Zl", "Zp") for ch in visible):
        raise InputError("error.empty_text")
    return text


def tokenize(
    loaded: LoadedModel, text: str, pair: str | None = None, *, max_tokens: int | None = None
) -> Tokenized:
    """Tokenize ``text`` (and, for encoders, ``pair``), truncating to the model's limit."""
    check_text(text)
    if pair is not None and not pair.strip():
        pair = None
    if pair is not None and loaded.kind == "decoder":
        raise InputError("error.pair_decoder", model=loaded.title)
    limit = min(max_tokens or loaded.max_tokens, loaded.max_tokens)
    tokenizer = loaded.tokenizer
    fast = bool(getattr(tokenizer, "is_fast", False))
    full = tokenizer(text, pair, add_special_tokens=True, truncation=False, verbose=False)
    n_input = len(full["input_ids"])
    truncated = n_input > limit
    encoding = tokenizer(
        text,
        pair,
        add_special_tokens=True,
        truncation=truncated,
        max_length=limit if truncated else None,
        return_offsets_mapping=fast,
        return_special_tokens_mask=True,
        return_tensors="pt",
        verbose=False,
    )
    ids = encoding["input_ids"][0].tolist()
    raw = tuple(tokenizer.convert_ids_to_tokens(ids))
    offsets = sequence_ids = None
    if fast:
        sequence_ids = encoding.sequence_ids(0)
        offsets = [tuple(pair_) for pair_ in encoding["offset_mapping"][0].tolist()]
        labels = labels_from_offsets([text, pair or ""], offsets, sequence_ids, raw)
        b_start = next((t for t, s in enumerate(sequence_ids) if s == 1), None)
    else:
        labels = labels_by_decoding(ids, tokenizer.decode)
        token_types = encoding.get("token_type_ids")
        b_start = None
        if pair is not None and token_types is not None:
            b_start = next((t for t, s in enumerate(token_types[0].tolist()) if s == 1), None)
    extra = {
        key: encoding[key]
        for key in ("attention_mask", "token_type_ids")
        if key in encoding and encoding[key] is not None
    }
    return Tokenized(
        input_ids=encoding["input_ids"],
        extra_inputs=extra,
        raw_tokens=raw,
        tokens=tuple(labels),
        special=tuple(bool(s) for s in encoding["special_tokens_mask"][0].tolist()),
        sentence_b_start=b_start,
        truncated=truncated,
        n_input_tokens=n_input,
        texts=(text, pair or ""),
        offsets=tuple(offsets) if offsets is not None else None,
        sequence_ids=tuple(sequence_ids) if sequence_ids is not None else None,
    )


def decoder(tokenizer: Any) -> Decode:
    """``tokenizer``'s decode as ``ids -> text``, keeping special tokens and spaces exactly."""

    def decode(ids: list[int]) -> str:
        return tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)

    return decode


def special_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of ``tokenizer``'s special tokens (``[CLS]``, ``<|im_start|>``, ...), without the
    unknown token: ``[UNK]`` stands for real characters of the text."""
    ids = {int(i) for i in getattr(tokenizer, "all_special_ids", None) or ()}
    unk = getattr(tokenizer, "unk_token_id", None)
    return frozenset(ids - {unk})


def tokenize_ids(
    loaded: LoadedModel, token_ids: Sequence[int], *, max_tokens: int | None = None
) -> Tokenized:
    """An exact sequence of token ids as the model sees it, with no tokenizing and no special
    tokens added: the text, offsets and labels come from decoding (see
    :func:`core.engine.tokens.offsets_by_decoding`). Longer sequences are cut to the model's
    limit."""
    ids = [int(i) for i in token_ids]
    if not ids:
        raise InputError("error.no_tokens")
    limit = min(max_tokens or loaded.max_tokens, loaded.max_tokens)
    n_input = len(ids)
    ids = ids[:limit]
    tokenizer = loaded.tokenizer
    text, offsets = offsets_by_decoding(ids, decoder(tokenizer))
    specials = special_ids(tokenizer)
    special = tuple(i in specials for i in ids)
    sequence_ids = tuple(None if s else 0 for s in special)
    raw = tuple(tokenizer.convert_ids_to_tokens(ids))
    input_ids = torch.tensor([ids], dtype=torch.long)  # (1, seq_len)
    return Tokenized(
        input_ids=input_ids,
        extra_inputs={"attention_mask": torch.ones_like(input_ids)},
        raw_tokens=raw,
        tokens=tuple(broken_as_bytes(labels_from_offsets([text], offsets, sequence_ids, raw), raw)),
        special=special,
        sentence_b_start=None,
        truncated=n_input > limit,
        n_input_tokens=n_input,
        texts=(text,),
        offsets=tuple(offsets),
        sequence_ids=sequence_ids,
    )


def forward_all_layers(loaded: LoadedModel, inputs: dict[str, Tensor]) -> Tensor:
    """The all-layers path: one pass with ``output_attentions=True``; returns ``(n_layers,
    n_heads, seq_len, seq_len)`` float32 on the CPU."""
    kwargs = model_inputs_to_device(loaded, inputs)
    with torch.inference_mode():
        out = loaded.model.base_model(**kwargs, output_attentions=True)
    attentions = out.attentions
    if not attentions or any(a is None for a in attentions):
        raise UnsupportedModelError("error.no_attention", model=loaded.title)
    return torch.stack([layer[0] for layer in attentions]).float().cpu()  # (L, H, T, T)


def _layers_to_keep(
    keep: KeepLayers, n_layers: int, n_heads: int, seq_len: int, keep_bytes: int
) -> tuple[int, ...]:
    """Which layers' full weights to hold.

    >>> _layers_to_keep("auto", 6, 12, 512, DEFAULT_KEEP_BYTES)  # 75 MB: all of them
    (0, 1, 2, 3, 4, 5)
    >>> _layers_to_keep("auto", 30, 9, 2048, DEFAULT_KEEP_BYTES)  # 4.5 GB: none
    ()
    >>> _layers_to_keep([3, 1], 30, 9, 2048, DEFAULT_KEEP_BYTES)
    (1, 3)
    """
    if keep == "all":
        return tuple(range(n_layers))
    if keep == "none":
        return ()
    if keep == "auto":
        return tuple(range(n_layers)) if budget.fits(n_layers, n_heads, seq_len, keep_bytes) else ()
    return tuple(sorted({int(layer) for layer in keep if 0 <= int(layer) < n_layers}))


def analyze(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    *,
    max_tokens: int | None = None,
    keep_layers: KeepLayers = "auto",
    keep_bytes: int = DEFAULT_KEEP_BYTES,
    method: Method = "layers",
) -> Analysis:
    """Analyse ``text`` (and an optional second sentence, encoders only) under ``loaded``.

    Input longer than the model's limit (or ``max_tokens``) is truncated; ``truncated`` and
    ``n_input_tokens`` say so. ``method="layers"`` (default) takes the statistics layer by layer
    as the forward pass runs (:mod:`core.engine.streaming`) and holds the weights of ``keep_layers``
    only: ``"auto"`` holds all of them while they fit in ``keep_bytes``, none beyond.
    ``method="all"`` asks the model for every layer at once (``output_attentions=True``) and
    holds everything; both give the same statistics.
    """
    tokenized = tokenize(loaded, text, pair, max_tokens=max_tokens)
    return _analyze_tokenized(
        loaded,
        tokenized,
        text=text,
        pair=pair,
        max_tokens=max_tokens,
        keep_layers=keep_layers,
        keep_bytes=keep_bytes,
        method=method,
    )


def analyze_ids(
    loaded: LoadedModel,
    token_ids: Sequence[int],
    *,
    max_tokens: int | None = None,
    keep_layers: KeepLayers = "auto",
    keep_bytes: int = DEFAULT_KEEP_BYTES,
    method: Method = "layers",
) -> Analysis:
    """Analyse an exact sequence of token ids (a prompt and what was generated from it).

    Nothing is re-tokenized and no special tokens are added, so position t is token
    ``token_ids[t]``; the analysis' ``text`` is the ids decoded (:func:`tokenize_ids`). For a
    text that came from the tokenizer, ``analyze_ids(loaded, analyze(loaded, text).token_ids)``
    gives the same attention as ``analyze(loaded, text)``. Options as for :func:`analyze`.
    """
    tokenized = tokenize_ids(loaded, token_ids, max_tokens=max_tokens)
    return _analyze_tokenized(
        loaded,
        tokenized,
        text=tokenized.texts[0],
        pair=None,
        max_tokens=max_tokens,
        keep_layers=keep_layers,
        keep_bytes=keep_bytes,
        method=method,
    )


def _analyze_tokenized(
    loaded: LoadedModel,
    tokenized: Tokenized,
    *,
    text: str,
    pair: str | None,
    max_tokens: int | None,
    keep_layers: KeepLayers,
    keep_bytes: int,
    method: Method,
) -> Analysis:
    """The forward pass and statistics shared by :func:`analyze` and :func:`analyze_ids`."""
    inputs = tokenized.inputs
    seq_len = tokenized.input_ids.shape[-1]
    meta: dict[str, Any] = {
        "model_name": loaded.name,
        "kind": loaded.kind,
        "text": text,
        "pair": pair if pair and pair.strip() else None,
        "token_ids": tuple(tokenized.input_ids[0].tolist()),
        "token_type_ids": (
            tuple(tokenized.extra_inputs["token_type_ids"][0].tolist())
            if "token_type_ids" in tokenized.extra_inputs
            else None
        ),
        "raw_tokens": tokenized.raw_tokens,
        "special": tokenized.special,
        "sentence_b_start": tokenized.sentence_b_start,
        "truncated": tokenized.truncated,
        "n_input_tokens": tokenized.n_input_tokens,
        "max_tokens": min(max_tokens or loaded.max_tokens, loaded.max_tokens),
    }
    if method == "layers":
        keep = _layers_to_keep(keep_layers, loaded.n_layers, loaded.n_heads, seq_len, keep_bytes)
        try:
            started = time.perf_counter()
            gathered = stream_statistics(loaded, inputs, keep=keep)
        except UnsupportedModelError:
            method = "all"  # a model that does not declare its attention modules
        else:
            total = time.perf_counter() - started
            weights = tuple(gathered.kept.get(layer) for layer in range(loaded.n_layers))
            return Analysis(
                tokens=tokenized.tokens,
                layer_weights=weights,
                forward_seconds=total - gathered.stats_seconds,
                stats_seconds=gathered.stats_seconds,
                **meta,
                **gathered.statistics,
            )
    started = time.perf_counter()
    attn = forward_all_layers(loaded, inputs)  # (L, H, T, T)
    forward_seconds = time.perf_counter() - started
    return Analysis.from_attentions(attn, tokenized.tokens, forward_seconds=forward_seconds, **meta)


def model_inputs(result: Analysis) -> dict[str, Tensor]:
    """The exact model inputs behind ``result`` (token ids, segment ids), each ``(1, T)``, so a
    layer can be recomputed without tokenizing again."""
    inputs = {
        "input_ids": torch.tensor([result.token_ids]),
        "attention_mask": torch.ones(1, result.seq_len, dtype=torch.long),
    }
    if result.token_type_ids is not None:
        inputs["token_type_ids"] = torch.tensor([result.token_type_ids])
    return inputs


def with_layers(loaded: LoadedModel, result: Analysis, layers: Sequence[int]) -> Analysis:
    """``result`` with the full weights of ``layers`` held too, recomputed by one forward pass
    that stops after the highest missing layer. ``result`` itself is not changed."""
    missing = [layer for layer in layers if result.layer_weights[layer] is None]
    if not missing:
        return result
    return result.holding(recompute_layers(loaded, model_inputs(result), missing))
