"""Head ablation: take chosen heads out (zero or mean ablation, :mod:`core.methods.ablation_hooks`)
and measure what changes.

The effect is KL divergence of the next-token distribution at the last position for decoders, and
the cosine similarity of the mean-pooled sentence embedding for encoders; :func:`ablation_effect`
also gives it at every position (KL of each position's next-token distribution; cosine of each
position's last hidden state). The output projection's bias stays: ablating every head of a BERT
or GPT-2 layer leaves its attention output at the bias ``b_O``, not 0.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine import budget
from core.engine.hooks import HookSet
from core.engine.tokenize import token_labels
from core.methods.ablation_hooks import (
    ABLATION_MODES,
    AblationMode,
    Head,
    ablate_heads,
    ablate_per_item,
    heads_by_layer,
)
from core.methods.predictions import TokenProb, top_k_probs, unembedding

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel, ModelKind

__all__ = [
    "ABLATION_MODES",
    "AblationEffect",
    "AblationMode",
    "HeadRanking",
    "ImportanceMetric",
    "RankingBaseline",
    "ablate_heads",
    "ablation_batch_size",
    "ablation_effect",
    "cosine_similarity",
    "kl_divergence",
    "mean_pool",
    "rank_heads",
    "ranking_baseline",
]

ImportanceMetric = Literal["kl", "1 - cosine"]
IMPORTANCE_METRIC: dict[ModelKind, ImportanceMetric] = {"decoder": "kl", "encoder": "1 - cosine"}


def kl_divergence(log_p: Tensor, log_q: Tensor) -> Tensor:
    """``KL(p || q) = sum_v p_v (ln p_v - ln q_v)`` in nats, from log-probabilities over the last
    axis, computed in float64 and never below 0. Shapes: ``(..., vocab) -> (...)``.

    >>> p = torch.log(torch.tensor([0.5, 0.5]))
    >>> round(kl_divergence(p, torch.log(torch.tensor([0.25, 0.75]))).item(), 4)  # 0.5 ln(4/3)
    0.1438
    >>> kl_divergence(p, p)
    tensor(0., dtype=torch.float64)
    """
    log_p, log_q = log_p.double(), log_q.double()
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1).clamp_min(0.0)


def mean_pool(hidden: Tensor, attention_mask: Tensor | None = None) -> Tensor:
    """Mean of the token vectors where ``attention_mask`` is 1 (the sentence-transformers pooling
    of all-MiniLM-L6-v2): ``(..., T, d), (..., T) -> (..., d)``.

    >>> mean_pool(torch.tensor([[1.0, 2.0], [3.0, 4.0], [9.0, 9.0]]), torch.tensor([1, 1, 0]))
    tensor([2., 3.])
    """
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:-1], device=hidden.device)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (..., T, 1)
    return (hidden * weights).sum(dim=-2) / weights.sum(dim=-2).clamp_min(1.0)


def cosine_similarity(a: Tensor, b: Tensor) -> float:
    """``a·b / (|a| |b|)``, in float64.

    >>> cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]))  # 1/sqrt(2)
    0.7071067811865475
    """
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def _measure(loaded: LoadedModel, inputs: dict[str, Tensor], copies: int = 1) -> Tensor:
    """One forward pass of ``copies`` copies of the (single-text) input. Decoders:
    log-probabilities of the next token after the last position, ``(copies, vocab)``. Encoders:
    the mean-pooled last hidden state, ``(copies, hidden)``. Float32 on the CPU."""
    batch = {key: value.expand(copies, -1) for key, value in inputs.items()}
    with torch.inference_mode():
        if loaded.kind == "decoder":
            out = loaded.model(**batch, use_cache=False, logits_to_keep=1, return_dict=True)
            return torch.log_softmax(out.logits[:, -1].float(), dim=-1).cpu()
        out = loaded.model.base_model(**batch, return_dict=True)
        hidden = out.last_hidden_state.float().cpu()  # (copies, T, d)
        mask = batch.get("attention_mask")
        return mean_pool(hidden, None if mask is None else mask.cpu())


_BLOCK = 128  # positions per block of logits, as in core.methods.predictions


def _measure_every_position(
    loaded: LoadedModel, inputs: dict[str, Tensor]
) -> tuple[Tensor, Tensor]:
    """:func:`_measure` of one copy, ``(X,)``, and the last hidden state it came from, ``(T,
    d)`` on the model's device (decoders: read from the base model inside the same pass)."""
    if loaded.kind != "decoder":
        with torch.inference_mode():
            out = loaded.model.base_model(**inputs, return_dict=True)
        hidden = out.last_hidden_state[0]  # (T, d)
        mask = inputs.get("attention_mask")
        pooled = mean_pool(hidden.float().cpu(), None if mask is None else mask[0].cpu())
        return pooled, hidden
    seen: list[Tensor] = []
    with HookSet() as hooks:
        hooks.forward(
            loaded.model.base_model, lambda module, args, out: seen.append(out.last_hidden_state)
        )
        summary = _measure(loaded, inputs)[0]
    return summary, seen[-1][0]  # (vocab,), (T, d)


def position_effects(loaded: LoadedModel, before: Tensor, after: Tensor) -> Tensor:
    """The effect at every position from the last hidden states ``before`` and ``after`` ``(T,
    d)``, float64 ``(T,)``: decoders ``KL(p_t || q_t)`` of the next-token distributions after
    each position t, ``softmax(W_U h_t)`` (a block of positions at a time, so no ``(T, vocab)``
    tensor is held); encoders the cosine similarity of each position's vector."""
    if loaded.kind != "decoder":
        return torch.nn.functional.cosine_similarity(before.double(), after.double(), dim=-1).cpu()
    head = unembedding(loaded)
    out = []
    with torch.inference_mode():
        for start in range(0, before.shape[0], _BLOCK):
            log_p = torch.log_softmax(head(before[start : start + _BLOCK]).float(), dim=-1)
            log_q = torch.log_softmax(head(after[start : start + _BLOCK]).float(), dim=-1)
            out.append(kl_divergence(log_p, log_q).cpu())  # (b,)
    return torch.cat(out)


def _importance(kind: ModelKind, before: Tensor, after: Tensor) -> Tensor:
    """``(1, X)`` before, ``(B, X)`` after -> ``(B,)`` float64: KL or ``1 - cosine``."""
    if kind == "decoder":
        return kl_divergence(before, after)
    cosine = torch.nn.functional.cosine_similarity(before.double(), after.double(), dim=-1)
    return 1.0 - cosine


@dataclass(frozen=True)
class AblationEffect:
    """What ablating ``heads`` did to one text.

    Decoders: ``kl_divergence`` = KL(before || after) of the next-token distribution after the
    last position (nats; 0 = unchanged) and the top tokens before and after. Encoders:
    ``cosine_similarity`` of the mean-pooled sentence embedding before and after (1 = unchanged).
    ``per_position``: the same at every position (:func:`position_effects`: KL per position for
    decoders, whose last entry is ``kl_divergence`` up to float rounding; cosine of each position's
    vector for encoders). ``mode``: zero or mean ablation.
    """

    kind: ModelKind
    heads: tuple[Head, ...]  # sorted (layer, head) pairs
    kl_divergence: float | None  # decoders
    top_before: tuple[TokenProb, ...]  # decoders; () for encoders
    top_after: tuple[TokenProb, ...]
    cosine_similarity: float | None  # encoders
    mode: AblationMode = "zero"
    per_position: tuple[float, ...] = ()  # (T,): KL (decoders) or cosine (encoders)

    @property
    def metric(self) -> ImportanceMetric:
        return IMPORTANCE_METRIC[self.kind]

    @property
    def importance(self) -> float:
        """KL divergence (decoders) or ``1 - cosine similarity`` (encoders): 0 = no effect."""
        if self.kl_divergence is not None:
            return self.kl_divergence
        return 1.0 - (self.cosine_similarity if self.cosine_similarity is not None else 1.0)

    @property
    def position_metric(self) -> str:
        """What ``per_position`` holds: ``"kl"`` (decoders) or ``"cosine"`` (encoders)."""
        return "kl" if self.kind == "decoder" else "cosine"


def _top(loaded: LoadedModel, log_probs: Tensor, k: int) -> tuple[TokenProb, ...]:
    probs, ids = top_k_probs(log_probs, k)  # log-probs are logits up to a constant
    labels = token_labels(loaded.tokenizer, ids.tolist())
    return tuple(
        TokenProb(int(i), label, float(p))
        for i, label, p in zip(ids.tolist(), labels, probs.tolist(), strict=True)
    )


def ablation_effect(
    loaded: LoadedModel,
    analysis: Analysis,
    heads: Iterable[Head],
    *,
    top_k: int = 5,
    mode: AblationMode = "zero",
) -> AblationEffect:
    """Two forward passes of ``analysis``' own inputs, without and with ``heads`` ablated
    (``mode``: ``"zero"`` or ``"mean"``, see :mod:`core.methods.ablation_hooks`), and what
    changed, at the end and at every position."""
    chosen = tuple(sorted(set(heads)))
    heads_by_layer(loaded, chosen)  # an InputError before any forward pass
    if mode not in ABLATION_MODES:
        raise ValueError(f"mode must be one of {ABLATION_MODES}, got {mode!r}")
    inputs = loaded.place(analysis.model_inputs())
    before, hidden_before = _measure_every_position(loaded, inputs)
    with ablate_heads(loaded, chosen, mode=mode):
        after, hidden_after = _measure_every_position(loaded, inputs)
    per_position = tuple(position_effects(loaded, hidden_before, hidden_after).tolist())
    if loaded.kind == "decoder":
        return AblationEffect(
            kind="decoder",
            heads=chosen,
            kl_divergence=float(kl_divergence(before, after)),
            top_before=_top(loaded, before, top_k),
            top_after=_top(loaded, after, top_k),
            cosine_similarity=None,
            mode=mode,
            per_position=per_position,
        )
    return AblationEffect(
        kind="encoder",
        heads=chosen,
        kl_divergence=None,
        top_before=(),
        top_after=(),
        cosine_similarity=cosine_similarity(before, after),
        mode=mode,
        per_position=per_position,
    )


@dataclass(frozen=True, eq=False)
class HeadRanking:
    """Every head's importance, one ablation at a time: ``importance[layer, head]`` is the KL
    divergence (decoders) or ``1 - cosine similarity`` (encoders) when that head alone is ablated;
    NaN where the head was not ablated (a stopped run, or a layer left out)."""

    kind: ModelKind
    metric: ImportanceMetric
    importance: Tensor  # (n_layers, n_heads), float64
    completed: bool  # False when should_stop() ended the run early
    n_done: int
    n_total: int
    seconds: float
    mode: AblationMode = "zero"

    def ranked(self) -> list[tuple[int, int, float]]:
        """``(layer, head, importance)`` of the heads ablated so far, most important first."""
        done = [
            (layer, head, value)
            for layer, row in enumerate(self.importance.tolist())
            for head, value in enumerate(row)
            if not math.isnan(value)
        ]
        return sorted(done, key=lambda item: -item[2])


@dataclass(frozen=True, eq=False)
class RankingBaseline:
    """What every ablation of one text is compared with: its model inputs (on the model's
    device) and the unablated output, ``(1, X)``. Made once by :func:`ranking_baseline`, so that
    ranking a model layer by layer does not tokenize and run the unablated pass per layer."""

    inputs: dict[str, Tensor]
    before: Tensor
    seconds: float


def ranking_baseline(loaded: LoadedModel, analysis: Analysis) -> RankingBaseline:
    """The unablated pass of ``analysis``' inputs, once for every layer of a ranking."""
    started = time.perf_counter()
    inputs = loaded.place(analysis.model_inputs())
    before = _measure(loaded, inputs)  # (1, X)
    return RankingBaseline(inputs, before, time.perf_counter() - started)


def ablation_batch_size(n_heads: int, seq_len: int, requested: int = 8) -> int:
    """How many ablations to run in one batched forward pass: ``requested``, fewer where the
    batch's attention scores (``batch x n_heads x T x T`` floats per layer) would pass 256 MB,
    at least 1.

    >>> ablation_batch_size(9, 20), ablation_batch_size(9, 1024), ablation_batch_size(9, 4096)
    (8, 7, 1)
    """
    per_item = budget.attention_bytes(1, n_heads, seq_len)  # one layer's scores, one copy
    return max(1, min(requested, _SCORE_BYTES // max(1, per_item)))


_SCORE_BYTES = 2**28


def rank_heads(
    loaded: LoadedModel,
    analysis: Analysis,
    *,
    layers: Sequence[int] | None = None,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    batch_size: int = 8,
    baseline: RankingBaseline | None = None,
    mode: AblationMode = "zero",
) -> HeadRanking:
    """Ablate every head of ``layers`` (default: all) one at a time and measure the effect.

    The single-head ablations run ``batch_size`` at a time (see :func:`ablation_batch_size`) as
    one forward pass over copies of the input, item b with its own head ablated (``mode``: zero
    or mean, each copy's mean taken over its own positions); batching changes only float
    rounding (KL within about 1e-7 of one pass per head). ``progress(done, total)`` is
    called after each batch; ``should_stop()`` is asked before each batch, and a true answer ends
    the run with ``completed=False`` and the heads done so far. ``baseline``: one made
    earlier by :func:`ranking_baseline` for the same analysis (``seconds`` then leaves it out).
    """
    chosen_layers = list(range(loaded.n_layers)) if layers is None else list(layers)
    targets = [(layer, head) for layer in chosen_layers for head in range(loaded.n_heads)]
    heads_by_layer(loaded, targets)
    started = time.perf_counter()
    if baseline is None:
        baseline = ranking_baseline(loaded, analysis)
    inputs, before = baseline.inputs, baseline.before  # before: (1, X)
    step = ablation_batch_size(loaded.n_heads, inputs["input_ids"].shape[1], batch_size)
    importance = torch.full((loaded.n_layers, loaded.n_heads), float("nan"), dtype=torch.float64)
    done = 0
    while done < len(targets):
        if should_stop is not None and should_stop():
            break
        chunk = targets[done : done + step]
        with ablate_per_item(loaded, [[head] for head in chunk], mode):
            after = _measure(loaded, inputs, copies=len(chunk))  # (B, X)
        for (layer, head), value in zip(
            chunk, _importance(loaded.kind, before, after).tolist(), strict=True
        ):
            importance[layer, head] = value
        done += len(chunk)
        if progress is not None:
            progress(done, len(targets))
    return HeadRanking(
        kind=loaded.kind,
        metric=IMPORTANCE_METRIC[loaded.kind],
        importance=importance,
        completed=done == len(targets),
        n_done=done,
        n_total=len(targets),
        seconds=time.perf_counter() - started,
        mode=mode,
    )
