"""Value zeroing (Mohebbi, Zuidema, Chrupała & Alishahi 2023, "Quantifying Context Mixing in
Transformers"): how much each token's representation after a layer changes when one other
token's value vector is set to zero in that layer, every head at once.

Chosen over ALTI (Ferrando et al. 2022) because it reads the values and the output projection
through the model's own modules and keeps everything after them (residual, LayerNorm, the
feed-forward block) exact, with no linear approximation of the norms, and works alike for
post-LN (BERT) and pre-LN (Llama) blocks. Hooks (:class:`~core.engine.hooks.HookSet`) are
always removed.
"""

from __future__ import annotations

from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from core.engine.hooks import HookSet, architecture_for, projections
from core.engine.streaming import run_inputs

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = ["ValueZeroing", "value_zeroing", "value_zeroing_rollout", "value_zeroing_scores"]

_CHUNK = 32  # zeroed copies per forward pass


class _Enough(Exception):
    """Raised by the block hook once the chosen layer's output is kept."""


def value_zeroing_scores(original: Tensor, zeroed: Tensor, *, causal: bool = False) -> Tensor:
    """Mohebbi et al. 2023's context-mixing map of one layer: ``C[i, j] = 1 - cos(x̃_i^{¬j},
    x̃_i)`` (cosine distance between position i's output with token j's value zeroed and its
    output with nothing zeroed), each row divided by its sum. ``original`` ``(T, d)``, ``zeroed``
    ``(T_j, T_i, d)`` (copy j has token j's value zeroed) -> ``(T, T)``; with ``causal`` the keys
    after each query are exactly 0 (zeroing them cannot change it).

    >>> x = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    >>> z = torch.tensor([[[0.0, 1.0], [0.0, 1.0]], [[1.0, 0.0], [1.0, 1.0]]])
    >>> value_zeroing_scores(x, z)  # row 0: distances (1, 0); row 1: (0, 1 - 1/sqrt 2)
    tensor([[1., 0.],
            [0., 1.]])
    """
    cosine = torch.nn.functional.cosine_similarity(zeroed, original[None], dim=-1)  # (Tj, Ti)
    scores = (1.0 - cosine).T.clamp_min(0.0)  # (T_i, T_j)
    if causal:
        scores = scores.tril()
    rows = scores.sum(dim=-1, keepdim=True)  # (T, 1)
    return scores / rows.clamp_min(torch.finfo(scores.dtype).tiny)


def value_zeroing_rollout(scores: Tensor) -> Tensor:
    """Layers' value-zeroing maps multiplied from the first up, ``R_l = C_l R_{l-1}`` (the
    paper's rollout; no identity is mixed in, since the token's own residual is already part of
    each ``C``). ``(n_layers, T, T) -> (n_layers, T, T)``; rows sum to 1.

    >>> c = torch.tensor([[[1.0, 0.0], [0.5, 0.5]], [[1.0, 0.0], [0.5, 0.5]]])
    >>> value_zeroing_rollout(c)[-1]
    tensor([[1.0000, 0.0000],
            [0.7500, 0.2500]])
    """
    rolled, current = [], None
    for layer in scores:  # (T, T)
        current = layer if current is None else layer @ current
        rolled.append(current)
    return torch.stack(rolled)


@dataclass(frozen=True, eq=False)
class ValueZeroing:
    """Value-zeroing maps of the layers done, float32 on the CPU; ``completed`` is False when a
    Stop ended the run early (then ``scores`` holds the first ``n_done`` layers)."""

    scores: Tensor  # (n_done, T, T): C[l, i, j], rows sum to 1
    completed: bool
    n_done: int
    n_total: int

    @property
    def rollout(self) -> Tensor:
        """:func:`value_zeroing_rollout` of the layers done, ``(n_done, T, T)``."""
        return value_zeroing_rollout(self.scores)


def _zeroed_outputs(loaded: LoadedModel, inputs: dict, layer: int) -> tuple[Tensor, Tensor]:
    """Layer ``layer``'s block output without and with each token's value zeroed: ``(T, d)``
    and ``(T, T, d)``, a chunk of copies per pass, each pass stopped after that layer."""
    architecture = architecture_for(loaded.model)
    value_module = projections(loaded)[layer].value
    block = architecture.blocks(loaded.model.base_model)[layer]
    seq_len = inputs["input_ids"].shape[-1]
    outputs: list[Tensor] = []
    chunk: list[int | None] = []

    def zero_values(module, args, output):
        values = architecture.value_part(output)  # (B, T, KV d), a view of the output
        for copy, token in enumerate(chunk):
            if token is not None:
                values[copy, token] = 0.0

    def keep_output(module, args, output):
        hidden = output[0] if isinstance(output, tuple) else output  # (B, T, d)
        outputs.append(hidden.detach().float().cpu())
        raise _Enough

    order: list[int | None] = [None, *range(seq_len)]
    with HookSet() as hooks, torch.inference_mode():
        hooks.forward(value_module, zero_values)
        hooks.forward(block, keep_output)
        for start in range(0, len(order), _CHUNK):
            chunk[:] = order[start : start + _CHUNK]
            batch = {k: v.expand(len(chunk), -1) for k, v in inputs.items()}
            with suppress(_Enough):
                loaded.model.base_model(**run_inputs(loaded, batch))
    stacked = torch.cat(outputs)  # (T + 1, T, d)
    return stacked[0], stacked[1:]


def value_zeroing(
    loaded: LoadedModel,
    analysis: Analysis,
    *,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> ValueZeroing:
    """Every layer's value-zeroing map of ``analysis``' own inputs: per layer, ``T + 1`` copies
    of the input (one untouched, copy j with token j's value vector ``x_j W_V + b_V`` zeroed
    in every head of that layer only), run up to that layer's output. ``progress(done, total)``
    after each layer; ``should_stop()`` before each, a true answer keeping the layers done."""
    inputs = analysis.model_inputs()
    scores = []
    for layer in range(loaded.n_layers):
        if should_stop is not None and should_stop():
            break
        original, zeroed = _zeroed_outputs(loaded, inputs, layer)
        scores.append(value_zeroing_scores(original, zeroed, causal=loaded.causal))
        if progress is not None:
            progress(layer + 1, loaded.n_layers)
    seq_len = analysis.seq_len
    return ValueZeroing(
        scores=torch.stack(scores) if scores else torch.empty(0, seq_len, seq_len),
        completed=len(scores) == loaded.n_layers,
        n_done=len(scores),
        n_total=loaded.n_layers,
    )
