"""Head statistics, effective attention, ablation, predictions and comparison on both bundled
models. Kept short: a few forward passes each, ablation ranking on a handful of heads."""

from __future__ import annotations

import pytest
import torch

from core import InputError, analyze
from core.engine.hooks import HookSet, count_hooks, projections
from core.engine.tokenize import tokenize
from core.methods.ablation import ablate_heads, ablation_effect, rank_heads
from core.methods.compare import compare
from core.methods.effective import (
    capture_attention,
    norm_based_attention,
    rollout,
    transformed_values,
)
from core.methods.head_stats import HeadStats
from core.methods.predictions import predict

TEXT = "The quick brown fox jumps over the lazy dog because it was bored."
SHORT = "The cat sat on the mat."


# --- head statistics -----------------------------------------------------------------------------


def test_head_stats_match_a_direct_loop(any_model):
    result = analyze(any_model, SHORT)
    stats = HeadStats.from_analysis(result)
    assert stats.confidence.shape == (any_model.n_layers, any_model.n_heads)
    layer, head = any_model.n_layers - 1, any_model.n_heads - 1
    a = result.attentions[layer, head].double()
    size = result.seq_len
    distance = sum(a[i, j].item() * abs(i - j) for i in range(size) for j in range(size)) / size
    assert stats.mean_distance[layer, head].item() == pytest.approx(distance, abs=1e-5)
    previous = sum(a[i, i - 1].item() for i in range(1, size)) / (size - 1)
    assert stats.previous_token[layer, head].item() == pytest.approx(previous, abs=1e-6)
    assert stats.confidence[layer, head].item() == pytest.approx(
        sum(a[i].max().item() for i in range(size)) / size, abs=1e-6
    )
    for share in (stats.first_token, stats.self_token, stats.punctuation_or_sep):
        assert share.min() >= 0.0 and share.max() <= 1.0 + 1e-6
    assert len(stats.rows()) == any_model.n_layers * any_model.n_heads


def test_smollm2_is_full_of_attention_sinks(smollm2):
    """Xiao et al. 2023: in Llama-family models most heads put most of their attention on the
    first token, some nearly all of it."""
    stats = HeadStats.from_analysis(analyze(smollm2, TEXT))
    labels = [label for row in stats.patterns for label in row]
    assert labels.count("first-token sink") > len(labels) / 2
    assert stats.first_token[2:10].median() > 0.5
    assert stats.first_token.max() > 0.99
    assert stats.next_token.abs().max() == 0.0  # causal: nothing after the query
    assert stats.sep.abs().max() == 0.0  # no special tokens in the text


def test_minilm_has_a_previous_token_head_and_cls_sinks(minilm):
    stats = HeadStats.from_analysis(analyze(minilm, TEXT))
    assert stats.patterns[0][2] == "previous-token"
    assert stats.previous_token[0, 2] > 0.99
    assert torch.allclose(stats.cls, stats.first_token)  # token 0 is [CLS]
    assert sum(row.count("first-token sink") for row in stats.patterns[1:5]) >= 24


# --- effective attention -------------------------------------------------------------------------


def test_norm_vectors_rebuild_the_attention_output(any_model):
    """sum_j a_ij f_h(x_j) equals the head's slice of the real o_proj / output.dense input times
    its block of W_O, in every layer and head (bias excluded)."""
    capture = capture_attention(any_model, tokenize(any_model, SHORT).inputs)
    for layer in range(any_model.n_layers):
        f = transformed_values(
            capture.values[layer],
            capture.w_o[layer],
            n_heads=any_model.n_heads,
            n_kv_heads=any_model.n_kv_heads,
        )  # (H, T, hidden)
        mixed = torch.einsum("hij,hje->hie", capture.attentions[layer], f)
        head_dim = capture.w_o[layer].shape[0] // any_model.n_heads
        per_head = capture.head_outputs[layer].unflatten(-1, (any_model.n_heads, head_dim))
        w = capture.w_o[layer].unflatten(0, (any_model.n_heads, head_dim))
        expected = torch.einsum("thd,hde->hte", per_head, w)  # (H, T, hidden)
        assert torch.allclose(mixed, expected, atol=1e-4), layer


def test_smollm2_gqa_order_is_checked_by_the_identity(smollm2):
    """Query head h reads KV head h // 3; the other plausible order (h % 3) breaks the identity,
    so the identity test above really checks the grouping."""
    capture = capture_attention(smollm2, tokenize(smollm2, SHORT).inputs)
    values, w_o = capture.values[3], capture.w_o[3]
    seq_len = values.shape[0]
    wrong = values.reshape(seq_len, 3, 64)[:, [h % 3 for h in range(9)]].reshape(seq_len, -1)
    f_wrong = transformed_values(wrong, w_o, n_heads=9, n_kv_heads=9)
    f_right = transformed_values(values, w_o, n_heads=9, n_kv_heads=3)
    expected = capture.head_outputs[3] @ w_o
    right = torch.einsum("hij,hje->ie", capture.attentions[3], f_right)
    bad = torch.einsum("hij,hje->ie", capture.attentions[3], f_wrong)
    assert torch.allclose(right, expected, atol=1e-4)
    assert (bad - expected).abs().max() > 1e-2


def test_norm_based_and_rollout(any_model):
    result = norm_based_attention(any_model, analyze(any_model, SHORT))
    raw = analyze(any_model, SHORT).attentions
    assert torch.allclose(result.attentions, raw, atol=1e-6)
    assert torch.allclose(result.norms, raw * result.value_norms[:, :, None, :])
    assert (result.value_norms > 0).all()
    rolled = rollout(raw)
    size = raw.shape[-1]
    assert rolled.shape == (any_model.n_layers, size, size)
    assert torch.allclose(rolled.sum(-1), torch.ones(any_model.n_layers, size), atol=1e-4)
    if any_model.causal:  # rollout of causal attention stays causal
        assert rolled.triu(diagonal=1).abs().max() == 0.0


# --- ablation ------------------------------------------------------------------------------------


def _output(loaded, text):
    tokenized = tokenize(loaded, text)
    inputs = tokenized.inputs
    with torch.inference_mode():
        if loaded.kind == "decoder":
            return loaded.model(**inputs, use_cache=False, logits_to_keep=1).logits[0, -1]
        return loaded.model(**inputs).last_hidden_state[0]


def test_ablating_a_whole_layer_equals_zeroing_its_attention_output(any_model):
    """All heads of layer 1 ablated == the output projection returning only its bias (MiniLM's
    output.dense) or 0 (SmolLM2's o_proj has no bias)."""
    output = projections(any_model)[1].output
    bias = output.bias
    assert (bias is None) == (any_model.name == "smollm2")

    def only_bias(module, args, out):
        return torch.zeros_like(out) if bias is None else torch.zeros_like(out) + bias

    with HookSet() as hooks:
        hooks.forward(output, only_bias)
        reference = _output(any_model, SHORT)
    with ablate_heads(any_model, [(1, h) for h in range(any_model.n_heads)]):
        ablated = _output(any_model, SHORT)
    assert torch.allclose(ablated, reference, atol=1e-5)
    assert not torch.allclose(ablated, _output(any_model, SHORT), atol=1e-3)


def test_ablating_no_heads_changes_nothing(any_model):
    effect = ablation_effect(any_model, analyze(any_model, SHORT), [])
    assert effect.importance == 0.0 or effect.importance == pytest.approx(0.0, abs=1e-12)
    if any_model.kind == "decoder":
        assert effect.kl_divergence == 0.0 and effect.top_before == effect.top_after
    else:
        assert effect.cosine_similarity == pytest.approx(1.0, abs=1e-9)


def test_smollm2_ablation_changes_the_prediction(smollm2):
    text = "The capital of France is"
    heads = [(layer, head) for layer in range(2, 6) for head in range(9)]
    effect = ablation_effect(smollm2, analyze(smollm2, text), heads)
    assert effect.top_before[0].token == "Paris" and effect.top_before[0].prob > 0.5
    assert effect.kl_divergence > 0.05
    assert effect.top_after[0].prob != effect.top_before[0].prob


def test_rank_heads_on_a_few_heads(any_model):
    """One batch of three heads of the last layer, then stopped; each value equals a single
    ablation of that head."""
    count: list[int] = []
    ranking = rank_heads(
        any_model,
        analyze(any_model, SHORT),
        layers=[any_model.n_layers - 1],
        progress=lambda done, total: count.append(done),
        should_stop=lambda: bool(count),
        batch_size=3,
    )
    assert not ranking.completed and ranking.n_done == 3 and count == [3]
    last = any_model.n_layers - 1
    for head in range(3):
        single = ablation_effect(any_model, analyze(any_model, SHORT), [(last, head)]).importance
        assert ranking.importance[last, head].item() == pytest.approx(single, rel=1e-3, abs=1e-6)
    assert ranking.importance[last, :3].min() > 0.0
    assert torch.isnan(ranking.importance[:last]).all()
    assert torch.isnan(ranking.importance[last, 3:]).all()


def test_hooks_are_removed_after_a_failing_pass(any_model, monkeypatch):
    _output(any_model, SHORT)
    before = count_hooks(any_model.model)
    last_block_output = projections(any_model)[-1].output

    def broken(*args, **kwargs):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(last_block_output, "forward", broken)
    with pytest.raises(RuntimeError, match="deliberately"):
        ablation_effect(any_model, analyze(any_model, SHORT), [(0, 0)])
    with pytest.raises(RuntimeError, match="deliberately"):
        norm_based_attention(any_model, analyze(any_model, SHORT))
    assert count_hooks(any_model.model) == before


# --- predictions ---------------------------------------------------------------------------------


def test_smollm2_predicts_paris_and_the_lens_agrees(smollm2):
    text = "The capital of France is"
    predictions = predict(smollm2, analyze(smollm2, text), top_k=5).next_tokens
    last = predictions.at(len(predictions.tokens) - 1)
    assert last[0].token == "Paris" and last[0].prob > 0.5
    assert [g.prob for g in last] == sorted((g.prob for g in last), reverse=True)
    lens = predict(smollm2, analyze(smollm2, text)).lens
    assert lens.top_ids.shape == (31, len(predictions.tokens))
    assert torch.equal(lens.top_ids[-1], predictions.top_ids[:, 0])
    assert torch.allclose(lens.top_probs[-1], predictions.top_probs[:, 0], atol=1e-5)
    assert lens.top_tokens[-1][-1] == "Paris"
    france = predictions.tokens.index("France")
    (guess,) = [g for g in predictions.at(france - 1) if g.token == "France"]  # in the top 5
    assert predictions.next_token_prob[france - 1].item() == pytest.approx(guess.prob, abs=1e-6)


def test_minilm_has_no_predictions(minilm):
    with pytest.raises(InputError, match="decoder"):
        predict(minilm, analyze(minilm, SHORT)).next_tokens


# --- comparison ----------------------------------------------------------------------------------


def test_compare_two_texts(any_model):
    a = analyze(any_model, "The cat sat on the mat.")
    b = analyze(any_model, "The dog sat on the mat.")
    result = compare(a, b)
    assert not result.identical and result.n_aligned == a.seq_len - 1
    assert "cat" not in result.tokens and "sat" in result.tokens
    cat = a.tokens.index("cat")
    assert cat not in result.positions_a
    x, y = result.positions_a.index(cat + 1), result.positions_b.index(cat + 1)
    assert x == y  # same length, one token swapped
    expected = b.attentions[:, :, cat + 1, 0] - a.attentions[:, :, cat + 1, 0]
    assert torch.allclose(result.difference[:, :, x, 0], expected)
    changes = [abs(c.change) for c in result.changes]
    assert changes == sorted(changes, reverse=True) and changes[0] > 0


def test_compare_a_text_with_itself_and_models_of_different_shapes(minilm, smollm2):
    a = analyze(minilm, SHORT)
    same = compare(a, analyze(minilm, SHORT))
    assert same.identical and same.mean_abs_difference.abs().max() < 1e-6
    with pytest.raises(InputError, match="6 layers x 12 heads.*30 layers x 9 heads"):
        compare(a, analyze(smollm2, SHORT))
