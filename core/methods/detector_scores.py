"""Head detector scores from the model: previous-token, duplicate-token and induction scores of
every head, measured on sequences of random tokens repeated twice (:func:`detector_scores`, one
measurement per model and seed), and any pattern scored on a text's own attention
(:func:`text_scores`, :func:`score_pattern`). The formulas are in :mod:`core.methods.detectors`.

Induction heads (Olsson et al. 2022, "In-context Learning and Induction Heads") are found as
TransformerLens finds them: ``n`` random tokens ``r`` are repeated, ``[r, r]``, so the second
half can only be predicted by copying; a head at query ``i`` of the second half that attends to
``i - n + 1`` (the token after the earlier occurrence of its own token) is doing induction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.streaming import map_batch_layers, map_layers
from core.engine.tokenize import special_ids, tokenize
from core.methods.detectors import (
    PatternRows,
    duplicate_pattern,
    induction_pattern,
    offset_pattern,
    pattern_score,
)
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "DETECTORS",
    "DetectorScores",
    "RepeatedTokens",
    "TextScores",
    "detector_scores",
    "repeated_random_tokens",
    "score_pattern",
    "scores_on_tokens",
    "text_scores",
]

DETECTORS = ("previous_token", "duplicate_token", "induction")


@dataclass(frozen=True, eq=False)
class RepeatedTokens:
    """Sequences of ``n_tokens`` random tokens repeated twice, wrapped in the special tokens the
    tokenizer adds to any input (BERT: ``[CLS] r r [SEP]``; SmolLM2 adds none)."""

    input_ids: Tensor  # (n_sequences, seq_len)
    special: Tensor  # (n_sequences, seq_len) bool: the tokenizer's own special tokens
    start: int  # position of the first random token
    n_tokens: int  # random tokens per half
    seed: int


@dataclass(frozen=True, eq=False)
class DetectorScores:
    """Every head's detector scores on repeated random tokens, ``(n_layers, n_heads)`` float32
    each, averaged over the sequences (rows with a target only; see
    :func:`core.methods.detectors.pattern_score`)."""

    previous_token: Tensor  # (L, H): i -> i - 1, over every query with a previous token
    duplicate_token: Tensor  # (L, H): i -> i - n, over the second half
    induction: Tensor  # (L, H): i -> i - n + 1, over the second half
    seed: int
    n_tokens: int  # random tokens per half
    seq_len: int  # tokens per sequence (2 n plus special tokens)
    n_sequences: int
    tokens: RepeatedTokens

    def score(self, name: str) -> Tensor:
        """The scores of detector ``name`` (one of :data:`DETECTORS`)."""
        if name not in DETECTORS:
            raise KeyError(f"detector must be one of {DETECTORS}, got {name!r}")
        return {
            "previous_token": self.previous_token,
            "duplicate_token": self.duplicate_token,
            "induction": self.induction,
        }[name]

    def top(self, name: str, k: int) -> list[tuple[int, int]]:
        """The ``k`` heads with the highest ``name`` score, best first, as ``(layer, head)``."""
        values = self.score(name)
        order = values.flatten().argsort(descending=True)[:k]
        return [(int(i) // values.shape[1], int(i) % values.shape[1]) for i in order]


def _wrapping(loaded: LoadedModel) -> tuple[list[int], list[int]]:
    """The special token ids the tokenizer puts before and after any text's tokens (read from
    how it tokenizes one word: its leading and trailing special tokens)."""
    found = tokenize(loaded, "a")
    ids, special = found.input_ids[0].tolist(), list(found.special)
    first = special.index(False)
    last = len(special) - special[::-1].index(False)
    return ids[:first], ids[last:]


def repeated_random_tokens(
    loaded: LoadedModel, n_tokens: int = 20, n_sequences: int = 4, seed: int = 0
) -> RepeatedTokens:
    """``n_sequences`` sequences of ``n_tokens`` distinct random ordinary tokens (a seeded
    ``torch.Generator``; special tokens never drawn), each repeated twice and wrapped as the
    tokenizer wraps any input (a BOS where the model uses
    one, BERT's ``[CLS]`` and ``[SEP]``). A small model gets fewer tokens a half than asked
    for: at most what its context (twice the half and the wrapping) and its vocabulary allow;
    ``n_tokens`` of the result says how many."""
    tokenizer = loaded.tokenizer
    excluded = special_ids(tokenizer) | {getattr(tokenizer, "unk_token_id", None)}
    candidates = torch.tensor([i for i in range(len(tokenizer)) if i not in excluded])
    prefix, suffix = _wrapping(loaded)
    room = (loaded.max_tokens - len(prefix) - len(suffix)) // 2
    n_tokens = min(n_tokens, room, len(candidates))
    if n_tokens < 2 or n_sequences < 1:
        raise InputError("error.detector_size", n_tokens=n_tokens, n_sequences=n_sequences)
    generator = torch.Generator().manual_seed(seed)
    start = len(prefix)
    rows, specials = [], []
    for _ in range(n_sequences):
        half = candidates[torch.randperm(len(candidates), generator=generator)[:n_tokens]]
        body = half.repeat(2).tolist()  # (2 n,)
        wrapped = prefix + body + suffix
        mask = [True] * len(wrapped)
        mask[start : start + len(body)] = [False] * len(body)
        rows.append(wrapped)
        specials.append(mask)
    return RepeatedTokens(
        input_ids=torch.tensor(rows),  # (S, T)
        special=torch.tensor(specials),  # (S, T)
        start=start,
        n_tokens=n_tokens,
        seed=seed,
    )


def detector_scores(
    loaded: LoadedModel,
    *,
    n_tokens: int = 20,
    n_sequences: int = 4,
    seed: int = 0,
    rows: PatternRows = "target",
) -> DetectorScores:
    """Previous-token, duplicate-token and induction scores of every head, from one batched
    forward pass over :func:`repeated_random_tokens` (no padding: all sequences have one
    length). Each score is averaged over the sequences."""
    tokens = repeated_random_tokens(loaded, n_tokens, n_sequences, seed)
    return scores_on_tokens(loaded, tokens, rows=rows)


def scores_on_tokens(
    loaded: LoadedModel, tokens: RepeatedTokens, *, rows: PatternRows = "target"
) -> DetectorScores:
    """:func:`detector_scores` on repeated tokens made elsewhere (the lab's own task, with the
    BOS its model was trained with)."""
    ids, special = tokens.input_ids, tokens.special
    seq_len = ids.shape[1]
    patterns = {
        "previous_token": offset_pattern(seq_len, 1).expand(len(ids), seq_len, seq_len),
        "duplicate_token": duplicate_pattern(ids, special),  # (S, T, T)
        "induction": induction_pattern(ids, special),  # (S, T, T)
    }
    scores = {name: torch.zeros(loaded.n_layers, loaded.n_heads) for name in DETECTORS}

    def on_layer(layer: int, weights: Tensor) -> None:
        attn = weights.float().cpu()  # (S, H, T, T)
        for name, pattern in patterns.items():
            scores[name][layer] = pattern_score(attn, pattern[:, None], rows).mean(dim=0)  # (H,)

    inputs = {"input_ids": ids, "attention_mask": torch.ones_like(ids)}
    map_batch_layers(loaded, inputs, on_layer)
    return DetectorScores(
        **scores,
        seed=tokens.seed,
        n_tokens=tokens.n_tokens,
        seq_len=seq_len,
        n_sequences=len(ids),
        tokens=tokens,
    )


@dataclass(frozen=True, eq=False)
class TextScores:
    """Detector scores of every head on one text's own attention, ``(n_layers, n_heads)``:
    previous token over every query with one, duplicate token over the queries whose token
    occurred before (NaN everywhere when no token repeats)."""

    previous_token: Tensor  # (L, H)
    duplicate_token: Tensor  # (L, H)
    has_duplicates: bool


def score_patterns(
    loaded: LoadedModel, analysis: Analysis, patterns: dict[str, Tensor], rows: PatternRows
) -> dict[str, Tensor]:
    """Every head of ``analysis`` scored against each ``(T, T)`` pattern -> ``(L, H)`` each:
    from the weights the analysis holds, and one forward pass over its own inputs for the layers
    it does not hold (long inputs)."""
    out = {name: torch.zeros(analysis.n_layers, analysis.n_heads) for name in patterns}

    def on_layer(layer: int, weights: Tensor) -> None:
        attn = weights.float().cpu()  # (H, T, T)
        for name, pattern in patterns.items():
            out[name][layer] = pattern_score(attn, pattern, rows)  # (H,)

    missing = [layer for layer, w in enumerate(analysis.layer_weights) if w is None]
    if missing:
        if not analysis.runnable:
            raise InputError("error.detector_not_runnable")
        map_layers(loaded, analysis.model_inputs(), on_layer, stop_after=max(missing))
    for layer, weights in enumerate(analysis.layer_weights):
        if weights is not None:
            on_layer(layer, weights)
    return out


def score_pattern(
    loaded: LoadedModel, analysis: Analysis, pattern: Tensor, rows: PatternRows = "target"
) -> Tensor:
    """Every head of ``analysis`` scored against one ``(T, T)`` pattern: ``(L, H)``."""
    if pattern.shape != (analysis.seq_len, analysis.seq_len):
        raise ValueError(f"pattern must be {analysis.seq_len} x {analysis.seq_len}")
    return score_patterns(loaded, analysis, {"pattern": pattern}, rows)["pattern"]


def text_scores(loaded: LoadedModel, analysis: Analysis) -> TextScores:
    """Previous-token and duplicate-token scores of every head on ``analysis``' own text (its
    token ids; special tokens never count as duplicates)."""
    ids = torch.tensor(analysis.token_ids)  # (T,)
    special = torch.tensor(analysis.special)  # (T,)
    duplicate = duplicate_pattern(ids, special)  # (T, T)
    found = score_patterns(
        loaded,
        analysis,
        {"previous_token": offset_pattern(len(ids), 1), "duplicate_token": duplicate},
        "target",
    )
    return TextScores(
        previous_token=found["previous_token"],
        duplicate_token=found["duplicate_token"],
        has_duplicates=bool(duplicate.sum() > 0),
    )
