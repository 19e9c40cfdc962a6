"""A generation and its steps as results: what the model read (:func:`prepare_prompt`), each
new token with its candidates and attention (:class:`GenerationStep`), and the whole sequence
with labels, word groups and a JSON export (:class:`Generation`). Made by
:mod:`core.methods.generate`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, Literal

from torch import Tensor

from core.engine.tokenize import (
    check_text,
    encode_prompt,
    end_token_ids,
    tokenize_ids,
)
from core.methods.sampling import (
    GenerationConfig,
)
from core.methods.words import (
    CjkRule,
    Groups,
    groups_from_word_ids,
    merge_keys,
    merge_labels,
    truncate_groups,
    word_ids,
)
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.models import LoadedModel

__all__ = [
    "Candidate",
    "FinishReason",
    "Generation",
    "GenerationStep",
    "Prompt",
    "StopReason",
    "eos_ids",
    "prepare_prompt",
]

FinishReason = Literal["eos", "max_new_tokens"]
StopReason = Literal["eos", "max_new_tokens", "stopped"]


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
    ``analyze_ids(loaded, generation.token_ids).attentions[:, :, position, : position + 1]``.
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
    dist_entropy: float  # nats: entropy of the distribution drawn from (after T, top-k, top-p)
    raw_dist_entropy: float  # nats: entropy of the raw softmax over the vocabulary
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
            "dist_entropy": self.dist_entropy,
            "raw_dist_entropy": self.raw_dist_entropy,
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


def eos_ids(loaded: LoadedModel) -> frozenset[int]:
    """The tokenizer's end-of-sequence token, its other special tokens that end a text or a turn
    (:func:`core.engine.tokenize.end_token_ids`) and any the model's generation config adds."""
    ids: set[int] = set(end_token_ids(loaded.tokenizer))
    candidates = []
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
    text, ids = encode_prompt(loaded, prompt, chat=config.use_chat_template)
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
    def end_token(self) -> str | None:
        """The name of the end token that stopped generation (``<|im_end|>``), else ``None``."""
        return self.tokens[-1] if self.stop_reason == "eos" else None

    @property
    def output_text(self) -> str:
        """The generated text as a person reads it: :attr:`generated_text` without the end token
        that stopped generation (:attr:`end_token` names it), and a character the text stops
        inside (a Stop between its pieces) shown as its bytes, ``<E3 82>``, never ``\ufffd``."""
        last = len(self.token_ids) - (1 if self.stop_reason == "eos" else 0)
        parts: list[str] = []
        previous = None
        for position in range(self.n_prompt_tokens, last):
            span = self.offsets[position]
            if span == previous and span[1] > span[0]:
                continue  # another piece of the same character
            previous = span
            piece = self.text[span[0] : span[1]]
            parts.append(self.tokens[position] if "\ufffd" in piece else piece)
        return "".join(parts)

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
