"""The one place that calls a tokenizer: text and token ids in, :class:`Tokenized` out, and
token ids back to readable labels.

Every method of AttnScope reads the tokenization an :class:`~core.engine.analysis.Analysis`
carries; none tokenizes a text again. Generation's prompt (:func:`encode_prompt`) and the labels
of predicted tokens (:func:`token_labels`) go through here too.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from core.engine.tokens import (
    Decode,
    broken_as_bytes,
    labels_by_decoding,
    labels_from_offsets,
    make_visible,
    mark_unknown,
    offsets_by_decoding,
)
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "Tokenized",
    "check_text",
    "count_tokens",
    "decoder",
    "encode_prompt",
    "encode_target",
    "end_token_ids",
    "mask_token_id",
    "raw_token",
    "pad_token_id",
    "single_token_id",
    "special_ids",
    "token_labels",
    "tokenize",
    "tokenize_ids",
    "tokenize_many",
    "unknown_token",
]


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
    return _from_encoding(tokenizer, fast, text, pair, encoding, 0, truncated, n_input)


def _from_encoding(
    tokenizer: Any,
    fast: bool,
    text: str,
    pair: str | None,
    encoding: Any,
    index: int,
    truncated: bool,
    n_input: int,
) -> Tokenized:
    """Item ``index`` of a tokenizer's ``encoding`` (tensors or lists) as a :class:`Tokenized`:
    what :func:`tokenize` and :func:`tokenize_many` share, so both label tokens alike."""

    def row(key: str) -> list:
        values = encoding[key][index]
        return values.tolist() if isinstance(values, torch.Tensor) else list(values)

    ids = row("input_ids")
    raw = tuple(tokenizer.convert_ids_to_tokens(ids))
    offsets = sequence_ids = None
    if fast:
        sequence_ids = encoding.sequence_ids(index)
        offsets = [tuple(pair_) for pair_ in row("offset_mapping")]
        labels = labels_from_offsets([text, pair or ""], offsets, sequence_ids, raw)
        b_start = next((t for t, s in enumerate(sequence_ids) if s == 1), None)
    else:
        labels = labels_by_decoding(ids, tokenizer.decode)
        b_start = None
        if pair is not None and encoding.get("token_type_ids") is not None:
            b_start = next((t for t, s in enumerate(row("token_type_ids")) if s == 1), None)
    labels = mark_unknown(labels, ids, *unknown_token(tokenizer))
    extra = {
        key: torch.tensor([row(key)], dtype=torch.long)  # (1, seq_len)
        for key in ("attention_mask", "token_type_ids")
        if key in encoding and encoding[key] is not None
    }
    return Tokenized(
        input_ids=torch.tensor([ids], dtype=torch.long),  # (1, seq_len)
        extra_inputs=extra,
        raw_tokens=raw,
        tokens=tuple(labels),
        special=tuple(bool(s) for s in row("special_tokens_mask")),
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


def unknown_token(tokenizer: Any) -> tuple[int | None, str | None]:
    """``tokenizer``'s unknown token as ``(id, name)``, e.g. ``(100, "[UNK]")``; ``None``s where
    it has none (byte-level BPE can write every text)."""
    return getattr(tokenizer, "unk_token_id", None), getattr(tokenizer, "unk_token", None)


def special_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of ``tokenizer``'s special tokens (``[CLS]``, ``<|im_start|>``, ...), without the
    unknown token: ``[UNK]`` stands for real characters of the text."""
    ids = {int(i) for i in getattr(tokenizer, "all_special_ids", None) or ()}
    unk = getattr(tokenizer, "unk_token_id", None)
    return frozenset(ids - {unk})


# Special tokens that end a text or a turn, by name without its brackets and bars:
# <|endoftext|>, <|im_end|>, </s>, <|eot_id|>, <end_of_turn>, <|end|>, ... (not <|end_header_id|>,
# which ends a header inside a turn).
_END_NAMES = frozenset(
    {"endoftext", "end_of_text", "im_end", "/s", "eos", "eot", "eot_id", "eom_id", "end_of_turn"}
    | {"end", "endofturn"}
)


def end_token_ids(tokenizer: Any) -> frozenset[int]:
    """The ids of ``tokenizer``'s special tokens that end a text or a turn: its ``eos_token`` and
    every special token named like one (``<|endoftext|>`` and ``<|im_end|>`` in SmolLM2, but not
    ``<|im_start|>``). A chat model may end its answer with either, so generation stops at both."""
    ids = {i for i, name in special_ids_with_names(tokenizer) if _ends(name)}
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is not None:
        ids.add(int(eos))
    return frozenset(ids)


def _ends(name: str) -> bool:
    """Whether a special token's name says it ends a text or a turn.

    >>> [_ends(n) for n in ("<|endoftext|>", "<|im_end|>", "</s>", "<|eot_id|>", "<|im_start|>")]
    [True, True, True, True, False]
    >>> [_ends(n) for n in ("[SEP]", "<s>", "<end_of_turn>", "[UNK]", "<|end_header_id|>")]
    [False, False, True, False, False]
    """
    return name.lower().strip("<>[]|") in _END_NAMES


def special_ids_with_names(tokenizer: Any) -> list[tuple[int, str]]:
    """``(id, name)`` of every special token ``tokenizer`` knows, the added ones marked special
    (Llama 3's ``<|eot_id|>``) included."""
    found = dict(
        zip(
            getattr(tokenizer, "all_special_ids", None) or (),
            getattr(tokenizer, "all_special_tokens", None) or (),
            strict=False,
        )
    )
    added = getattr(tokenizer, "added_tokens_decoder", None) or {}
    for token_id, token in added.items():
        if getattr(token, "special", False):
            found.setdefault(int(token_id), str(getattr(token, "content", token)))
    return sorted((int(i), str(name)) for i, name in found.items())


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
    labels = broken_as_bytes(labels_from_offsets([text], offsets, sequence_ids, raw), raw)
    input_ids = torch.tensor([ids], dtype=torch.long)  # (1, seq_len)
    return Tokenized(
        input_ids=input_ids,
        extra_inputs={"attention_mask": torch.ones_like(input_ids)},
        raw_tokens=raw,
        tokens=tuple(mark_unknown(labels, ids, *unknown_token(tokenizer))),
        special=special,
        sentence_b_start=None,
        truncated=n_input > limit,
        n_input_tokens=n_input,
        texts=(text,),
        offsets=tuple(offsets),
        sequence_ids=sequence_ids,
    )


def token_labels(tokenizer: Any, token_ids: Sequence[int]) -> tuple[str, ...]:
    """Readable labels for token ids: each id decoded on its own, then :func:`core.engine.tokens.
    make_visible` (a leading space is dropped, a lone space shows as ``␣``). A byte-level piece of
    a multi-byte character decodes to ``�``."""
    cache: dict[int, str] = {}
    labels = []
    for token_id in token_ids:
        if token_id not in cache:
            cache[token_id] = make_visible(tokenizer.decode([token_id]))
        labels.append(cache[token_id])
    return tuple(labels)


def raw_token(tokenizer: Any, token_id: int) -> str:
    """The tokenizer's own string for one id (``Ġthe``, ``##ing``, ``<0xE6>``)."""
    return tokenizer.convert_ids_to_tokens(token_id)


def encode_prompt(loaded: LoadedModel, prompt: str, *, chat: bool) -> tuple[str, list[int]]:
    """A generation prompt as ``(text the model reads, token ids)``: wrapped in the model's chat
    template when ``chat`` (then no further special tokens are added), else tokenized as
    :func:`tokenize` does. A model without a chat template raises an :class:`InputError`."""
    tokenizer = loaded.tokenizer
    if not chat:
        return prompt, list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    if not getattr(tokenizer, "chat_template", None):
        raise InputError("error.no_chat_template", model=loaded.title)
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
    )
    return text, list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_target(loaded: LoadedModel, target: str) -> list[int]:
    """An encoder-decoder's target as its target tokenizer writes it (end token included), cut
    to the model's limit; an empty target is an :class:`InputError`."""
    if not target or not target.strip():
        raise InputError("error.empty_target")
    check_text(target)
    ids = loaded.tokenizer(text_target=target, add_special_tokens=True)["input_ids"]
    return [int(i) for i in ids[: loaded.max_tokens]]


def count_tokens(loaded: LoadedModel, texts: Sequence[str], *, block: int = 1024) -> list[int]:
    """How many tokens each of ``texts`` has as :func:`tokenize` would make them, before
    truncation (special tokens included): one tokenizer call per ``block`` texts, no offsets, so a
    corpus can be sorted by length cheaply."""
    counts: list[int] = []
    for start in range(0, len(texts), block):
        part = list(texts[start : start + block])
        encoded = loaded.tokenizer(part, add_special_tokens=True, truncation=False, verbose=False)
        counts += [len(ids) for ids in encoded["input_ids"]]
    return counts


def tokenize_many(
    loaded: LoadedModel, texts: Sequence[str], *, max_tokens: int | None = None
) -> list[Tokenized]:
    """:func:`tokenize` of each text, from one tokenizer call for the lot (a fast tokenizer
    encodes a list in parallel): the same ids, labels, special mask and truncation as one text at
    a time. Texts over the limit, and slow tokenizers, go through :func:`tokenize` itself."""
    tokenizer = loaded.tokenizer
    if not getattr(tokenizer, "is_fast", False) or not texts:
        return [tokenize(loaded, text, max_tokens=max_tokens) for text in texts]
    for text in texts:
        check_text(text)
    limit = min(max_tokens or loaded.max_tokens, loaded.max_tokens)
    encoding = tokenizer(
        list(texts),
        add_special_tokens=True,
        truncation=False,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,
    )
    out = []
    for index, text in enumerate(texts):
        n_input = len(encoding["input_ids"][index])
        if n_input > limit:
            out.append(tokenize(loaded, text, max_tokens=max_tokens))
        else:
            out.append(_from_encoding(tokenizer, True, text, None, encoding, index, False, n_input))
    return out


def pad_token_id(loaded: LoadedModel) -> int:
    """The id a padded position gets: the tokenizer's pad token, else its end-of-sequence token,
    else 0. Padded positions are masked out, so any valid id does."""
    tokenizer = loaded.tokenizer
    for name in ("pad_token_id", "eos_token_id"):
        value = getattr(tokenizer, name, None)
        if isinstance(value, int):
            return value
    return 0


def mask_token_id(loaded: LoadedModel) -> int:
    """The tokenizer's mask token (``[MASK]`` in BERT), or an :class:`InputError` for a model
    that has none (SmolLM2): an attribution baseline made of masks needs one."""
    value = getattr(loaded.tokenizer, "mask_token_id", None)
    if not isinstance(value, int):
        raise InputError("error.attribution_no_mask", model=loaded.title)
    return value


def single_token_id(loaded: LoadedModel, text: str) -> int:
    """The one token id ``text`` is, as typed (a leading space is part of it in byte-level
    vocabularies: ``" Paris"`` and ``"Paris"`` are different tokens). A text the tokenizer splits
    into several pieces, or none, raises an :class:`InputError` that lists the pieces, so the
    reader can pick one of them as the target."""
    if not text or not text.strip():
        raise InputError("error.attribution_empty_token")
    ids = list(loaded.tokenizer(text, add_special_tokens=False)["input_ids"])
    if len(ids) != 1:
        pieces = " | ".join(token_labels(loaded.tokenizer, ids))
        raise InputError("error.attribution_token_split", token=text, n=len(ids), pieces=pieces)
    return int(ids[0])
