"""Turning a text into an analysis: tokens, attention ``[layer, head, query, key]`` and statistics.

:func:`analyze` runs one forward pass with attention outputs and returns one frozen
:class:`Analysis`, which every view, table, export and the command line read from.
:func:`analyze_ids` does the same for an exact sequence of token ids (a generated text), which
re-tokenizing its text could split differently.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from core import stats
from core.errors import InputError, UnsupportedModelError
from core.tokens import (
    Decode,
    broken_as_bytes,
    labels_by_decoding,
    labels_from_offsets,
    offsets_by_decoding,
)

if TYPE_CHECKING:
    from core.models import LoadedModel, ModelKind

__all__ = [
    "Analysis",
    "AttendedToken",
    "Tokenized",
    "analyze",
    "analyze_ids",
    "check_text",
    "decoder",
    "special_ids",
    "tokenize",
    "tokenize_ids",
]


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
    tokens: tuple[str, ...]  # readable labels, see core.tokens
    special: tuple[bool, ...]
    sentence_b_start: int | None  # first token of the second sentence, if any
    truncated: bool
    n_input_tokens: int  # before truncation
    # Where each token's characters are: texts[sequence_ids[t]][start:end] (None: special token
    # or no offsets). None where the tokenizer gives no offsets (slow tokenizers).
    texts: tuple[str, ...] = ()
    offsets: tuple[tuple[int, int], ...] | None = None
    sequence_ids: tuple[int | None, ...] | None = None


@dataclass(frozen=True, eq=False)
class Analysis:
    """Everything AttnScope knows about one text under one model.

    ``attentions[layer, head, query_pos, key_pos]`` is float32 on the CPU; every row sums to 1 and,
    for decoders, is 0 above the diagonal. Statistics are defined in :mod:`core.stats`.
    """

    model_name: str
    kind: ModelKind
    text: str
    pair: str | None
    token_ids: tuple[int, ...]
    raw_tokens: tuple[str, ...]
    tokens: tuple[str, ...]
    special: tuple[bool, ...]
    sentence_b_start: int | None
    attentions: Tensor  # (n_layers, n_heads, seq_len, seq_len)
    head_entropy: Tensor  # (n_layers, n_heads)
    normalized_head_entropy: Tensor  # (n_layers, n_heads)
    layer_entropy: Tensor  # (n_layers,)
    mean_head_entropy: Tensor  # (n_layers,)
    received_by_layer: Tensor  # (n_layers, seq_len)
    received_by_head: Tensor  # (n_layers, n_heads, seq_len)
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
        raw_tokens: Sequence[str] | None = None,
        special: Sequence[bool] | None = None,
        sentence_b_start: int | None = None,
        truncated: bool = False,
        n_input_tokens: int | None = None,
        max_tokens: int | None = None,
        forward_seconds: float = 0.0,
    ) -> Analysis:
        """Build an analysis from ``attentions`` ``(n_layers, n_heads, seq_len, seq_len)``,
        computing every statistic; the input tensor is not modified.

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
        layer_avg = stats.layer_average(attn)  # (L, T, T)
        head_entropy = stats.head_entropy(attn)  # (L, H)
        computed = {
            "head_entropy": head_entropy,
            "normalized_head_entropy": stats.normalized_head_entropy(
                attn, causal=kind == "decoder"
            ),
            "layer_entropy": stats.head_entropy(layer_avg),  # (L,)
            "mean_head_entropy": head_entropy.mean(dim=-1),  # (L,)
            "received_by_layer": stats.received_attention(layer_avg),  # (L, T)
            "received_by_head": stats.received_attention(attn),  # (L, H, T)
        }
        stats_seconds = time.perf_counter() - started
        return cls(
            model_name=model_name,
            kind=kind,
            text=text,
            pair=pair if pair and pair.strip() else None,
            token_ids=tuple(token_ids) if token_ids is not None else tuple(range(seq_len)),
            raw_tokens=tuple(raw_tokens) if raw_tokens is not None else tuple(tokens),
            tokens=tuple(tokens),
            special=tuple(special) if special is not None else (False,) * seq_len,
            sentence_b_start=sentence_b_start,
            attentions=attn,
            truncated=truncated,
            n_input_tokens=n_input_tokens if n_input_tokens is not None else seq_len,
            max_tokens=max_tokens if max_tokens is not None else seq_len,
            forward_seconds=forward_seconds,
            stats_seconds=stats_seconds,
            **computed,
        )

    @property
    def n_layers(self) -> int:
        return self.attentions.shape[0]

    @property
    def n_heads(self) -> int:
        return self.attentions.shape[1]

    @property
    def seq_len(self) -> int:
        return self.attentions.shape[-1]

    @property
    def causal(self) -> bool:
        return self.kind == "decoder"

    def head(self, layer: int, head: int) -> Tensor:
        """One head's attention, ``(query_pos, key_pos)``."""
        return self.attentions[layer, head]

    def layer_average(self, layer: int) -> Tensor:
        """The head-averaged attention of one layer, ``(query_pos, key_pos)``."""
        return self.attentions[layer].mean(dim=0)

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
            "raw_tokens": list(self.raw_tokens),
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
    """``text`` if it holds something to analyse; an :class:`InputError` if empty or blank.

    >>> check_text("  ")
    Traceback (most recent call last):
    ...
    core.errors.InputError: The text is empty: type or paste some text to analyse.
    """
    if not text or not text.strip():
        raise InputError("The text is empty: type or paste some text to analyse.")
    return text


def tokenize(
    loaded: LoadedModel, text: str, pair: str | None = None, *, max_tokens: int | None = None
) -> Tokenized:
    """Tokenize ``text`` (and, for encoders, ``pair``), truncating to the model's limit."""
    check_text(text)
    if pair is not None and not pair.strip():
        pair = None
    if pair is not None and loaded.kind == "decoder":
        raise InputError(
            "A second sentence only applies to encoder models (BERT-like); "
            f"{loaded.title} is a decoder. Clear the second sentence or pick an encoder."
        )
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
    :func:`core.tokens.offsets_by_decoding`). Longer sequences are cut to the model's limit."""
    ids = [int(i) for i in token_ids]
    if not ids:
        raise InputError("There are no tokens to analyse.")
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


def _forward_attentions(loaded: LoadedModel, tokenized: Tokenized) -> Tensor:
    """One forward pass; returns ``(n_layers, n_heads, seq_len, seq_len)`` float32 on the CPU."""
    model = loaded.model
    inputs = {"input_ids": tokenized.input_ids, **tokenized.extra_inputs}
    inputs = {key: value.to(loaded.device) for key, value in inputs.items()}
    # The base model skips the language-model head: logits over the whole vocabulary at every
    # position are not needed here and would cost T x vocab floats (400 MB at 2048 tokens).
    base = model.base_model
    kwargs: dict[str, Any] = {"output_attentions": True, "return_dict": True}
    if loaded.kind == "decoder":
        kwargs["use_cache"] = False
    with torch.inference_mode():
        out = base(**inputs, **kwargs)
    attentions = out.attentions
    if not attentions or any(a is None for a in attentions):
        raise UnsupportedModelError(
            f"{loaded.title} returned no attention weights; it may not support eager attention."
        )
    return torch.stack([layer[0] for layer in attentions]).float().cpu()  # (L, H, T, T)


def analyze(
    loaded: LoadedModel,
    text: str,
    pair: str | None = None,
    *,
    max_tokens: int | None = None,
) -> Analysis:
    """Analyse ``text`` (and an optional second sentence, encoders only) under ``loaded``.

    Input longer than the model's limit (or ``max_tokens``) is truncated; ``truncated`` and
    ``n_input_tokens`` say so.
    """
    tokenized = tokenize(loaded, text, pair, max_tokens=max_tokens)
    return _analyze_tokenized(loaded, tokenized, text=text, pair=pair, max_tokens=max_tokens)


def analyze_ids(
    loaded: LoadedModel, token_ids: Sequence[int], *, max_tokens: int | None = None
) -> Analysis:
    """Analyse an exact sequence of token ids (a prompt and what was generated from it).

    Nothing is re-tokenized and no special tokens are added, so position t is token
    ``token_ids[t]``; the analysis' ``text`` is the ids decoded (:func:`tokenize_ids`). For a
    text that came from the tokenizer, ``analyze_ids(loaded, analyze(loaded, text).token_ids)``
    gives the same attention as ``analyze(loaded, text)``.
    """
    tokenized = tokenize_ids(loaded, token_ids, max_tokens=max_tokens)
    text = tokenized.texts[0]
    return _analyze_tokenized(loaded, tokenized, text=text, pair=None, max_tokens=max_tokens)


def _analyze_tokenized(
    loaded: LoadedModel,
    tokenized: Tokenized,
    *,
    text: str,
    pair: str | None,
    max_tokens: int | None,
) -> Analysis:
    """The forward pass and statistics shared by :func:`analyze` and :func:`analyze_ids`."""
    started = time.perf_counter()
    attn = _forward_attentions(loaded, tokenized)  # (L, H, T, T)
    forward_seconds = time.perf_counter() - started
    return Analysis.from_attentions(
        attn,
        tokenized.tokens,
        kind=loaded.kind,
        model_name=loaded.name,
        text=text,
        pair=pair,
        token_ids=tuple(tokenized.input_ids[0].tolist()),
        raw_tokens=tokenized.raw_tokens,
        special=tokenized.special,
        sentence_b_start=tokenized.sentence_b_start,
        truncated=tokenized.truncated,
        n_input_tokens=tokenized.n_input_tokens,
        max_tokens=min(max_tokens or loaded.max_tokens, loaded.max_tokens),
        forward_seconds=forward_seconds,
    )
