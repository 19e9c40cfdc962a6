"""A long layer's overview and window, from a pass in blocks of queries, against the full weights
pooled and sliced directly."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from core.engine import stats
from core.engine.attention_fn import use_attnscope
from core.engine.run import run_tokenized
from core.engine.tokenize import tokenize
from core.methods.long_view import layer_window
from tests.unit.tiny_models import tiny_bert, tiny_llama


@pytest.mark.parametrize("make", [tiny_llama, tiny_bert])
def test_blocks_equal_pooling_and_slicing_the_layer(make, monkeypatch):
    import core.engine.attention_fn as attention_fn

    eager = make()
    text = "the cat sat on the mat and the dog slept . " * 5  # ~55 tokens
    full = run_tokenized(eager, tokenize(eager, text))  # every layer held
    model = copy.deepcopy(eager.model)
    use_attnscope(model)
    ours = dataclasses.replace(eager, model=model)
    bare = dataclasses.replace(full, layer_weights=(None,) * eager.n_layers)
    monkeypatch.setattr(attention_fn, "BLOCK_BYTES", eager.n_heads * 60 * 4 * 9)  # 9 rows
    rows, keys = range(20, 31), range(3, 17)
    got = layer_window(ours, bare, 1, rows, keys, size=16)
    attn = full.layer_weights[1]  # (H, T, T)
    torch.testing.assert_close(got.overview, stats.pooled_attention(attn, 16), atol=1e-5, rtol=0)
    torch.testing.assert_close(got.window, attn[:, 20:31, 3:17], atol=1e-5, rtol=0)
    assert got.window.shape == (eager.n_heads, 11, 14)
    # the held path gives the same, and clips a window that runs past the text
    held = layer_window(eager, full, 1, range(full.seq_len - 5, full.seq_len + 10), keys, size=16)
    assert held.rows == range(full.seq_len - 5, full.seq_len)
    torch.testing.assert_close(held.overview, got.overview, atol=1e-5, rtol=0)


def test_top_keys_from_blocks_equal_topk_of_the_layer(monkeypatch):
    import core.engine.attention_fn as attention_fn
    from core.methods.long_view import layer_top_keys

    eager = tiny_llama()
    text = "the cat sat on the mat and the dog slept . " * 5
    full = run_tokenized(eager, tokenize(eager, text))
    model = copy.deepcopy(eager.model)
    use_attnscope(model)
    ours = dataclasses.replace(eager, model=model)
    bare = dataclasses.replace(full, layer_weights=(None,) * eager.n_layers)
    monkeypatch.setattr(attention_fn, "BLOCK_BYTES", eager.n_heads * 60 * 4 * 9)
    values, indices = layer_top_keys(ours, bare, 1, k=8)
    want_values, want_indices = torch.topk(full.layer_weights[1], 8, dim=-1)
    torch.testing.assert_close(values, want_values, atol=1e-5, rtol=0)
    # early causal rows have fewer than 8 keys: their padding keys weigh 0 in both
    clear = want_values > 1e-4
    assert torch.equal(indices[clear], want_indices[clear])
    assert values.shape == (eager.n_heads, full.seq_len, 8)
