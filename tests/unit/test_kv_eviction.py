"""Simulated KV-cache eviction against a direct loop over queries and kept key sets."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from core.engine.run import run_tokenized
from core.engine.tokenize import tokenize
from core.methods.kv_eviction import SINK, simulate_eviction
from core.policy.errors import InputError
from tests.unit.tiny_models import tiny_bert, tiny_llama


def direct(attn: torch.Tensor, received: torch.Tensor, budget: int):
    """(StreamingLLM, heavy hitters) kept mass ``(H,)`` of one layer ``(H, T, T)`` by loops."""
    heads, seq_len, _ = attn.shape
    streaming = torch.zeros(heads)
    heavy = torch.zeros(heads)
    for h in range(heads):
        hitters = set(received[h].topk(min(budget // 2, seq_len)).indices.tolist())
        for i in range(seq_len):
            if i < budget:  # fewer keys than the budget: nothing evicted
                streaming[h] += attn[h, i, : i + 1].sum()
                heavy[h] += attn[h, i, : i + 1].sum()
                continue
            kept_s = set(range(SINK)) | set(range(i - (budget - SINK) + 1, i + 1))
            kept_h = hitters | set(range(i - budget // 2 + 1, i + 1))
            streaming[h] += sum(attn[h, i, j] for j in kept_s if j <= i)
            heavy[h] += sum(attn[h, i, j] for j in kept_h if j <= i)
    return streaming / seq_len, heavy / seq_len


def test_held_weights_and_a_blocked_pass_equal_the_loop():
    loaded = tiny_llama()
    text = "the cat sat on the mat and the dog slept . " * 3
    analysis = run_tokenized(loaded, tokenize(loaded, text))
    budgets = (8, 12)
    held = simulate_eviction(loaded, analysis, budgets)
    for layer in range(loaded.n_layers):
        attn = analysis.layer_weights[layer]
        for n, budget in enumerate(budgets):
            s, h = direct(attn, analysis.received_by_head[layer], budget)
            torch.testing.assert_close(held.streaming[layer, :, n], s, atol=1e-5, rtol=0)
            torch.testing.assert_close(held.heavy[layer, :, n], h, atol=1e-5, rtol=0)
    assert (held.heavy[..., 0] > 0.3).all() and (held.streaming <= 1 + 1e-5).all()
    # no layer held: one more pass in blocks of queries (ours) gives the same numbers
    import copy

    from core.engine.attention_fn import use_attnscope

    model = copy.deepcopy(loaded.model)
    use_attnscope(model)
    ours = dataclasses.replace(loaded, model=model)
    bare = dataclasses.replace(analysis, layer_weights=(None,) * loaded.n_layers)
    seen = []
    passed = simulate_eviction(ours, bare, budgets, progress=seen.append)
    torch.testing.assert_close(passed.streaming, held.streaming, atol=1e-5, rtol=0)
    torch.testing.assert_close(passed.heavy, held.heavy, atol=1e-5, rtol=0)
    assert seen == list(range(loaded.n_layers))


def test_encoders_have_no_cache():
    loaded = tiny_bert()
    analysis = run_tokenized(loaded, tokenize(loaded, "the cat sat"))
    with pytest.raises(InputError) as raised:
        simulate_eviction(loaded, analysis)
    assert raised.value.key == "error.eviction_encoder"
