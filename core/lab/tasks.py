"""What the lab trains on: repeated random sequences (the task on which induction heads form,
Olsson et al. 2022) or next-token windows of texts, each drawn from a seeded
``torch.Generator`` so that a run is repeatable.

A repeated sequence is ``[<s>] r_1 .. r_n r_1 .. r_n``: ``n`` distinct random ordinary tokens
(special ids 0..3 never drawn), then the same ``n`` again. The first half cannot be predicted
(loss near ``ln(V - 4)``); from the second token of the second half on, a model that copies
the token after the earlier occurrence of the current one predicts every token exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import torch
from torch import Tensor

from core.lab.tokenizer import SPECIAL_TOKENS, LabVocabulary
from core.policy.errors import InputError

__all__ = ["Batch", "RepeatTask", "TextTask", "masked_mean", "position_losses", "text_task"]

N_SPECIAL = len(SPECIAL_TOKENS)
BOS_ID = 1
EOS_ID = 2
PAD_ID = 3


@dataclass(frozen=True, eq=False)
class Batch:
    """Token ids and which next-token targets count: column ``p`` of each mask is the target
    ``p + 1``. ``first`` and ``repeated`` (repeat task only) mark the predictable targets of
    each half: the 2nd to n-th token of the first half, and of the repeated half."""

    ids: Tensor  # (B, T)
    counted: Tensor  # (B, T - 1) bool: real tokens (not padding)
    first: Tensor | None = None  # (B, T - 1) bool
    repeated: Tensor | None = None  # (B, T - 1) bool


@dataclass(frozen=True)
class RepeatTask:
    """Repeated random sequences: ``n`` random tokens, then the same again; ``<s>`` first when
    ``bos``, ``<pad>`` after a sequence shorter than the longest. ``n`` is drawn for each
    sequence from ``min_half .. half`` (``min_half`` None: always ``half``), and ``k`` random
    other tokens from ``0 .. max_offset`` go before the repeated part.

    Both are what makes a model learn induction. With one ``n`` a single layer-0 head can copy
    from the fixed offset ``n - 1`` back by the learned positions alone; with sequences that
    all start at position 1, a position says much about ``n``. Either scores as induction on
    the detector's sequences but is not the mechanism (two layers: a previous-token head, then
    a head that attends to the token after the earlier occurrence of the current one)."""

    half: int = 24
    bos: bool = True
    min_half: int | None = None
    max_offset: int = 0

    @property
    def start(self) -> int:
        """Position of the first random token."""
        return int(self.bos)

    @property
    def seq_len(self) -> int:
        """The longest sequence (``n = half``, ``k = max_offset``)."""
        return self.start + self.max_offset + 2 * self.half

    def batch(self, batch_size: int, vocab_size: int, generator: torch.Generator) -> Batch:
        """``batch_size`` sequences ``(B, start + 2 half)``: each half is ``n`` distinct tokens
        drawn from ids ``4 .. vocab_size - 1``, padded to the longest.

        >>> found = RepeatTask(half=3).batch(2, 10, torch.Generator().manual_seed(0))
        >>> ids = found.ids
        >>> ids.shape, bool((ids[:, 1:4] == ids[:, 4:7]).all()), ids[:, 0].tolist()
        (torch.Size([2, 7]), True, [1, 1])
        >>> found.first[0].tolist(), found.repeated[0].tolist()  # targets 2, 3 and 5, 6
        ([False, True, True, False, False, False], [False, False, False, False, True, True])
        """
        n_ordinary = vocab_size - N_SPECIAL
        low = self.half if self.min_half is None else self.min_half
        if not 2 <= low <= self.half <= n_ordinary - self.max_offset:
            raise InputError("lab.error_half", half=self.half, n_ordinary=n_ordinary)
        n = torch.full((batch_size, 1), self.half)  # (B, 1)
        if low < self.half:
            n = torch.randint(low, self.half + 1, (batch_size, 1), generator=generator)
        k = torch.zeros(batch_size, 1, dtype=torch.long)  # (B, 1)
        if self.max_offset:
            k = torch.randint(0, self.max_offset + 1, (batch_size, 1), generator=generator)
        order = torch.rand(batch_size, n_ordinary, generator=generator).argsort(dim=1)  # (B, V-4)
        # the first n of each row's draw are its half, the k from column `half` on go before
        drawn = order[:, : self.half + self.max_offset] + N_SPECIAL  # (B, half + max_offset)
        place = torch.arange(self.max_offset + 2 * self.half)[None, :]  # (1, L)
        column = torch.where(place < k, self.half + place, (place - k) % n)  # (B, L)
        body = drawn.gather(1, column.clamp(max=drawn.shape[1] - 1))  # (B, L)
        body = body.where(place < k + 2 * n, PAD_ID)
        if self.bos:
            body = torch.cat([torch.full((batch_size, 1), BOS_ID), body], dim=1)  # (B, T)
        where = torch.arange(1, body.shape[1])[None, :] - self.start - k  # (B, T-1)
        return Batch(
            ids=body,
            counted=where < 2 * n,  # (B, T-1): the offset's tokens count, padding does not
            first=(where >= 1) & (where < n),
            repeated=(where >= n + 1) & (where < 2 * n),
        )

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "repeat", **asdict(self)}


@dataclass(frozen=True, eq=False)
class TextTask:
    """Next-token windows of texts: every text's tokens followed by ``</s>``, joined into one
    stream; a batch is ``window + 1`` consecutive tokens from random places in it."""

    ids: Tensor  # (N,) the stream
    window: int  # tokens a model sees (its context at most)
    source: str  # where the texts came from: "sample", a file name, "upload"
    n_texts: int

    @property
    def seq_len(self) -> int:
        return self.window

    def batch(self, batch_size: int, vocab_size: int, generator: torch.Generator) -> Batch:
        """``(B, window)`` token ids from random starts in the stream; every target counts."""
        last = len(self.ids) - self.window  # the latest start
        starts = torch.randint(0, last + 1, (batch_size,), generator=generator)  # (B,)
        offsets = torch.arange(self.window)  # (W,)
        ids = self.ids[starts[:, None] + offsets[None, :]]  # (B, W)
        return Batch(ids=ids, counted=torch.ones(batch_size, self.window - 1, dtype=torch.bool))

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "text",
            "window": self.window,
            "source": self.source,
            "n_texts": self.n_texts,
            "n_tokens": len(self.ids),
        }


def text_task(
    vocabulary: LabVocabulary, texts: Sequence[str], *, window: int, source: str = "texts"
) -> TextTask:
    """``texts`` tokenized by ``vocabulary``'s tokenizer (no truncation, through
    :func:`core.engine.tokenize.tokenize_many`) as a :class:`TextTask`. Fewer tokens than one
    window raise an :class:`InputError`."""
    from core.engine.tokenize import tokenize_many
    from core.lab.model import vocabulary_model

    loaded = vocabulary_model(vocabulary)

    texts = [text for text in texts if text and text.strip()]
    if not texts:
        raise InputError("lab.error_no_texts")
    found = tokenize_many(replace(loaded, max_tokens=10**9), texts)
    parts = [torch.cat([t.input_ids[0], torch.tensor([EOS_ID])]) for t in found]  # each (T_i + 1,)
    stream = torch.cat(parts)  # (N,)
    if len(stream) <= window:
        raise InputError("lab.error_too_few_tokens", n_tokens=len(stream), window=window)
    return TextTask(ids=stream, window=window, source=source, n_texts=len(texts))


def position_losses(logits: Tensor, ids: Tensor) -> Tensor:
    """Cross-entropy of predicting each next token: logits ``(B, T, V)`` and ids ``(B, T)`` ->
    ``(B, T - 1)``, column ``p`` the loss of token ``p + 1`` given tokens ``0..p``.

    >>> logits = torch.zeros(1, 3, 4)  # uniform over 4 tokens: ln 4 each
    >>> position_losses(logits, torch.tensor([[0, 1, 2]]))
    tensor([[1.3863, 1.3863]])
    """
    predicted = logits[:, :-1]  # (B, T-1, V)
    targets = ids[:, 1:]  # (B, T-1)
    losses = torch.nn.functional.cross_entropy(
        predicted.flatten(0, 1), targets.flatten(), reduction="none"
    )  # (B (T-1),)
    return losses.view(targets.shape)  # (B, T-1)


def masked_mean(losses: Tensor, mask: Tensor | None) -> float | None:
    """The mean of ``losses`` where ``mask`` is True; None without a mask or a True entry.

    >>> masked_mean(torch.tensor([[1.0, 2.0, 6.0]]), torch.tensor([[True, False, True]]))
    3.5
    """
    if mask is None or not bool(mask.any()):
        return None
    return float(losses[mask].mean())
