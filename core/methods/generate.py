"""Generation step by step (decoder models): each new token, the distribution it was drawn from,
and its attention over everything before it.

:func:`generate_steps` yields one :class:`GenerationStep` per new token as soon as it exists, so a
UI can stream it and stop at any time; :meth:`Generation.from_steps` gathers the steps made so far
into one result with labels, word groups and a JSON export; ``analyze_ids(loaded,
generation.token_ids)`` (:mod:`core.engine.run`) analyses
the whole sequence at once, on the exact token ids.

Sampling (:func:`next_token_distribution`) follows ``transformers``' order: temperature, then
top-k, then top-p, then a draw from a ``torch.Generator`` seeded with ``config.seed`` (never the
global random state), so the same seed gives the same tokens. Greedy decoding takes the argmax of
the raw logits, as ``model.generate(do_sample=False)`` does.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from core.engine import stats
from core.engine.tokenize import (
    decoder,
    raw_token,
    special_ids,
)
from core.engine.tokens import bytes_label, decoded_piece, make_visible, piece_label
from core.methods.generation import (
    Candidate,
    FinishReason,
    Generation,
    GenerationStep,
    Prompt,
    eos_ids,
    prepare_prompt,
)
from core.methods.sampling import (
    MAX_NEW_TOKENS,
    GenerationConfig,
    choose_token,
    next_token_distribution,
)
from core.policy.errors import UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "MAX_NEW_TOKENS",
    "Candidate",
    "Generation",
    "GenerationConfig",
    "GenerationStep",
    "generate",
    "generate_steps",
]

StopFn = Callable[[], bool]

# A character is at most 4 UTF-8 bytes: a piece still broken after 4 tokens stays broken.
_MAX_CHAR_PIECES = 4


class _StreamText:
    """Text of a growing token sequence, complete characters only: a token holding part of a
    character adds nothing until the token that completes it."""

    def __init__(self, tokenizer: Any, ids: Sequence[int]) -> None:
        self._decode = decoder(tokenizer)
        self._tokenizer = tokenizer
        self.ids = list(ids)
        self.done = len(self.ids)  # ids[:done] are in the text; later ones are a broken character

    def piece(self, extra: Sequence[int] = ()) -> str:
        """The text that the pending ids and ``extra`` add after ``ids[:done]``."""
        ids = [*self.ids, *extra]
        return decoded_piece(ids, self.done, len(ids), self._decode)

    def label(self, token_id: int, piece: str) -> str:
        """A readable label for ``token_id`` whose text (with the pending ids) is ``piece``."""
        if "\ufffd" in piece or not piece:
            return bytes_label(raw_token(self._tokenizer, token_id))
        pending = len(self.ids) - self.done
        if pending:  # completes a character begun by earlier tokens
            return piece_label(make_visible(piece), pending + 1, pending + 1)
        return make_visible(piece)

    @property
    def pending(self) -> int:
        """How many ids hold the start of a character that is not whole yet."""
        return len(self.ids) - self.done

    def push(self, token_id: int) -> tuple[str, str]:
        """Append ``token_id``; returns (the text it completes, its label)."""
        piece = self.piece([token_id])
        label = self.label(token_id, piece)
        self.ids.append(token_id)
        if "\ufffd" in piece and len(self.ids) - self.done < _MAX_CHAR_PIECES:
            return "", label
        self.done = len(self.ids)
        return piece, label


def _parameters(function: Callable[..., Any]) -> frozenset[str]:
    try:
        return frozenset(inspect.signature(function).parameters)
    except (TypeError, ValueError):
        return frozenset()


def _last_rows(attentions: Sequence[Tensor] | None, title: str) -> Tensor:
    """The last query row of every layer's attention: ``(n_layers, n_heads, ctx_len)``."""
    if not attentions or any(a is None for a in attentions):
        raise UnsupportedModelError("error.no_attention", model=title)
    return torch.stack([layer[0, :, -1] for layer in attentions]).float().cpu()  # (L, H, ctx)


def generate_steps(
    loaded: LoadedModel,
    prompt: str,
    config: GenerationConfig,
    should_stop: StopFn | None = None,
    *,
    max_tokens: int | None = None,
) -> Iterator[GenerationStep]:
    """Generate from ``prompt``, yielding each new token as a :class:`GenerationStep` as soon as
    its attention is known. Stops at an end token (which is yielded; see
    :func:`core.methods.generation.eos_ids`), after ``config.max_new_tokens``, when
    ``should_stop()`` returns true (checked before every step), or when the caller stops
    iterating. A limit that falls inside a character (a katakana is two byte-level tokens) never
    cuts it: up to 3 more tokens finish that character, within the model's (or ``max_tokens``)
    limit, so the text ends in whole characters.

    The prompt runs once; each step then costs one token's forward pass through the KV cache,
    and that pass gives both the new token's attention row and the logits for the next token.
    Invalid input raises here, before the first step.
    """
    prepared = prepare_prompt(loaded, prompt, config, max_tokens=max_tokens)
    limit = min(loaded.max_tokens, max_tokens or loaded.max_tokens)
    return _generate(loaded, prepared, config, should_stop, limit)


def _generate(
    loaded: LoadedModel,
    prompt: Prompt,
    config: GenerationConfig,
    should_stop: StopFn | None,
    limit: int,
) -> Iterator[GenerationStep]:
    model = loaded.model
    tokenizer = loaded.tokenizer
    generator = torch.Generator().manual_seed(config.seed)  # CPU: the same draws on every device
    eos = eos_ids(loaded)
    specials = special_ids(tokenizer)
    stream = _StreamText(tokenizer, prompt.token_ids)
    input_ids = torch.tensor([prompt.token_ids], dtype=torch.long, device=loaded.device)
    # The prompt's own attention is not needed here (analyze_ids has it), nor its logits
    # anywhere but at the last position, where most models can stop (logits_to_keep).
    extra = {"logits_to_keep": 1} if "logits_to_keep" in _parameters(model.forward) else {}
    with torch.inference_mode():
        out = model(input_ids=input_ids, use_cache=True, **extra)
    cache = out.cache
    logits = out.logits[0, -1].float().cpu()  # (vocab,)
    position = len(prompt.token_ids)
    index = -1
    while True:
        index += 1
        if should_stop is not None and should_stop():
            return
        started = time.perf_counter()
        raw_probs = logits.softmax(dim=-1)  # (vocab,)
        probs = next_token_distribution(logits, config)  # (vocab,)
        token_id = choose_token(logits, probs, config, generator)
        rank = int((logits > logits[token_id]).sum()) + 1
        # H(p) = -sum_v p_v ln p_v of the distribution drawn from and of the raw softmax
        dist_entropy = float(torch.special.entr(probs).sum())
        raw_dist_entropy = float(torch.special.entr(raw_probs).sum())
        shown = torch.topk(logits, min(config.top_k_shown, logits.shape[-1])).indices.tolist()
        candidates = []
        for cand in shown:
            piece = stream.piece([cand])
            candidates.append(
                Candidate(
                    token_id=cand,
                    token=stream.label(cand, piece),
                    text="" if "\ufffd" in piece else piece,
                    prob=float(probs[cand]),
                    raw_prob=float(raw_probs[cand]),
                    chosen=cand == token_id,
                )
            )
        text, label = stream.push(token_id)
        step_ids = torch.tensor([[token_id]], dtype=torch.long, device=loaded.device)
        with torch.inference_mode():
            # transformers 5 names the KV cache `cache` (`past_key_values` before).
            out = model(input_ids=step_ids, cache=cache, use_cache=True, output_attentions=True)
        cache = out.cache
        logits = out.logits[0, -1].float().cpu()  # (vocab,): for the next step
        attention = _last_rows(out.attentions, loaded.title)  # (L, H, ctx)
        mean_attention = attention.mean(dim=1)  # (L, ctx)
        finish: FinishReason | None = None
        if token_id in eos:
            finish = "eos"
        elif index >= config.max_new_tokens - 1 and (not stream.pending or position + 1 >= limit):
            finish = "max_new_tokens"  # a character left unfinished is finished first
        yield GenerationStep(
            index=index,
            position=position,
            token_id=token_id,
            token=label,
            text=text,
            special=token_id in specials,
            prob=float(probs[token_id]),
            raw_prob=float(raw_probs[token_id]),
            rank=rank,
            dist_entropy=dist_entropy,
            raw_dist_entropy=raw_dist_entropy,
            candidates=tuple(candidates),
            attention=attention,
            entropy=stats.row_entropy(attention),  # (L, H)
            mean_attention=mean_attention,
            layer_entropy=stats.row_entropy(mean_attention),  # (L,)
            finish_reason=finish,
            seconds=time.perf_counter() - started,
        )
        if finish is not None:
            return
        position += 1


def generate(
    loaded: LoadedModel,
    prompt: str,
    config: GenerationConfig,
    *,
    should_stop: StopFn | None = None,
    on_step: Callable[[GenerationStep], None] | None = None,
) -> Generation:
    """Run :func:`generate_steps` to the end (calling ``on_step`` with each step) and gather the
    result."""
    started = time.perf_counter()
    steps = []
    for step in generate_steps(loaded, prompt, config, should_stop):
        steps.append(step)
        if on_step is not None:
            on_step(step)
    seconds = time.perf_counter() - started
    return Generation.from_steps(loaded, prompt, config, steps, seconds=seconds)
