"""Sampling for generation: the options (:class:`GenerationConfig`, checked on creation) and the
next-token distribution they define.

:func:`next_token_distribution` follows ``transformers``' order: temperature, then top-k, then
top-p; :func:`choose_token` then draws from a ``torch.Generator`` seeded with ``config.seed``
(never the global random state), so the same seed gives the same tokens. Greedy decoding takes the
argmax of the raw logits, as ``model.generate(do_sample=False)`` does.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from core.policy.errors import InputError

__all__ = [
    "MAX_NEW_TOKENS",
    "GenerationConfig",
    "apply_temperature",
    "choose_token",
    "next_token_distribution",
    "top_k_filter",
    "top_p_filter",
]

# Each step keeps its attention row (n_layers x n_heads x ctx_len floats): 512 steps of SmolLM2
# hold about 150 MB, and the full analysis of prompt + generation grows with its square.
MAX_NEW_TOKENS = 512
MAX_SHOWN = 100
MAX_TEMPERATURE = 100.0
_MAX_SEED = 2**63 - 1


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
