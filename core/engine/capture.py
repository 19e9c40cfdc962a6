"""Attention weights of any ``nn.Module`` that has no ``output_attentions``: while a
:func:`capture_attention` block runs, ``torch.nn.functional.scaled_dot_product_attention`` and
``nn.MultiheadAttention.forward`` are wrapped, each call's weights ``(B, H, Tq, Tk)`` are recorded
in call order, and the originals are put back on leaving, whatever happened.

The wrappers return what the original returns, so the model behaves as without them. The weights
are computed explicitly, ``softmax(q kᵀ · scale + mask)``, as PyTorch documents the function
(``is_causal``: the lower triangle, aligned top left; a boolean ``attn_mask`` marks the keys that
take part, a float one is added; ``enable_gqa`` repeats the key heads). Dropout is not applied: a
model in ``eval()`` passes ``dropout_p=0``; a call with ``dropout_p > 0`` is recorded with it.

Only calls that look the function up at call time are seen: ``F.scaled_dot_product_attention``
(nanoGPT, transformers' ``sdpa``), not a name bound by ``from torch.nn.functional import ...``
before the block began. While any capture is active, PyTorch's fused fast path of
``nn.TransformerEncoderLayer`` / ``nn.MultiheadAttention`` is turned off
(``torch.backends.mha.set_fastpath_enabled``), since it would skip ``MultiheadAttention.forward``.

The functions are installed once for all active captures (a process-wide count under a lock) and
each call is recorded only by the captures of the thread (context) that made it, so captures nest
and a server's other sessions are neither recorded nor left with a wrapper.
"""

from __future__ import annotations

import contextvars
import functools
import inspect
import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from core.engine.budget import DEFAULT_BUDGET_BYTES
from core.policy.errors import InputError

__all__ = ["Capture", "CapturedCall", "capture_attention", "captured_pass", "sdpa_weights"]

CallSource = Literal["sdpa", "mha"]

# The captures of this context (thread), innermost last; and whether a wrapped
# MultiheadAttention.forward is running (its own SDPA call is not a second attention).
_ACTIVE: contextvars.ContextVar[tuple[Capture, ...]] = contextvars.ContextVar(
    "attnscope_captures", default=()
)
_IN_MHA: contextvars.ContextVar[bool] = contextvars.ContextVar("attnscope_in_mha", default=False)
_LOCK = threading.Lock()
_STATE: dict[str, Any] = {"count": 0}  # how many captures are active; the saved originals


@dataclass(frozen=True)
class CapturedCall:
    """One attention call: its weights ``(B, H, Tq, Tk)``, float32 on the CPU."""

    index: int  # position in call order, from 0
    source: CallSource  # "sdpa" or "mha" (nn.MultiheadAttention)
    weights: Tensor  # (B, H, Tq, Tk)
    causal: bool  # is_causal was asked
    dropout_p: float  # the dropout the call asked for (not applied to the weights)


@dataclass(frozen=True)
class Capture:
    """What one :func:`capture_attention` block recorded, in call order."""

    max_bytes: int = DEFAULT_BUDGET_BYTES  # refuse to hold more weights than this
    calls: list[CapturedCall] = field(default_factory=list)

    @property
    def held_bytes(self) -> int:
        return sum(call.weights.numel() * call.weights.element_size() for call in self.calls)

    def _add(self, source: CallSource, weights: Tensor, causal: bool, dropout_p: float) -> None:
        size = weights.numel() * weights.element_size()
        if self.held_bytes + size > self.max_bytes:
            raise InputError(
                "error.byo_too_large",
                megabytes=f"{(self.held_bytes + size) / 2**20:.0f}",
                limit=f"{self.max_bytes / 2**20:.0f}",
            )
        self.calls.append(CapturedCall(len(self.calls), source, weights, causal, float(dropout_p)))


def _as_bhqk(weights: Tensor) -> Tensor:
    """Weights as ``(B, H, Tq, Tk)``: ``(Tq, Tk)`` and ``(B, Tq, Tk)`` get unit axes, extra
    leading axes fold into the batch."""
    if weights.dim() == 2:
        return weights[None, None]  # (1, 1, Tq, Tk)
    if weights.dim() == 3:
        return weights.unsqueeze(1)  # (B, 1, Tq, Tk)
    return weights.reshape(-1, *weights.shape[-3:])  # (B, H, Tq, Tk)


def sdpa_weights(
    query: Tensor,
    key: Tensor,
    attn_mask: Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> Tensor:
    """The weights of ``scaled_dot_product_attention(query, key, ...)`` without dropout,
    ``softmax(q kᵀ · scale + mask)``, ``(B, H, Tq, Tk)``, float32 on the CPU; a row with no key
    allowed is 0 (PyTorch's reference formula gives NaN there).

    ``scale`` defaults to ``1/√E``; ``is_causal`` keeps ``j <= i`` (top-left aligned); a boolean
    mask keeps where True, a float mask is added; ``enable_gqa`` repeats each key head for
    ``Hq / Hk`` query heads.

    >>> q = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])  # (1, 1, 2, 2)
    >>> sdpa_weights(q, q, is_causal=True, scale=math.log(3))[0, 0]  # row 1: e^0, e^ln3
    tensor([[1.0000, 0.0000],
            [0.2500, 0.7500]])
    """
    dtype = torch.promote_types(query.dtype, torch.float32)
    q, k = query.detach().to(dtype), key.detach().to(dtype)
    if enable_gqa and q.dim() >= 3 and k.shape[-3] != q.shape[-3]:
        k = k.repeat_interleave(q.shape[-3] // k.shape[-3], dim=-3)  # (..., Hq, Tk, E)
    factor = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    scores = (q @ k.transpose(-2, -1)) * factor  # (..., Tq, Tk)
    minus_inf = torch.tensor(float("-inf"), dtype=dtype, device=scores.device)
    if is_causal:
        allowed = torch.ones(scores.shape[-2:], dtype=torch.bool, device=scores.device).tril()
        scores = torch.where(allowed, scores, minus_inf)  # (..., Tq, Tk)
    if attn_mask is not None:
        mask = attn_mask.detach().to(scores.device)
        if mask.dtype == torch.bool:
            scores = torch.where(mask, scores, minus_inf)
        else:
            scores = scores + mask.to(dtype)
    weights = torch.softmax(scores, dim=-1).nan_to_num(0.0)  # (..., Tq, Tk)
    return _as_bhqk(weights).float().cpu()


def _sdpa_arguments(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    attn_mask: Tensor | None = None,
    dropout_p: float = 0.0,
    is_causal: bool = False,
    scale: float | None = None,
    enable_gqa: bool = False,
) -> dict[str, Any]:
    """The arguments of ``scaled_dot_product_attention``, by name (its documented signature)."""
    return dict(locals())


def _record(
    source: CallSource, weights: Callable[[], Tensor], causal: bool, dropout: float
) -> None:
    """Hand the weights (computed once, only if some capture of this context wants them) to every
    active capture of this context."""
    captures = _ACTIVE.get()
    if not captures:
        return
    computed = weights()  # (B, H, Tq, Tk)
    for capture in captures:
        capture._add(source, computed, causal, dropout)


def _wrap_sdpa(original: Callable[..., Tensor]) -> Callable[..., Tensor]:
    @functools.wraps(original)
    def scaled_dot_product_attention(*args: Any, **kwargs: Any) -> Tensor:
        output = original(*args, **kwargs)  # a bad call fails here, as it would unwrapped
        if _ACTIVE.get() and not _IN_MHA.get():
            given = _sdpa_arguments(*args, **kwargs)
            with torch.no_grad():
                _record(
                    "sdpa",
                    lambda: sdpa_weights(
                        given["query"],
                        given["key"],
                        given["attn_mask"],
                        given["is_causal"],
                        given["scale"],
                        given["enable_gqa"],
                    ),
                    bool(given["is_causal"]),
                    given["dropout_p"],
                )
        return output

    scaled_dot_product_attention.attnscope_wrapper = True
    return scaled_dot_product_attention


def _wrap_mha(original: Callable[..., Any]) -> Callable[..., Any]:
    signature = inspect.signature(original)

    @functools.wraps(original)
    def forward(self: nn.MultiheadAttention, *args: Any, **kwargs: Any) -> Any:
        if not _ACTIVE.get():
            return original(self, *args, **kwargs)
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        asked = dict(bound.arguments)
        token = _IN_MHA.set(True)
        try:
            if asked["need_weights"]:  # one call; the average, if asked, is the mean over heads
                output, weights = original(**{**asked, "average_attn_weights": False})
                returned = weights.mean(dim=-3) if asked["average_attn_weights"] else weights
            else:  # the output exactly as asked (its own path), then the weights alone
                output, returned = original(**asked)
                with torch.no_grad():
                    _, weights = original(
                        **{**asked, "need_weights": True, "average_attn_weights": False}
                    )
        finally:
            _IN_MHA.reset(token)
        dropout = self.dropout if self.training else 0.0
        per_head = weights.detach() if weights.dim() == 4 else weights.detach().unsqueeze(0)
        with torch.no_grad():  # unbatched input: (H, Tq, Tk) -> (1, H, Tq, Tk)
            _record("mha", lambda: per_head.float().cpu(), asked["is_causal"], dropout)
        return output, returned

    forward.attnscope_wrapper = True
    return forward


def _install() -> None:
    with _LOCK:
        if _STATE["count"] == 0:
            _STATE["sdpa"] = F.scaled_dot_product_attention
            _STATE["mha"] = nn.MultiheadAttention.forward
            _STATE["fastpath"] = torch.backends.mha.get_fastpath_enabled()
            F.scaled_dot_product_attention = _wrap_sdpa(_STATE["sdpa"])
            nn.MultiheadAttention.forward = _wrap_mha(_STATE["mha"])
            torch.backends.mha.set_fastpath_enabled(False)
        _STATE["count"] += 1


def _uninstall() -> None:
    with _LOCK:
        _STATE["count"] -= 1
        if _STATE["count"] == 0:
            F.scaled_dot_product_attention = _STATE.pop("sdpa")
            nn.MultiheadAttention.forward = _STATE.pop("mha")
            torch.backends.mha.set_fastpath_enabled(_STATE.pop("fastpath"))


@contextmanager
def capture_attention(*, max_bytes: int = DEFAULT_BUDGET_BYTES) -> Iterator[Capture]:
    """Record the attention weights of every ``F.scaled_dot_product_attention`` and
    ``nn.MultiheadAttention`` call made by this thread inside the block; the original functions
    are back when it ends, also when it raises. More than ``max_bytes`` of weights is an
    :class:`~core.policy.errors.InputError`.

    >>> original = F.scaled_dot_product_attention
    >>> q = torch.zeros(1, 2, 3, 4)  # (B, H, T, E)
    >>> with capture_attention() as capture:
    ...     _ = F.scaled_dot_product_attention(q, q, q, is_causal=True)
    >>> capture.calls[0].weights[0, 1, 2]  # last query: 3 equal keys
    tensor([0.3333, 0.3333, 0.3333])
    >>> F.scaled_dot_product_attention is original
    True
    """
    capture = Capture(max_bytes=max_bytes)
    _install()
    try:
        token = _ACTIVE.set((*_ACTIVE.get(), capture))
        try:
            yield capture
        finally:
            _ACTIVE.reset(token)
    finally:
        _uninstall()


def captured_pass(module: nn.Module, *args: Any, **kwargs: Any) -> tuple[Any, Capture]:
    """One forward pass ``module(*args, **kwargs)`` without gradients, and what it recorded."""
    with torch.inference_mode(), capture_attention() as capture:
        output = module(*args, **kwargs)
    return output, capture
