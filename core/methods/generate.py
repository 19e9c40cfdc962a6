"""Generation step by step (decoder models): each new token, the distribution it was drawn from,
and its attention over everything before it.

:func:`generate_steps` yields one :class:`GenerationStep` per new token as soon as it exists, so a
UI can stream it and stop at any time; :meth:`Generation.from_steps` gathers the steps made so far
into one result with labels, word groups and a JSON export; :func:`analyze_generation` analyses
the whole sequence at once, on the exact token ids.

Sampling (:func:`next_token_distribution`) follows ``transformers``' order: temperature, then
top-k, then top-p, then a draw from a ``torch.Generator`` seeded with ``config.seed`` (never the
global random state), so the same seed gives the same tokens. Greedy decoding takes the argmax of
the raw logits, as ``model.generate(do_sample=False)`` does.
"""

from __future__ import annotations

import inspect
import json
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import Tensor

from core.engine import stats
from core.engine.analysis import analyze_ids, check_text, decoder, special_ids, tokenize_ids
from core.engine.tokens import bytes_label, decoded_piece, make_visible
from core.methods.words import (
    CjkRule,
    Groups,
    groups_from_word_ids,
    merge_keys,
    merge_labels,
    truncate_groups,
    word_ids,
)
from core.policy.errors import InputError, UnsupportedModelError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "MAX_NEW_TOKENS",
    "Candidate",
    "FinishReason",
    "Generation",
    "GenerationConfig",
    "GenerationStep",
    "Prompt",
    "StopReason",
    "analyze_generation",
    "apply_temperature",
    "choose_token",
    "generate",
    "generate_steps",
    "next_token_distribution",
    "prepare_prompt",
    "top_k_filter",
    "top_p_filter",
]

FinishReason = Literal["eos", "max_new_tokens"]
StopReason = Literal["eos", "max_new_tokens", "stopped"]
StopFn = Callable[[], bool]

# Each step keeps its attention row (n_layers x n_heads x ctx_len floats): 512 steps of SmolLM2
# hold about 150 MB, and the full analysis of prompt + generation grows with its square.
MAX_NEW_TOKENS = 512
MAX_SHOWN = 100
MAX_TEMPERATURE = 100.0
_MAX_SEED = 2**63 - 1
# A character is at most 4 UTF-8 bytes: a piece still broken after 4 tokens stays broken.
_MAX_CHAR_PIECES = 4


def _float32_digits(value: Any) -> Any:
    """``value`` with every float rounded to 7 significant digits, float32's precision.

    >>> _float32_digits({"p": [0.7725398540496826, 1e-9], "n": 3})
    {'p': [0.7725399, 1e-09], 'n': 3}
    """
    if isinstance(value, float):
        return float(f"{value:.7g}")
    if isinstance(value, dict):
        return {key: _float32_digits(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_float32_digits(item) for item in value]
    return value


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class GenerationConfig:
    """How to generate. ``top_k = 0`` and ``top_p = 1`` turn those filters off; with ``greedy``,
    temperature, top-k, top-p and the seed are ignored. Invalid values raise
    :class:`~core.policy.errors.InputError` with a message saying which range is allowed.

    >>> GenerationConfig(temperature=0)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    core.policy.errors.InputError: Temperature must be above 0 and at most 100 (got 0); ...
    """

    max_new_tokens: int = 32
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0
    seed: int = 0
    greedy: bool = False
    use_chat_template: bool = False
    top_k_shown: int = 10  # next-token candidates recorded per step

    def __post_init__(self) -> None:
        if not _is_int(self.max_new_tokens) or not 1 <= self.max_new_tokens <= MAX_NEW_TOKENS:
            raise InputError(
                "error.max_new_tokens", limit=MAX_NEW_TOKENS, value=self.max_new_tokens
            )
        temperature = self.temperature
        if (
            not isinstance(temperature, int | float)
            or isinstance(temperature, bool)
            or not math.isfinite(temperature)
            or not 0 < temperature <= MAX_TEMPERATURE
        ):
            raise InputError("error.temperature", limit=f"{MAX_TEMPERATURE:g}", value=temperature)
        top_p = self.top_p
        if (
            not isinstance(top_p, int | float)
            or isinstance(top_p, bool)
            or not math.isfinite(top_p)
            or not 0 < top_p <= 1
        ):
            raise InputError("error.top_p", value=top_p)
        if not _is_int(self.top_k) or self.top_k < 0:
            raise InputError("error.top_k", value=self.top_k)
        if not _is_int(self.seed) or not 0 <= self.seed <= _MAX_SEED:
            raise InputError("error.seed", value=self.seed)
        if not _is_int(self.top_k_shown) or not 1 <= self.top_k_shown <= MAX_SHOWN:
            raise InputError("error.top_k_shown", limit=MAX_SHOWN, value=self.top_k_shown)
        for name in ("greedy", "use_chat_template"):
            if not isinstance(getattr(self, name), bool):
                raise InputError("error.boolean", name=name, value=repr(getattr(self, name)))


# --- the next-token distribution: pure functions on logits ----------------------------------------


def apply_temperature(logits: Tensor, temperature: float) -> Tensor:
    """Logits divided by the temperature: above 1 flattens the distribution, below 1 sharpens it.
    Shapes: ``(..., vocab) -> (..., vocab)``.

    >>> apply_temperature(torch.tensor([2.0, 1.0]), 2.0)
    tensor([1.0000, 0.5000])
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be above 0, got {temperature}")
    return logits / temperature


def top_k_filter(logits: Tensor, k: int) -> Tensor:
    """Keep the ``k`` largest logits and set the rest to ``-inf`` (``k = 0``: keep all). Logits
    tied with the k-th largest are kept too, as in ``transformers``' ``TopKLogitsWarper``.
    Shapes: ``(..., vocab) -> (..., vocab)``; a new tensor, the input untouched.

    >>> top_k_filter(torch.tensor([1.0, 3.0, 2.0, 0.0]), 2)
    tensor([-inf, 3., 2., -inf])
    """
    if k < 0:
        raise ValueError(f"k must be 0 or more, got {k}")
    if k == 0 or k >= logits.shape[-1]:
        return logits.clone()
    kth = torch.topk(logits, k, dim=-1).values[..., -1:]  # (..., 1)
    return logits.masked_fill(logits < kth, float("-inf"))


def top_p_filter(logits: Tensor, p: float) -> Tensor:
    """Nucleus filtering (Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration"):
    keep the smallest set of most likely tokens whose probabilities sum to at least ``p``, set the
    rest to ``-inf``. A token is kept when the probability of all more likely tokens is below
    ``p``, so the most likely token is always kept; ``p = 1`` keeps all. Shapes: ``(..., vocab) ->
    (..., vocab)``; a new tensor, the input untouched.

    Probabilities 0.5, 0.25, 0.125, 0.125: p = 0.75 keeps the first two (0.5 + 0.25 reaches it),
    p = 0.8 needs a third.

    >>> logits = torch.tensor([0.5, 0.25, 0.125, 0.125]).log()
    >>> top_p_filter(logits, 0.75).softmax(-1)
    tensor([0.6667, 0.3333, 0.0000, 0.0000])
    >>> (top_p_filter(logits, 0.8) > float("-inf")).tolist()
    [True, True, True, False]
    """
    if not 0 < p <= 1:
        raise ValueError(f"p must be in (0, 1], got {p}")
    if p >= 1:
        return logits.clone()
    sorted_logits, order = torch.sort(logits, dim=-1, descending=True, stable=True)
    sorted_probs = sorted_logits.softmax(dim=-1)
    before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of the more likely tokens
    drop_sorted = before >= p
    drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
    return logits.masked_fill(drop, float("-inf"))


def next_token_distribution(logits: Tensor, config: GenerationConfig) -> Tensor:
    """The probabilities the next token is drawn from: ``softmax(top_p(top_k(logits / T)))``,
    or with ``config.greedy`` the raw ``softmax(logits)`` (greedy takes its argmax).
    Shapes: ``(..., vocab) -> (..., vocab)``.

    >>> logits = torch.tensor([2.0, 1.0, 0.0])
    >>> next_token_distribution(logits, GenerationConfig(top_k=2, temperature=0.5))
    tensor([0.8808, 0.1192, 0.0000])
    """
    logits = logits.float()
    if config.greedy:
        return logits.softmax(dim=-1)
    scaled = apply_temperature(logits, config.temperature)
    return top_p_filter(top_k_filter(scaled, config.top_k), config.top_p).softmax(dim=-1)


def choose_token(
    logits: Tensor, probs: Tensor, config: GenerationConfig, generator: torch.Generator
) -> int:
    """The next token: the argmax of ``logits`` when greedy, else one draw from ``probs``
    ``(vocab,)`` with ``generator`` (so a seeded generator gives the same token every time).

    >>> logits = torch.tensor([0.0, 3.0, 1.0])
    >>> choose_token(logits, logits.softmax(-1), GenerationConfig(greedy=True), torch.Generator())
    1
    """
    if config.greedy:
        return int(torch.argmax(logits))
    return int(torch.multinomial(probs, 1, generator=generator))


# --- results --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Candidate:
    """One possible next token at a step."""

    token_id: int
    token: str  # readable label (bytes like <E6 97> for part of a character)
    text: str  # the exact text it would add, spaces included ("" while a character is incomplete)
    prob: float  # in the distribution sampled from: after temperature, top-k, top-p
    raw_prob: float  # softmax of the raw logits
    chosen: bool

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, eq=False)
class GenerationStep:
    """One new token, the distribution it came from, and its attention over its context.

    ``attention[layer, head, key_pos]`` is the new token's own attention row (query at
    ``position``) over positions ``0 .. position``, float32 on the CPU: the same row as
    ``analyze_generation(...).attentions[:, :, position, : position + 1]``.
    """

    index: int  # 0 = the first new token
    position: int  # its position in the whole sequence (prompt tokens come first)
    token_id: int
    token: str  # readable label as known at this step; Generation.tokens knows the whole text
    text: str  # the text this step adds to the output; "" while a character is incomplete
    special: bool  # a special token (<|im_end|>, ...): its text is the token's name
    prob: float  # of the chosen token, in the distribution sampled from
    raw_prob: float  # of the chosen token, in the raw softmax
    rank: int  # 1 = the most likely token by raw logits
    candidates: tuple[Candidate, ...]  # the most likely tokens, most likely first
    attention: Tensor  # (n_layers, n_heads, ctx_len)
    entropy: Tensor  # (n_layers, n_heads): entropy of each head's row, nats
    mean_attention: Tensor  # (n_layers, ctx_len): the head-averaged row
    layer_entropy: Tensor  # (n_layers,): entropy of the head-averaged row
    finish_reason: FinishReason | None  # set on the last step: why generation ended there
    seconds: float

    @property
    def ctx_len(self) -> int:
        """How many positions the new token sees: the prompt, earlier new tokens and itself."""
        return self.attention.shape[-1]

    def to_dict(self, *, per_head: bool = False) -> dict[str, Any]:
        """Plain lists and numbers; ``per_head`` adds the full ``(L, H, ctx_len)`` rows. Numbers
        computed in float32 keep 7 significant digits (their precision), which halves the size."""
        out: dict[str, Any] = {
            "step": self.index,
            "position": self.position,
            "token_id": self.token_id,
            "token": self.token,
            "text": self.text,
            "special": self.special,
            "prob": self.prob,
            "raw_prob": self.raw_prob,
            "rank": self.rank,
            "finish_reason": self.finish_reason,
            "candidates": [c.to_dict() for c in self.candidates],
            "entropy": self.entropy.tolist(),
            "layer_entropy": self.layer_entropy.tolist(),
            "mean_attention": self.mean_attention.tolist(),
            "seconds": self.seconds,
        }
        if per_head:
            out["attention"] = self.attention.tolist()
        return _float32_digits(out)


@dataclass(frozen=True)
class Prompt:
    """What the model reads before generating."""

    text: str  # the prompt, or the chat template around it
    token_ids: tuple[int, ...]


def _eos_ids(loaded: LoadedModel) -> frozenset[int]:
    """The tokenizer's end-of-sequence token and any the model's generation config adds."""
    ids: set[int] = set()
    candidates = [getattr(loaded.tokenizer, "eos_token_id", None)]
    generation_config = getattr(loaded.model, "generation_config", None)
    configured = getattr(generation_config, "eos_token_id", None)
    candidates += configured if isinstance(configured, list | tuple) else [configured]
    ids.update(int(i) for i in candidates if i is not None)
    return frozenset(ids)


def prepare_prompt(
    loaded: LoadedModel, prompt: str, config: GenerationConfig, *, max_tokens: int | None = None
) -> Prompt:
    """The prompt as token ids: wrapped in the model's chat template when
    ``config.use_chat_template`` (then no further special tokens are added), else tokenized as
    :func:`core.analyze` does. Refuses encoders, empty prompts, a missing chat template and
    prompts that leave no room for ``max_new_tokens`` within the model's limit, or within
    ``max_tokens`` where the caller sets a lower one (a server's limit)."""
    if loaded.kind != "decoder":
        raise InputError("error.generation_needs_decoder", model=loaded.title)
    check_text(prompt)
    tokenizer = loaded.tokenizer
    if config.use_chat_template:
        if not getattr(tokenizer, "chat_template", None):
            raise InputError("error.no_chat_template", model=loaded.title)
        text = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}], add_generation_prompt=True, tokenize=False
        )
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        text = prompt
        ids = tokenizer(text, add_special_tokens=True)["input_ids"]
    if len(ids) + config.max_new_tokens > loaded.max_tokens:
        raise InputError(
            "error.prompt_too_long",
            tokens=len(ids),
            new_tokens=config.max_new_tokens,
            model=loaded.title,
            limit=loaded.max_tokens,
        )
    if max_tokens is not None and len(ids) + config.max_new_tokens > max_tokens:
        raise InputError(
            "error.prompt_over_server_limit",
            tokens=len(ids),
            new_tokens=config.max_new_tokens,
            limit=max_tokens,
        )
    return Prompt(text=text, token_ids=tuple(int(i) for i in ids))


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
            return bytes_label(self._tokenizer.convert_ids_to_tokens(token_id))
        pending = len(self.ids) - self.done
        if pending:  # completes a character begun by earlier tokens
            return f"{make_visible(piece)}({pending + 1}/{pending + 1})"
        return make_visible(piece)

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
    its attention is known. Stops at an end-of-sequence token (which is yielded), after
    ``config.max_new_tokens``, when ``should_stop()`` returns true (checked before every step),
    or when the caller stops iterating.

    The prompt runs once; each step then costs one token's forward pass through the KV cache,
    and that pass gives both the new token's attention row and the logits for the next token.
    Invalid input raises here, before the first step.
    """
    prepared = prepare_prompt(loaded, prompt, config, max_tokens=max_tokens)
    return _generate(loaded, prepared, config, should_stop)


def _generate(
    loaded: LoadedModel, prompt: Prompt, config: GenerationConfig, should_stop: StopFn | None
) -> Iterator[GenerationStep]:
    model = loaded.model
    tokenizer = loaded.tokenizer
    generator = torch.Generator().manual_seed(config.seed)  # CPU: the same draws on every device
    eos = _eos_ids(loaded)
    specials = special_ids(tokenizer)
    stream = _StreamText(tokenizer, prompt.token_ids)
    input_ids = torch.tensor([prompt.token_ids], dtype=torch.long, device=loaded.device)
    # The prompt's own attention is not needed here (analyze_generation has it), nor its logits
    # anywhere but at the last position, where most models can stop (logits_to_keep).
    extra = {"logits_to_keep": 1} if "logits_to_keep" in _parameters(model.forward) else {}
    with torch.inference_mode():
        out = model(input_ids=input_ids, use_cache=True, **extra)
    cache = out.cache
    logits = out.logits[0, -1].float().cpu()  # (vocab,)
    position = len(prompt.token_ids)
    for index in range(config.max_new_tokens):
        if should_stop is not None and should_stop():
            return
        started = time.perf_counter()
        raw_probs = logits.softmax(dim=-1)  # (vocab,)
        probs = next_token_distribution(logits, config)  # (vocab,)
        token_id = choose_token(logits, probs, config, generator)
        rank = int((logits > logits[token_id]).sum()) + 1
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
        elif index == config.max_new_tokens - 1:
            finish = "max_new_tokens"
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


@dataclass(frozen=True, eq=False)
class Generation:
    """A prompt and the tokens generated from it, gathered from the steps made so far."""

    model_name: str
    prompt: str  # as the user typed it
    prompt_text: str  # what the model read: the prompt, or the chat template around it
    config: GenerationConfig
    prompt_ids: tuple[int, ...]
    steps: tuple[GenerationStep, ...]
    stop_reason: StopReason
    text: str  # the whole sequence decoded (see core.engine.tokens.offsets_by_decoding)
    offsets: tuple[tuple[int, int], ...]  # each position's characters in text
    tokens: tuple[str, ...]  # readable label of each position, prompt first
    special: tuple[bool, ...]
    n_layers: int
    n_heads: int
    seconds: float

    @classmethod
    def from_steps(
        cls,
        loaded: LoadedModel,
        prompt: str,
        config: GenerationConfig,
        steps: Sequence[GenerationStep],
        *,
        seconds: float | None = None,
    ) -> Generation:
        """Gather ``steps`` (all of them, or those made before a stop) from
        ``generate_steps(loaded, prompt, config)``. The stop reason is the last step's
        ``finish_reason``, or ``"stopped"`` when generation ended early."""
        prepared = prepare_prompt(loaded, prompt, config)
        steps = tuple(steps)
        for expected, step in enumerate(steps):
            if step.index != expected or step.position != len(prepared.token_ids) + expected:
                raise ValueError("steps must be the first steps of one generation, in order")
        ids = [*prepared.token_ids, *(s.token_id for s in steps)]
        whole = tokenize_ids(loaded, ids, max_tokens=len(ids))  # text, offsets, labels
        finish = steps[-1].finish_reason if steps else None
        return cls(
            model_name=loaded.name,
            prompt=prompt,
            prompt_text=prepared.text,
            config=config,
            prompt_ids=prepared.token_ids,
            steps=steps,
            stop_reason=finish or "stopped",
            text=whole.texts[0],
            offsets=whole.offsets,
            tokens=whole.tokens,
            special=whole.special,
            n_layers=loaded.n_layers,
            n_heads=loaded.n_heads,
            seconds=seconds if seconds is not None else sum(s.seconds for s in steps),
        )

    @property
    def token_ids(self) -> tuple[int, ...]:
        """Every position's token id: the prompt's, then the generated ones."""
        return self.prompt_ids + self.generated_ids

    @property
    def generated_ids(self) -> tuple[int, ...]:
        return tuple(s.token_id for s in self.steps)

    @property
    def n_prompt_tokens(self) -> int:
        return len(self.prompt_ids)

    @property
    def generated_text(self) -> str:
        """The text after the prompt."""
        if not self.steps:
            return ""
        return self.text[self.offsets[self.n_prompt_tokens][0] :]

    @property
    def generated_tokens(self) -> tuple[str, ...]:
        """Readable labels of the generated tokens."""
        return self.tokens[self.n_prompt_tokens :]

    def word_groups(self, cjk: CjkRule = "character") -> Groups:
        """Token positions of each word in the whole sequence (rules: :mod:`core.methods.words`)."""
        sequence_ids = [None if s else 0 for s in self.special]
        ids = word_ids([self.text], self.offsets, sequence_ids, self.special, cjk=cjk)
        return groups_from_word_ids(ids)

    def step_words(self, index: int, cjk: CjkRule = "character") -> tuple[tuple[str, ...], Tensor]:
        """Step ``index``'s attention over the words of its context: the word labels (a word the
        context ends inside shows the part written so far) and ``(n_layers, n_heads, n_words)``,
        each word receiving the sum over its pieces."""
        step = self.steps[index]
        groups = truncate_groups(self.word_groups(cjk), step.ctx_len)
        sequence_ids = [None if s else 0 for s in self.special]
        raw = list(self.tokens)
        labels = merge_labels([self.text], self.offsets, sequence_ids, raw, groups, self.special)
        return labels, merge_keys(step.attention, groups)  # (L, H, W)

    def to_dict(self, *, per_head: bool = False) -> dict[str, Any]:
        """The JSON form: tokens, probabilities and per-step attention statistics. ``per_head``
        adds each step's full ``(L, H, ctx_len)`` attention rows (large)."""
        return {
            "model": self.model_name,
            "prompt": self.prompt,
            "prompt_text": self.prompt_text,
            "config": asdict(self.config),
            "stop_reason": self.stop_reason,
            "text": self.text,
            "generated_text": self.generated_text,
            "n_prompt_tokens": self.n_prompt_tokens,
            "token_ids": list(self.token_ids),
            "tokens": list(self.tokens),
            "n_layers": self.n_layers,
            "n_heads": self.n_heads,
            "seconds": self.seconds,
            "steps": [s.to_dict(per_head=per_head) for s in self.steps],
        }

    def to_json(self, *, per_head: bool = False, indent: int | None = None) -> str:
        """:meth:`to_dict` as JSON text with every character kept as itself (no ``\\u`` escapes)."""
        return json.dumps(self.to_dict(per_head=per_head), ensure_ascii=False, indent=indent)


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


def analyze_generation(loaded: LoadedModel, generation: Generation) -> Analysis:
    """The analysis of the whole sequence (prompt and generated tokens) in one forward pass, on
    the exact token ids. Row ``step.position`` of its attention is ``step.attention`` (up to float
    rounding: the cached and uncached computations add in different orders)."""
    ids = generation.token_ids
    return analyze_ids(loaded, ids, max_tokens=len(ids))
