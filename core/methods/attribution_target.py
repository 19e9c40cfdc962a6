"""What an attribution explains: one number the model computes from an analysis' own inputs, as
a function of the input embeddings (the "target"), and the baselines integrated gradients and
occlusion replace tokens with.

Decoders: the next-token logit, or log-probability, at a position (the last by default) for the
predicted token or one the reader types. Encoders (MiniLM, a sentence-embedding model): the cosine
similarity between the mean-pooled embeddings of sentence A and sentence B of the same pass, which
is what the model is trained to make meaningful; the attention shown beside it is that very pass.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import torch
from torch import Tensor

from core.engine.streaming import run_inputs
from core.engine.tokenize import mask_token_id, pad_token_id, single_token_id, token_labels
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "BASELINES",
    "MEASURES",
    "Baseline",
    "Measure",
    "Target",
    "baseline_embeddings",
    "input_embeddings",
    "resolve_target",
    "target_function",
]

Measure = Literal["logit", "log_prob", "similarity"]
Baseline = Literal["pad", "mask", "zero"]
MEASURES: tuple[Measure, ...] = ("logit", "log_prob", "similarity")
BASELINES: tuple[Baseline, ...] = ("pad", "mask", "zero")


@dataclass(frozen=True)
class Target:
    """A resolved target. ``position``: the query position whose output is explained (decoders:
    the position whose next token is scored; encoders: None, the target pools sentence A and B).
    ``token_id`` / ``token``: the scored next token (decoders). ``pooled_a`` / ``pooled_b``:
    the positions each sentence's mean pools (encoders: ``[0, b)`` and ``[b, T)``, special tokens
    included as sentence-transformers' mean pooling does)."""

    measure: Measure
    position: int | None
    token_id: int | None
    token: str | None
    pooled_a: tuple[int, ...] = ()
    pooled_b: tuple[int, ...] = ()

    @property
    def query_positions(self) -> tuple[int, ...]:
        """The positions whose attention rows the target reads: ``(position,)`` for decoders,
        every pooled position for encoders."""
        if self.position is not None:
            return (self.position,)
        return self.pooled_a + self.pooled_b


def resolve_target(
    loaded: LoadedModel,
    analysis: Analysis,
    *,
    measure: Measure | None = None,
    position: int | None = None,
    token: str | None = None,
) -> Target:
    """Check the reader's choice against ``analysis`` and fix every number the target needs.

    Decoders: ``measure`` ``"logit"`` (default) or ``"log_prob"``; ``position`` in ``0..T-1``
    (default ``T - 1``), else an :class:`InputError`; ``token`` None for the model's own top
    prediction at that position (one forward pass), else the one token the typed text is (a
    text the tokenizer splits is an :class:`InputError` listing the pieces). Encoders:
    ``"similarity"`` only, and the analysis must hold a second sentence."""
    seq_len = analysis.seq_len
    if loaded.kind == "encoder":
        if measure not in (None, "similarity"):
            raise InputError("error.attribution_measure", measure=measure, model=loaded.title)
        start = analysis.sentence_b_start
        if not analysis.pair or start is None or not 0 < start < seq_len:
            raise InputError("error.attribution_needs_pair", model=loaded.title)
        return Target(
            measure="similarity",
            position=None,
            token_id=None,
            token=None,
            pooled_a=tuple(range(start)),
            pooled_b=tuple(range(start, seq_len)),
        )
    measure = measure or "logit"
    if measure not in ("logit", "log_prob"):
        raise InputError("error.attribution_measure", measure=measure, model=loaded.title)
    if position is None:
        position = seq_len - 1
    if not 0 <= position < seq_len:
        raise InputError("error.attribution_position", position=position, last=seq_len - 1)
    if token is None:
        inputs = run_inputs(loaded, analysis.model_inputs())
        with torch.inference_mode():
            logits = loaded.model(**inputs).logits[0, position]  # (vocab,)
        token_id = int(logits.argmax())
    else:
        token_id = single_token_id(loaded, token)
    label = token_labels(loaded.tokenizer, [token_id])[0]
    return Target(measure=measure, position=position, token_id=token_id, token=label)


def input_embeddings(loaded: LoadedModel, analysis: Analysis) -> Tensor:
    """The token embeddings of ``analysis``' own ids, ``(1, T, d)``, detached, on the model's
    device: what the attributions are taken over (BERT adds positions and segments inside)."""
    ids = loaded.place(analysis.model_inputs())["input_ids"]  # (1, T)
    with torch.inference_mode():
        embedded = loaded.model.get_input_embeddings()(ids)  # (1, T, d)
    return embedded.clone().float()


def baseline_embeddings(
    loaded: LoadedModel, analysis: Analysis, embeds: Tensor, baseline: Baseline
) -> Tensor:
    """The reference input: every ordinary token's embedding replaced by the pad token's
    (``"pad"``), the mask token's (``"mask"``; models without one raise an
    :class:`InputError`) or zeros (``"zero"``); special tokens ([CLS], [SEP]) keep theirs, so
    the reference differs from the input in the text alone. ``(1, T, d)`` like ``embeds``."""
    if baseline not in BASELINES:
        raise InputError("error.attribution_baseline", baseline=baseline)
    if baseline == "zero":
        fill = torch.zeros_like(embeds[0, 0])  # (d,)
    else:
        token_id = pad_token_id(loaded) if baseline == "pad" else mask_token_id(loaded)
        ids = torch.tensor([token_id], device=embeds.device)  # (1,)
        with torch.inference_mode():
            fill = loaded.model.get_input_embeddings()(ids)[0].float().clone()  # (d,)
    ordinary = torch.tensor([not s for s in analysis.special], device=embeds.device)  # (T,)
    return torch.where(ordinary[None, :, None], fill, embeds)  # (1, T, d)


def _expand(inputs: dict[str, Tensor], batch: int) -> dict[str, Tensor]:
    return {key: value.expand(batch, -1) for key, value in inputs.items()}


def target_function(
    loaded: LoadedModel,
    analysis: Analysis,
    target: Target,
    *,
    output_attentions: bool = False,
) -> Callable[[Tensor], Tensor]:
    """``f(embeds)``: ``(B, T, d)`` token embeddings -> ``(B,)`` target values, differentiable,
    from the base model's pass with ``analysis``' other inputs (mask, segments) expanded to the
    batch. With ``output_attentions`` the function returns ``(values, attentions)``, the
    attentions as the model used them (their gradients are the ones attention × gradient reads).
    """
    other = {k: v for k, v in analysis.model_inputs().items() if k != "input_ids"}
    other = loaded.place(other)
    base = loaded.model.base_model
    head = loaded.model.get_output_embeddings() if target.position is not None else None

    extra = {"use_cache": False} if loaded.kind == "decoder" else {}

    def f(embeds: Tensor):
        inputs = _expand(other, embeds.shape[0])
        out = base(inputs_embeds=embeds, output_attentions=output_attentions, **inputs, **extra)
        hidden = out.last_hidden_state  # (B, T, d)
        if target.position is None:
            a = hidden[:, list(target.pooled_a)].mean(dim=1)  # (B, d)
            b = hidden[:, list(target.pooled_b)].mean(dim=1)  # (B, d)
            values = torch.nn.functional.cosine_similarity(a, b, dim=-1)  # (B,)
        else:
            logits = head(hidden[:, target.position]).float()  # (B, vocab)
            if target.measure == "log_prob":
                logits = torch.log_softmax(logits, dim=-1)
            values = logits[:, target.token_id]  # (B,)
        return (values, out.attentions) if output_attentions else values

    return f
