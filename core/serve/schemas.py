"""The HTTP API's request and response bodies (pydantic): what ``POST /generate`` and
``POST /analyze`` accept and return, and the error body every failure has. They are also the
OpenAPI schema served at ``/openapi.json``.

Requests are strict (a string is not a number, unknown fields are refused), so a typo in a field
name is a 422 naming it rather than a silently ignored option.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from core.methods.sampling import MAX_NEW_TOKENS, MAX_SHOWN, MAX_TEMPERATURE

__all__ = [
    "AnalyzeRequest",
    "Alternative",
    "ErrorBody",
    "ErrorResponse",
    "GenerateRequest",
    "GenerateResponse",
    "ServerStatus",
    "StepAttention",
    "StepOut",
]

MAX_SEED = 2**63 - 1


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class GenerateRequest(_Strict):
    """Generate from a prompt (decoder models). ``temperature = 0`` is greedy decoding (the
    argmax of the raw logits; ``top_p``, ``top_k`` and ``seed`` are then ignored); ``top_k = 0``
    and ``top_p = 1`` turn those filters off."""

    model: str | None = Field(None, min_length=1, description="built-in name; default: server's")
    prompt: str = Field(min_length=1)
    max_new_tokens: int = Field(16, ge=1, le=MAX_NEW_TOKENS)
    temperature: float = Field(1.0, ge=0, le=MAX_TEMPERATURE)
    top_p: float = Field(1.0, gt=0, le=1)
    top_k: int = Field(0, ge=0)
    seed: int = Field(0, ge=0, le=MAX_SEED)
    alternatives: int = Field(5, ge=1, le=MAX_SHOWN, description="top tokens listed per step")
    chat: bool = Field(False, description="wrap the prompt in the model's chat template")


class AnalyzeRequest(_Strict):
    """Analyse a text: the same JSON as ``python -m core analyze TEXT --json``."""

    model: str | None = Field(None, min_length=1, description="built-in name; default: server's")
    text: str = Field(min_length=1)
    pair: str | None = Field(None, description="a second sentence (encoder models only)")
    top_k: int = Field(5, ge=1, le=1000, description="rows per layer, most-attended table")
    max_tokens: int | None = Field(None, ge=1, description="truncate (within the server's limit)")


class Alternative(BaseModel):
    """One of the most likely next tokens at a step (by raw logits, most likely first)."""

    token_id: int
    token: str  # readable label (<E6 97> for part of a character)
    text: str  # the exact text it would add ("" while a character is incomplete)
    prob: float  # in the distribution drawn from (after temperature, top-k, top-p)
    raw_prob: float  # in the raw softmax
    chosen: bool


class StepAttention(BaseModel):
    """The new token's attention over its context, summarised per layer (heads averaged)."""

    layer_entropy: list[float]  # (n_layers,) nats, entropy of the head-averaged row
    top_position: list[int]  # (n_layers,) the most attended position of that row
    top_share: list[float]  # (n_layers,) its share of the row


class StepOut(BaseModel):
    """One generated token."""

    step: int
    position: int  # in the whole sequence, prompt first
    token_id: int
    token: str
    text: str
    prob: float  # of the chosen token in the distribution drawn from
    raw_prob: float
    rank: int  # 1 = most likely by raw logits
    entropy: float  # nats, of the distribution the token was drawn from
    raw_entropy: float  # nats, of the raw softmax over the vocabulary
    alternatives: list[Alternative]
    attention: StepAttention
    finish_reason: str | None


class GenerateResponse(BaseModel):
    model: str
    prompt: str
    text: str  # the generated text (without the end token that stopped it)
    full_text: str  # prompt and generation as the tokenizer decodes them
    tokens: list[str]  # labels of the generated tokens
    token_ids: list[int]  # the generated ids
    n_prompt_tokens: int
    stop_reason: str  # eos or max_new_tokens
    greedy: bool
    seed: int
    n_layers: int
    n_heads: int
    steps: list[StepOut]


class ErrorBody(BaseModel):
    key: str  # catalogue key (assets/i18n)
    message: str  # in the language Accept-Language asked for (English or Japanese)
    message_ja: str
    message_en: str
    fields: list[str] = []  # the request fields at fault (422)


class ErrorResponse(BaseModel):
    error: ErrorBody


class ServerStatus(BaseModel):
    """The server's limits and its queue, as ``GET /status`` reports them."""

    demo: bool
    capacity: int  # requests running at once
    active: int
    waiting: int
    max_active: int  # the most requests that ran at once since the server started
    served: int  # requests that held a slot
    max_tokens: int
    max_text_chars: int
    max_new_tokens: int
    allowed_models: list[str] | None
    rate_limit: int
    rate_window_s: float
    queue_timeout_s: float
    default_model: str
    models_loaded: list[str]


def analyze_example() -> dict[str, Any]:
    """The shape of ``POST /analyze``'s answer, for the docs page (abridged)."""
    return {
        "model": "minilm",
        "kind": "encoder",
        "tokens": ["[CLS]", "the", "cat", "[SEP]"],
        "n_layers": 6,
        "n_heads": 12,
        "seq_len": 4,
        "head_entropy": [[0.9, "..."]],
        "most_attended": [[{"position": 0, "token": "[CLS]", "share": 0.4}]],
    }
