"""The neuron view's queries and keys on tiny models of every family: softmax(q·k * scaling + mask)
is the analysis' own attention row, q and k are taken after RoPE where the model rotates them,
GQA query heads read their shared KV head, and the hooks are gone afterwards."""

from __future__ import annotations

import pytest
import torch

from core.engine.hooks import count_hooks
from core.engine.run import analyze
from core.methods.neuron import neuron_layer, scores_from
from tests.unit.tiny_models import TINY_MODELS

TEXT = "the cat sat on the mat , and it slept ."
PAIR = "a dog slept ."


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def tiny(request):
    return TINY_MODELS[request.param]()


def test_softmax_of_q_dot_k_is_the_attention_row(tiny):
    pair = PAIR if tiny.kind == "encoder" else None
    analysis = analyze(tiny, TEXT, pair)
    for layer in range(tiny.n_layers):
        captured = neuron_layer(tiny, analysis, layer)
        assert captured.queries.shape == (tiny.n_heads, analysis.seq_len, captured.head_dim)
        assert captured.keys.shape[0] == tiny.n_kv_heads
        for head in range(tiny.n_heads):
            for query in range(analysis.seq_len):
                view = captured.view(head, query)
                expected = analysis.head(layer, head)[query]
                assert torch.allclose(view.probabilities, expected, atol=1e-5), (layer, head)
                # the products drawn add up to the score
                visible = view.visible
                assert torch.allclose(
                    view.products.sum(-1)[visible] * view.scaling, view.scores[visible], atol=1e-5
                )
    assert count_hooks(tiny.model) == 0


def test_decoders_mask_the_future_and_encoders_nothing(tiny):
    analysis = analyze(tiny, TEXT)
    view = neuron_layer(tiny, analysis, 0).view(0, 3)
    if tiny.kind == "decoder":
        assert view.visible.tolist() == [True] * 4 + [False] * (analysis.seq_len - 4)
        assert view.probabilities[4:].abs().max() == 0
    else:
        assert bool(view.visible.all())


@pytest.mark.parametrize("name", ["llama", "mistral", "qwen2"])
def test_rotary_models_are_scored_after_rope(name):
    tiny = TINY_MODELS[name]()
    analysis = analyze(tiny, TEXT)
    captured = neuron_layer(tiny, analysis, 1)
    assert captured.rotary
    # q_proj's output before RoPE does not give the model's attention: the rotation matters.
    from core.engine.hooks import HookSet, query_key_modules
    from core.engine.run import forward_all_layers

    modules = query_key_modules(tiny, 1)
    raw = {}
    with HookSet() as hooks:
        hooks.forward(modules.query, lambda m, a, out: raw.setdefault("q", out[0].detach()))
        hooks.forward(modules.key, lambda m, a, out: raw.setdefault("k", out[0].detach()))
        forward_all_layers(tiny, analysis.model_inputs())
    d = captured.head_dim
    q = raw["q"].reshape(analysis.seq_len, -1, d)[:, 0]  # head 0, before RoPE: (T, d)
    k = raw["k"].reshape(analysis.seq_len, -1, d)[:, 0]  # KV head 0
    row = analysis.seq_len - 1
    unrotated = torch.softmax(scores_from(q[row], k, captured.scaling, captured.mask[row]), -1)
    assert not torch.allclose(unrotated, analysis.head(1, 0)[row], atol=1e-3)
    assert torch.allclose(captured.view(0, row).probabilities, analysis.head(1, 0)[row], atol=1e-5)
    # the first position is not rotated at all (angle 0): its key equals k_proj's output
    assert torch.allclose(captured.keys[0, 0], k[0], atol=1e-6)


def test_gqa_query_heads_share_their_kv_head():
    tiny = TINY_MODELS["llama"]()  # 4 query heads, 2 KV heads
    captured = neuron_layer(tiny, analyze(tiny, TEXT), 0)
    assert [captured.kv_head(h) for h in range(4)] == [0, 0, 1, 1]
    a, b, c = captured.view(0, 5), captured.view(1, 5), captured.view(2, 5)
    assert torch.equal(a.keys, b.keys) and not torch.equal(a.keys, c.keys)
    assert not torch.equal(a.query, b.query)


def test_derived_analyses_have_no_inputs_to_run():
    from core.methods.effective import effective_analysis
    from core.policy.errors import InputError

    tiny = TINY_MODELS["bert"]()
    rolled = effective_analysis(tiny, analyze(tiny, TEXT), "rollout")
    with pytest.raises(InputError):
        neuron_layer(tiny, rolled, 0)
