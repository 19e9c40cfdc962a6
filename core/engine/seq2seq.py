"""Encoder-decoder models (T5, BART, Marian/OPUS-MT, M2M, NLLB): a source text and a target,
given (teacher-forced) or generated step by step, and their three kinds of attention.

One pass gives encoder self-attention (source x source), decoder self-attention (decoder inputs x
decoder inputs, causal) and cross-attention (queries: the decoder positions, each writing one
target token; keys: the source tokens). The first two are ordinary
:class:`~core.engine.analysis.Analysis` objects, so every view, statistic and the words toggle work
on them unchanged; cross-attention is rectangular, ``T_tgt x T_src``, so it is a
:class:`CrossAttention` with its own query and key tokens and statistics over the source.

Teacher forcing follows training: the decoder reads ``[start] + y[:-1]`` and row i writes ``y[i]``.
Generation (greedy or sampled, :mod:`core.methods.sampling`) runs the encoder once and the
decoder once per step, keeping the new token's cross-attention row at that step.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine import stats
from core.engine.analysis import Analysis, AttendedToken
from core.engine.attended import attended_tokens
from core.engine.model_kinds import require_kind
from core.engine.tokenize import (
    Tokenized,
    encode_target,
    token_labels,
    tokenize,
    tokenize_ids,
)
from core.methods.sampling import GenerationConfig, choose_token, next_token_distribution
from core.policy.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "CrossAttention",
    "Seq2SeqAnalysis",
    "TranslationStep",
    "analyze_pair",
    "translate",
]

StopFn = Callable[[], bool]


@dataclass(frozen=True, eq=False)
class CrossAttention:
    """Cross-attention ``[layer, head, target_pos, source_pos]``: row i is the decoder position
    that writes target token i, columns are the source tokens; every row sums to 1."""

    weights: Tensor  # (n_layers, n_heads, T_tgt, T_src), float32 on the CPU
    query_tokens: tuple[str, ...]  # the target tokens, one per row
    key_tokens: tuple[str, ...]  # the source tokens, one per column

    @property
    def n_layers(self) -> int:
        return self.weights.shape[0]

    @property
    def n_heads(self) -> int:
        return self.weights.shape[1]

    def layer(self, layer: int) -> Tensor:
        """All heads of one layer, ``(n_heads, T_tgt, T_src)``."""
        return self.weights[layer]

    def head(self, layer: int, head: int) -> Tensor:
        """One head, ``(T_tgt, T_src)``."""
        return self.weights[layer, head]

    def layer_average(self, layer: int) -> Tensor:
        """The head average of one layer, ``(T_tgt, T_src)``."""
        return self.weights[layer].mean(dim=0)

    @property
    def head_entropy(self) -> Tensor:
        """``E[l, h] = mean_i -sum_j a[l, h, i, j] ln a[l, h, i, j]`` over target rows i and
        source keys j, ``(n_layers, n_heads)``; every row sees all ``T_src`` keys."""
        return stats.row_entropy(self.weights).mean(dim=-1)

    @property
    def normalized_head_entropy(self) -> Tensor:
        """``E / ln T_src`` (1 for uniform attention over the source), ``(n_layers, n_heads)``."""
        return self.head_entropy / stats.max_entropy(self.weights.shape[-1])

    @property
    def received_by_head(self) -> Tensor:
        """Each source token's share of the target's attention, ``mean_i a[l, h, i, j]``,
        ``(n_layers, n_heads, T_src)``."""
        return stats.received_attention(self.weights)

    def most_attended(self, top_k: int = 5, *, per_head: bool = False) -> tuple[AttendedToken, ...]:
        """The ``top_k`` source tokens receiving the most cross-attention per layer (or head)."""
        received = self.received_by_head
        received = received if per_head else received.mean(dim=1, keepdim=True)
        return attended_tokens(received, self.key_tokens, top_k, per_head=per_head, causal=False)


@dataclass(frozen=True)
class TranslationStep:
    """One generated target token and its cross-attention at the step that wrote it."""

    position: int  # index in the target
    token_id: int
    token: str
    cross: Tensor  # (n_layers, n_heads, T_src): the new token's row of cross-attention
    candidates: tuple[tuple[str, float], ...]  # the most likely tokens and their probabilities


@dataclass(frozen=True, eq=False)
class Seq2SeqAnalysis:
    """A source and a target under one encoder-decoder model: three kinds of attention."""

    encoder: Analysis  # source x source
    decoder: Analysis  # decoder inputs x decoder inputs, causal
    cross: CrossAttention  # target x source
    source: Tokenized
    target: Tokenized  # the target tokens, one per decoder row
    steps: tuple[TranslationStep, ...]  # generated: one per token; teacher-forced: ()

    @property
    def source_tokens(self) -> tuple[str, ...]:
        return self.source.tokens

    @property
    def target_tokens(self) -> tuple[str, ...]:
        return self.target.tokens

    @property
    def target_text(self) -> str:
        return self.target.texts[0]

    @property
    def content_key(self) -> tuple:
        return ("seq2seq", self.encoder.content_key, self.decoder.token_ids, bool(self.steps))


def _config_id(loaded: LoadedModel, name: str) -> int | None:
    for config in (getattr(loaded.model, "generation_config", None), loaded.model.config):
        value = getattr(config, name, None) if config is not None else None
        if isinstance(value, list):
            value = value[0] if value else None
        if value is not None:
            return int(value)
    return None


def _start_id(loaded: LoadedModel) -> int:
    start = _config_id(loaded, "decoder_start_token_id")
    if start is None:
        start = _config_id(loaded, "pad_token_id")
    if start is None:
        raise UnsupportedModelError("error.no_decoder_start", model=loaded.title)
    return start


def _end_ids(loaded: LoadedModel) -> frozenset[int]:
    ends = getattr(loaded.model.generation_config, "eos_token_id", None)
    ends = ends if ends is not None else loaded.model.config.eos_token_id
    return frozenset([ends] if isinstance(ends, int) else list(ends or []))


def _forward(
    loaded: LoadedModel, source: Tensor, decoder_ids: Sequence[int], encoded: object = None
) -> tuple[object, object]:
    """One pass with every attention: ``source`` ``(1, T_src)``, decoder inputs ``(T_dec,)``."""
    inputs = loaded.place(
        {
            "input_ids": source,  # (1, T_src)
            "attention_mask": torch.ones_like(source),  # (1, T_src)
            "decoder_input_ids": torch.tensor([list(decoder_ids)]),  # (1, T_dec)
        }
    )
    if encoded is not None:
        del inputs["input_ids"]
        inputs["encoder_outputs"] = encoded
    with torch.inference_mode():
        out = loaded.model(**inputs, output_attentions=True, return_dict=True)
    kinds = (out.encoder_attentions, out.decoder_attentions, out.cross_attentions)
    if encoded is None and any(not a or any(x is None for x in a) for a in kinds):
        raise UnsupportedModelError("error.no_attention", model=loaded.title)
    return out, (encoded if encoded is not None else (out.encoder_last_hidden_state,))


def _stacked(attentions: Sequence[Tensor]) -> Tensor:
    return torch.stack([layer[0] for layer in attentions]).float().cpu()  # (L, H, Q, K)


def analyze_pair(
    loaded: LoadedModel,
    source: str,
    target: str | Sequence[int],
    *,
    max_tokens: int | None = None,
    steps: tuple[TranslationStep, ...] = (),
) -> Seq2SeqAnalysis:
    """``source`` and a target (a text, or the exact token ids of one) under ``loaded``,
    teacher-forced: all three kinds of attention from one pass."""
    require_kind(loaded, "seq2seq")
    src = tokenize(loaded, source, max_tokens=max_tokens)
    target_ids = encode_target(loaded, target) if isinstance(target, str) else list(target)
    if not target_ids:
        raise InputError("error.empty_target")
    decoder_ids = [_start_id(loaded), *target_ids[:-1]]
    out, _ = _forward(loaded, src.input_ids, decoder_ids)
    enc = _stacked(out.encoder_attentions)  # (L_enc, H, T_src, T_src)
    dec = _stacked(out.decoder_attentions)  # (L_dec, H, T_tgt, T_tgt)
    cross = _stacked(out.cross_attentions)  # (L_dec, H, T_tgt, T_src)
    meta = {"model_name": loaded.name, "max_tokens": loaded.max_tokens}
    encoder = Analysis.from_attentions(
        enc,
        src.tokens,
        kind="encoder",
        text=source,
        token_ids=tuple(src.input_ids[0].tolist()),
        raw_tokens=src.raw_tokens,
        special=src.special,
        offsets=src.offsets,
        sequence_ids=src.sequence_ids,
        truncated=src.truncated,
        n_input_tokens=src.n_input_tokens,
        **meta,
    )
    dec_tok = tokenize_ids(loaded, decoder_ids, max_tokens=len(decoder_ids))
    decoder = Analysis.from_attentions(
        dec,
        dec_tok.tokens,
        kind="decoder",
        text=dec_tok.texts[0],
        token_ids=tuple(decoder_ids),
        raw_tokens=dec_tok.raw_tokens,
        special=dec_tok.special,
        offsets=dec_tok.offsets,
        sequence_ids=dec_tok.sequence_ids,
        **meta,
    )
    tgt = tokenize_ids(loaded, target_ids, max_tokens=len(target_ids))
    return Seq2SeqAnalysis(
        encoder=encoder,
        decoder=decoder,
        cross=CrossAttention(cross, tgt.tokens, src.tokens),
        source=src,
        target=tgt,
        steps=steps,
    )


def translate(
    loaded: LoadedModel,
    source: str,
    config: GenerationConfig,
    *,
    max_tokens: int | None = None,
    should_stop: StopFn | None = None,
    on_step: Callable[[TranslationStep], None] | None = None,
) -> Seq2SeqAnalysis:
    """Generate a target for ``source`` token by token (greedy or sampled as ``config`` says,
    seeded), keeping each new token's cross-attention at its step, then analyse the pair.

    The encoder runs once; each step runs the decoder on ``[start] + tokens so far`` and takes
    its last row. Stops at the end token, after ``config.max_new_tokens`` or when
    ``should_stop()`` says so (what is done is kept). Tokens the model's generation config bans
    (Marian's padding) are never chosen; a forced first token (M2M's and NLLB's target language,
    ``forced_bos_token_id``) is written first, its candidates shown as the model ranked them.
    """
    require_kind(loaded, "seq2seq")
    src = tokenize(loaded, source, max_tokens=max_tokens)
    ends = _end_ids(loaded)
    banned = [w[0] for w in getattr(loaded.model.generation_config, "bad_words_ids", None) or []]
    forced = getattr(loaded.model.generation_config, "forced_bos_token_id", None)
    generator = torch.Generator().manual_seed(config.seed)
    decoder_ids, steps, encoded = [_start_id(loaded)], [], None
    limit = min(config.max_new_tokens, loaded.max_tokens)
    while len(steps) < limit and not (should_stop and should_stop()):
        out, encoded = _forward(loaded, src.input_ids, decoder_ids, encoded)
        logits = out.logits[0, -1].float().cpu().clone()  # (vocab,)
        if banned:
            logits[banned] = float("-inf")
        probs = next_token_distribution(logits, config)  # (vocab,)
        token_id = choose_token(logits, probs, config, generator)
        if not steps and forced is not None:  # M2M, NLLB, mBART: the target language's token
            token_id = forced
        top = torch.topk(probs, min(config.top_k_shown, probs.numel()))
        labels = token_labels(loaded.tokenizer, top.indices.tolist())
        row = torch.stack([layer[0, :, -1] for layer in out.cross_attentions])  # (L, H, T_src)
        step = TranslationStep(
            position=len(steps),
            token_id=token_id,
            token=token_labels(loaded.tokenizer, [token_id])[0],
            cross=row.float().cpu(),
            candidates=tuple(zip(labels, top.values.tolist(), strict=True)),
        )
        steps.append(step)
        if on_step is not None:
            on_step(step)
        decoder_ids.append(token_id)
        if token_id in ends:
            break
    if not steps:
        raise InputError("error.empty_target")
    return analyze_pair(loaded, source, decoder_ids[1:], max_tokens=max_tokens, steps=tuple(steps))
