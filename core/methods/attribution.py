"""Token attributions of one target (see :mod:`core.methods.attribution_target`) by Captum's
saliency, input × gradient, integrated gradients and feature ablation (occlusion) over the input
embeddings, beside attention × gradient, gradient-weighted rollout and value zeroing, for one
analysis' own inputs (:func:`attribute`). A Stop keeps the methods already done.

Formulas per token t (sums and norms over the embedding axis d):
saliency ``||∂f/∂x_t||`` (Simonyan et al. 2014); input × gradient ``Σ_d x_td ∂f/∂x_td``
(Shrikumar et al. 2016); integrated gradients ``Σ_d (x_td - x'_td) ∫_0^1 ∂f(x' + α(x - x'))/∂x_td
dα`` (Sundararajan et al. 2017); occlusion ``f(x) - f(x with token t set to its baseline)``
(Zeiler & Fergus 2014).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal, get_args

import torch
from torch import Tensor

from core.engine import budget
from core.methods.attention_gradient import (
    AttentionGradients,
    attention_gradients,
    check_size,
    relevance_row,
)
from core.methods.attribution_target import (
    Baseline,
    Target,
    baseline_embeddings,
    input_embeddings,
    target_function,
)
from core.methods.value_zeroing import ValueZeroing, value_zeroing
from core.policy.errors import InputError

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = [
    "METHODS",
    "Attributions",
    "DELTA_TOLERANCE",
    "CaptumScores",
    "Method",
    "attribute",
    "captum_scores",
    "check_steps",
    "word_attributions",
]

Method = Literal[
    "saliency",
    "input_x_gradient",
    "integrated_gradients",
    "occlusion",
    "gradient_rollout",
    "value_zeroing",
]
METHODS: tuple[Method, ...] = get_args(Method)
_CAPTUM: tuple[Method, ...] = METHODS[:4]
MAX_STEPS = 512
# Integrated gradients have converged when |delta| is at most this share of |f(x) - f(x')|.
DELTA_TOLERANCE = 0.05


class _Stopped(Exception):
    """Raised inside a Captum method's forward function when the reader pressed Stop."""


def check_steps(steps: int) -> int:
    """Integrated gradients' number of steps: a whole number in ``1..MAX_STEPS``."""
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= MAX_STEPS:
        raise InputError("error.attribution_steps", steps=steps, most=MAX_STEPS)
    return steps


@dataclass(frozen=True)
class CaptumScores:
    """Per-token scores from Captum's methods, ``(T,)`` each, None where not run (or stopped)."""

    saliency: Tensor | None = None
    input_x_gradient: Tensor | None = None
    integrated_gradients: Tensor | None = None
    occlusion: Tensor | None = None
    ig_delta: float | None = None  # Σ attributions - (f(x) - f(x')), Captum's convergence delta
    seconds: dict[str, float] = field(default_factory=dict)


def captum_scores(
    f: Callable[[Tensor], Tensor],
    embeds: Tensor,
    baseline: Tensor,
    *,
    methods: tuple[Method, ...] = _CAPTUM,
    steps: int = 32,
    batch_size: int = 8,
    progress: Callable[[int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> tuple[CaptumScores, bool]:
    """Captum's attributions of ``f`` (``(B, T, d) -> (B,)``) at ``embeds`` ``(1, T, d)``,
    reduced to one score per token, and whether every method finished. ``baseline`` ``(1, T,
    d)`` is integrated gradients' reference and what occlusion puts in a token's place.
    Integrated gradients use Gauss-Legendre quadrature over ``steps`` points, ``batch_size`` of
    them per pass. ``progress(n)`` is called with the rows each pass evaluates;
    ``should_stop()`` is asked before every pass, and a true answer drops the method under way
    and keeps those done."""
    from captum.attr import FeatureAblation, InputXGradient, IntegratedGradients, Saliency

    check_steps(steps)

    def counted(embeds_batch: Tensor) -> Tensor:
        if should_stop is not None and should_stop():
            raise _Stopped
        values = f(embeds_batch)  # (B,)
        if progress is not None:
            progress(embeds_batch.shape[0])
        return values

    found: dict[str, object] = {}
    seconds: dict[str, float] = {}
    finished = True
    seq_len = embeds.shape[1]
    with torch.inference_mode(False), torch.enable_grad():
        embeds = embeds.clone().requires_grad_(True)
        baseline = baseline.clone()
        for method in methods:
            started = time.perf_counter()
            try:
                if method == "saliency":
                    grads = Saliency(counted).attribute(embeds, abs=False)  # (1, T, d)
                    found[method] = grads[0].norm(dim=-1)  # (T,)
                elif method == "input_x_gradient":
                    product = InputXGradient(counted).attribute(embeds)  # (1, T, d)
                    found[method] = product[0].sum(dim=-1)  # (T,)
                elif method == "integrated_gradients":
                    attributions, delta = IntegratedGradients(counted).attribute(
                        embeds,
                        baselines=baseline,
                        n_steps=steps,
                        method="gausslegendre",
                        internal_batch_size=batch_size,
                        return_convergence_delta=True,
                    )  # (1, T, d), (1,)
                    found[method] = attributions[0].sum(dim=-1)  # (T,)
                    found["ig_delta"] = float(delta[0])
                elif method == "occlusion":
                    mask = torch.arange(seq_len, device=embeds.device)[None, :, None]  # (1, T, 1)
                    occluded = FeatureAblation(counted).attribute(
                        embeds,
                        baselines=baseline,
                        feature_mask=mask.expand_as(embeds),
                        perturbations_per_eval=batch_size,
                    )  # (1, T, d), each token's value repeated over d
                    found[method] = occluded[0, :, 0]  # (T,)
            except _Stopped:
                finished = False
                break
            seconds[method] = time.perf_counter() - started
    scores = {k: v.detach().float().cpu() for k, v in found.items() if isinstance(v, Tensor)}
    delta = found.get("ig_delta")
    return CaptumScores(**scores, ig_delta=delta, seconds=seconds), finished  # type: ignore[arg-type]


@dataclass(frozen=True, eq=False)
class Attributions:
    """Every attribution of one target over one analysis, float32 on the CPU, read by name.

    Token scores are ``(T,)``: Captum's four (:class:`CaptumScores`), ``gradient_rollout`` (the
    target's row of :func:`~core.methods.attention_gradient.gradient_rollout` at the last layer)
    and ``value_zeroing`` (its row of the value-zeroing rollout over the layers done). None
    marks a method not asked for or stopped before it finished; ``completed`` is False after a
    Stop. ``f_input`` and ``f_baseline`` are ``f(x)`` and ``f(x')``."""

    tokens: tuple[str, ...]
    target: Target
    baseline: Baseline
    steps: int
    f_input: float
    f_baseline: float
    captum: CaptumScores
    attention: AttentionGradients | None  # per-head attention and its gradient
    gradient_rollout: Tensor | None  # (T,)
    zeroing: ValueZeroing | None
    value_zeroing: Tensor | None  # (T,)
    completed: bool
    seconds: dict[str, float]

    def scores(self) -> dict[str, Tensor]:
        """The token scores that were computed, by method name in :data:`METHODS` order."""
        named = {
            "saliency": self.captum.saliency,
            "input_x_gradient": self.captum.input_x_gradient,
            "integrated_gradients": self.captum.integrated_gradients,
            "occlusion": self.captum.occlusion,
            "gradient_rollout": self.gradient_rollout,
            "value_zeroing": self.value_zeroing,
        }
        return {name: value for name, value in named.items() if value is not None}

    @property
    def relative_delta(self) -> float | None:
        """Integrated gradients' ``|delta| / |f(x) - f(x')|`` (None when not run; inf when the
        two values are equal and delta is not 0). Delta is quadrature error: on SmolLM2 the path
        from the baseline to the text crosses steep ridges, so a few steps can miss or hit them
        and the error does not shrink steadily with more steps (README, "Attributions beside
        attention")."""
        delta = self.captum.ig_delta
        if delta is None:
            return None
        gap = abs(self.f_input - self.f_baseline)
        if gap == 0.0:
            return 0.0 if delta == 0.0 else float("inf")
        return abs(delta) / gap

    def converged(self, tolerance: float = DELTA_TOLERANCE) -> bool | None:
        """Whether :attr:`relative_delta` is within ``tolerance`` (None when IG was not run)."""
        relative = self.relative_delta
        return None if relative is None else relative <= tolerance


def _units(methods: tuple[Method, ...], steps: int, seq_len: int, n_layers: int) -> int:
    """Forward passes (rows) a run makes, for its progress bar."""
    per_method = {
        "saliency": 1,
        "input_x_gradient": 1,
        "integrated_gradients": steps + 2,
        "occlusion": seq_len + 1,
        "gradient_rollout": 1,
        "value_zeroing": n_layers,
    }
    return sum(per_method[m] for m in methods)


def attribute(
    loaded: LoadedModel,
    analysis: Analysis,
    target: Target,
    *,
    methods: tuple[Method, ...] = METHODS,
    baseline: Baseline = "pad",
    steps: int = 32,
    batch_size: int = 8,
    progress: Callable[[int, int], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_partial: Callable[[Attributions], None] | None = None,
    budget_bytes: int = budget.DEFAULT_BUDGET_BYTES,
) -> Attributions:
    """Run ``methods`` on ``analysis``' own inputs towards ``target`` (from
    :func:`~core.methods.attribution_target.resolve_target`), in :data:`METHODS` order.
    ``progress(done, total)`` counts forward rows; ``should_stop()`` is asked before each pass
    and a true answer returns what is done with ``completed=False``; ``on_partial(result)`` gets
    the result so far after each method (an app keeps it, so an interrupted run loses only the
    method under way). Gradient-weighted rollout holds every layer's attention and its gradient:
    past ``budget_bytes`` (:func:`~core.methods.attention_gradient.check_size`) the run is
    refused before any work."""
    check_steps(steps)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; choose from {METHODS}")
    if "gradient_rollout" in methods:
        check_size(analysis.n_layers, analysis.n_heads, analysis.seq_len, budget_bytes)
    embeds = input_embeddings(loaded, analysis)  # (1, T, d)
    reference = baseline_embeddings(loaded, analysis, embeds, baseline)  # (1, T, d)
    f = target_function(loaded, analysis, target)
    with torch.inference_mode():
        f_input, f_baseline = (float(v) for v in f(torch.cat([embeds, reference])))
    total = _units(methods, steps, analysis.seq_len, loaded.n_layers)
    done = 0

    def advance(rows: int) -> None:
        nonlocal done
        done = min(total, done + rows)
        if progress is not None:
            progress(done, total)

    result = Attributions(
        tokens=analysis.tokens,
        target=target,
        baseline=baseline,
        steps=steps,
        f_input=f_input,
        f_baseline=f_baseline,
        captum=CaptumScores(),
        attention=None,
        gradient_rollout=None,
        zeroing=None,
        value_zeroing=None,
        completed=False,
        seconds={},
    )
    for method in (m for m in METHODS if m in methods):
        if should_stop is not None and should_stop():
            return result
        started = time.perf_counter()
        if method in _CAPTUM:
            found, finished = captum_scores(
                f,
                embeds,
                reference,
                methods=(method,),
                steps=steps,
                batch_size=batch_size,
                progress=advance,
                should_stop=should_stop,
            )
            if not finished:
                return result
            merged = {k: v for k, v in vars(found).items() if v is not None and k != "seconds"}
            result = replace(result, captum=replace(result.captum, **merged))
        elif method == "gradient_rollout":
            attention = attention_gradients(loaded, analysis, target, budget_bytes=budget_bytes)
            rolled = relevance_row(attention.rollout[-1], target.query_positions)  # (T,)
            result = replace(result, attention=attention, gradient_rollout=rolled)
            advance(1)
        else:
            zeroing = value_zeroing(
                loaded, analysis, progress=lambda d, t: advance(1), should_stop=should_stop
            )
            if not zeroing.completed:
                return replace(result, zeroing=zeroing)
            rolled = relevance_row(zeroing.rollout[-1], target.query_positions)  # (T,)
            result = replace(result, zeroing=zeroing, value_zeroing=rolled)
        seconds = {**result.seconds, method: time.perf_counter() - started}
        result = replace(result, seconds=seconds)
        if on_partial is not None:
            on_partial(result)
    return replace(result, completed=True)


def word_attributions(
    result: Attributions, groups: Sequence[Sequence[int]], labels: Sequence[str]
) -> Attributions:
    """``result`` over words: each method's score of a word is the sum of its pieces' scores
    (integrated gradients stay complete: the words' scores still add up to ``f(x) - f(x')``),
    ``tokens`` become ``labels``; the attention and value-zeroing maps stay per token. ``groups``
    are each word's token positions (:class:`core.methods.segmentation.Words`).

    >>> from types import SimpleNamespace
    >>> fake = Attributions(
    ...     tokens=("un", "##like", "ly"), target=None, baseline="pad", steps=1, f_input=0.0,
    ...     f_baseline=0.0, captum=CaptumScores(occlusion=torch.tensor([1.0, 2.0, 4.0])),
    ...     attention=None, gradient_rollout=None, zeroing=None, value_zeroing=None,
    ...     completed=True, seconds={})
    >>> merged = word_attributions(fake, [[0, 1], [2]], ["unlike", "ly"])
    >>> merged.tokens, merged.scores()
    (('unlike', 'ly'), {'occlusion': tensor([3., 4.])})
    """
    if len(groups) != len(labels) or sorted(i for g in groups for i in g) != list(
        range(len(result.tokens))
    ):
        raise ValueError("groups must cover every token once, one label per group")

    def merged(scores: Tensor | None) -> Tensor | None:
        if scores is None:
            return None
        return torch.stack([scores[list(group)].sum() for group in groups])  # (W,)

    captum = result.captum
    return replace(
        result,
        tokens=tuple(labels),
        captum=replace(
            captum,
            saliency=merged(captum.saliency),
            input_x_gradient=merged(captum.input_x_gradient),
            integrated_gradients=merged(captum.integrated_gradients),
            occlusion=merged(captum.occlusion),
        ),
        gradient_rollout=merged(result.gradient_rollout),
        value_zeroing=merged(result.value_zeroing),
    )
