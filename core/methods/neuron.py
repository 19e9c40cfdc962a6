"""The neuron view (BertViz's, reimplemented): for one query token and head, the query vector, every
key vector, their elementwise product ``q ⊙ k_j`` and the score and softmax it leads to.

:func:`neuron_layer` runs one forward pass over an analysis' own inputs (no tokenizing) that stops
after the chosen layer, with hooks (always removed) on that layer's query and key projections and
on its attention module, which is called with the mask and, in rotary models (Llama, Mistral,
Qwen2), the rotary position embeddings. Queries and keys are taken as the model's attention
multiplies them: per head, after RoPE where the model applies it. With grouped-query attention
(SmolLM2: 9 query heads, 3 KV heads) query head ``h`` reads KV head ``h // (n_heads //
n_kv_heads)``, as ``repeat_kv`` orders them.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from core.engine.attention_fn import visible
from core.engine.hooks import HookSet, query_key_modules
from core.engine.streaming import recompute_layers

if TYPE_CHECKING:
    from core.engine.analysis import Analysis
    from core.engine.models import LoadedModel

__all__ = ["NeuronLayer", "NeuronView", "neuron_layer", "queries_and_keys", "scores_from"]


def scores_from(query: Tensor, keys: Tensor, scaling: float, mask: Tensor) -> Tensor:
    """Attention scores of one query: ``s_j = (q · k_j) * scaling + mask_j``.

    ``query`` ``(d,)``, ``keys`` ``(T, d)``, ``mask`` ``(T,)`` additive (0 where the key may be
    seen, ``-inf`` where not) -> ``(T,)``. The sum is taken over the products ``q ⊙ k_j`` that the
    view shows, so what is drawn adds up to what is scored.

    >>> scores_from(torch.tensor([1.0, 2.0]), torch.tensor([[3.0, 4.0], [1.0, 0.0]]), 0.5,
    ...             torch.tensor([0.0, float("-inf")]))
    tensor([5.5000,   -inf])
    """
    return (query * keys).sum(dim=-1) * scaling + mask


@dataclass(frozen=True, eq=False)
class NeuronView:
    """One query position of one head: what the neuron view draws, float32 on the CPU."""

    layer: int
    head: int
    kv_head: int  # the key/value head this query head reads (GQA)
    query_pos: int
    query: Tensor  # (head_dim,), after RoPE in rotary models
    keys: Tensor  # (seq_len, head_dim), after RoPE in rotary models
    products: Tensor  # (seq_len, head_dim): query * keys[j], elementwise
    scores: Tensor  # (seq_len,): products summed, times scaling, plus the mask (-inf: masked)
    probabilities: Tensor  # (seq_len,): softmax(scores), the attention row
    scaling: float
    rotary: bool

    @property
    def visible(self) -> Tensor:
        """Which keys the query may see, ``(seq_len,)`` bool (all in an encoder)."""
        return torch.isfinite(self.scores)


@dataclass(frozen=True, eq=False)
class NeuronLayer:
    """Every head's queries and keys in one layer, as its attention uses them.

    ``queries[h, i]`` and ``keys[g, j]`` are per-head vectors (after RoPE when ``rotary``);
    ``mask[i, j]`` is 0 where query i may see key j and ``-inf`` where not.
    """

    layer: int
    queries: Tensor  # (n_heads, T, head_dim)
    keys: Tensor  # (n_kv_heads, T, head_dim)
    mask: Tensor  # (T, T)
    scaling: float
    rotary: bool

    @property
    def n_heads(self) -> int:
        return self.queries.shape[0]

    @property
    def n_kv_heads(self) -> int:
        return self.keys.shape[0]

    @property
    def head_dim(self) -> int:
        return self.queries.shape[-1]

    def kv_head(self, head: int) -> int:
        """The KV head query head ``head`` reads: ``head // (n_heads // n_kv_heads)``."""
        return head // (self.n_heads // self.n_kv_heads)

    def view(self, head: int, query_pos: int) -> NeuronView:
        """The neuron view of query ``query_pos`` in head ``head``."""
        if not 0 <= head < self.n_heads:
            raise IndexError(f"head {head} out of range 0..{self.n_heads - 1}")
        if not 0 <= query_pos < self.queries.shape[1]:
            raise IndexError(f"query {query_pos} out of range 0..{self.queries.shape[1] - 1}")
        kv = self.kv_head(head)
        query = self.queries[head, query_pos]  # (d,)
        keys = self.keys[kv]  # (T, d)
        scores = scores_from(query, keys, self.scaling, self.mask[query_pos])  # (T,)
        return NeuronView(
            layer=self.layer,
            head=head,
            kv_head=kv,
            query_pos=query_pos,
            query=query,
            keys=keys,
            products=query * keys,  # (T, d)
            scores=scores,
            probabilities=torch.softmax(scores, dim=-1),
            scaling=self.scaling,
            rotary=self.rotary,
        )


def _heads(projected: Tensor, head_dim: int) -> Tensor:
    """``(T, n * head_dim)`` -> ``(n, T, head_dim)``."""
    seq_len = projected.shape[0]
    return projected.reshape(seq_len, -1, head_dim).transpose(0, 1)


def _additive_mask(module: nn.Module, mask: Tensor | None, seq_len: int) -> Tensor:
    """The mask the attention ``module`` was called with, as ``(T, T)`` float: 0 where a key may
    be seen, ``-inf`` where not (a boolean mask means True = seen; an additive one holds 0 or a
    very negative number; None means causal or every key, as the module's ``is_causal`` says:
    transformers' SDPA mask builder, used with ``"attnscope"`` attention, leaves a plain pass
    without a mask)."""
    if mask is not None:
        mask = mask.detach().cpu()
    allowed = visible(module, mask, seq_len)  # (T, T)
    return torch.zeros(seq_len, seq_len).masked_fill(~allowed, float("-inf"))


def neuron_layer(loaded: LoadedModel, analysis: Analysis, layer: int) -> NeuronLayer:
    """Every head's queries and keys in ``layer`` for ``analysis``' own inputs (a runnable
    analysis; words or rollout have no inputs), by one forward pass that stops after ``layer``.

    Rotary models get q and k rotated with their own ``apply_rotary_pos_emb`` and the cos/sin
    the layer was called with, so ``softmax(q·k * scaling + mask)`` is the layer's attention.
    """
    return queries_and_keys(loaded, analysis.model_inputs(), layer)


def queries_and_keys(loaded: LoadedModel, inputs: dict[str, Tensor], layer: int) -> NeuronLayer:
    """:func:`neuron_layer` for model ``inputs`` of one text (each ``(1, T)``, e.g.
    :attr:`core.engine.tokenize.Tokenized.inputs`), with no :class:`Analysis` needed."""
    modules = query_key_modules(loaded, layer)
    seq_len = inputs["input_ids"].shape[-1]
    captured: dict[str, Any] = {}
    signature = inspect.signature(modules.attention.forward)

    def keep_query(module, args, output):
        captured["q"] = modules.query_part(output)[0].detach().float().cpu()  # (T, H d)

    def keep_key(module, args, output):
        captured["k"] = modules.key_part(output)[0].detach().float().cpu()  # (T, KV d)

    def keep_call(module, args, kwargs):
        bound = signature.bind_partial(*args, **kwargs).arguments
        captured["mask"] = bound.get("attention_mask")
        captured["position_embeddings"] = bound.get("position_embeddings")

    with HookSet() as hooks:
        hooks.forward(modules.query, keep_query)
        hooks.forward(modules.key, keep_key)
        hooks.forward_pre(modules.attention, keep_call, with_kwargs=True)
        recompute_layers(loaded, inputs, [layer])  # the pass, stopped after `layer`
    head_dim = captured["q"].shape[-1] // loaded.n_heads
    queries = _heads(captured["q"], head_dim)  # (H, T, d)
    keys = _heads(captured["k"], head_dim)  # (KV, T, d)
    if modules.rotary:
        queries, keys = _rotate(queries, keys, captured["position_embeddings"])
    scaling = getattr(modules.attention, "scaling", None) or head_dim**-0.5
    return NeuronLayer(
        layer=layer,
        queries=queries,
        keys=keys,
        mask=_additive_mask(modules.attention, captured["mask"], seq_len),
        scaling=float(scaling),
        rotary=modules.rotary,
    )


def _rotate(queries: Tensor, keys: Tensor, position_embeddings: Any) -> tuple[Tensor, Tensor]:
    """q and k rotated as Llama, Mistral and Qwen2 rotate them (one shared definition)."""
    from transformers.models.llama.modeling_llama import apply_rotary_pos_emb

    cos, sin = (part.detach().float().cpu() for part in position_embeddings)  # (1, T, d) each
    q, k = apply_rotary_pos_emb(queries[None], keys[None], cos, sin)  # (1, H, T, d), (1, KV, T, d)
    return q[0], k[0]
