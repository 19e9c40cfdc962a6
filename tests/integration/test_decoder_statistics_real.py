"""The decoder-aware statistics on the bundled models: SmolLM2's most-attended ranking, its rollout
collapse on the default text, mean against zero ablation, the statistics over queries with a
choice, and Kobayashi et al. 2021's norms on a post-LN and a pre-LN model."""

from __future__ import annotations

import pytest
import torch

from core import analyze
from core.engine import stats
from core.methods.ablation import ablation_effect
from core.methods.effective import effective_analysis, residual_norm_attention, rollout_collapse
from core.methods.head_stats import HeadStats
from core.policy.examples import load_examples

REPEATED = "The cat sat on the mat. The cat sat on the mat. The cat sat on the mat."
DEFAULT_TEXT = load_examples()[0].text  # the text the app opens with


def test_visible_ranking_no_longer_puts_position_0_first_in_every_layer(smollm2):
    result = analyze(smollm2, REPEATED)
    plain = result.received_by_layer  # (L, T)
    visible = stats.visibility_normalized(plain, causal=True)
    plain_first = int((plain.argmax(-1) == 0).sum())
    visible_first = int((visible.argmax(-1) == 0).sum())
    # Measured: plain 29 of 30 layers, visibility-normalised 26.
    assert visible_first < plain_first and visible_first < result.n_layers
    rows = result.most_attended(3, ranking="visible")
    sinks = [r for r in rows if r.sink]
    assert [r.layer for r in sinks] == list(range(result.n_layers))  # the sink, apart, per layer
    assert all(r.position == 0 and r.rank == 0 for r in sinks)
    content = [r for r in rows if not r.sink]
    assert all(r.position > 0 for r in content) and len(content) == 3 * result.n_layers
    # Without the cap (T - j) / T the content ranking leaves the first tokens: its top-1 positions
    # lie later than those of the plain ranking over the same keys 1..T-1.
    plain_top = plain[:, 1:].argmax(-1) + 1  # (L,)
    visible_top = torch.tensor([r.position for r in content if r.rank == 1])
    assert visible_top.float().mean() > plain_top.float().mean()
    assert [r.seen_by for r in content if r.rank == 1] == [
        result.seq_len - p for p in visible_top.tolist()
    ]


def test_rollout_collapse_fires_on_smollm2s_default_text(smollm2):
    result = analyze(smollm2, DEFAULT_TEXT)
    rolled = effective_analysis(smollm2, result, "rollout")
    found = rollout_collapse(rolled.attentions)
    # Measured: every row i >= 1 traces >= 0.99 to token 0 from layer 13; 0.9999 at the end.
    assert found.collapsed and found.first_layer is not None and found.first_layer <= 20
    assert found.sink_floor[-1].item() >= 0.9999
    assert found.sink_floor[:5].max().item() < 0.99
    without = effective_analysis(smollm2, result, "rollout", exclude_sink=True)
    assert not rollout_collapse(without.attentions).collapsed
    assert torch.allclose(
        without.attentions.sum(-1), torch.ones(result.n_layers, 1, result.seq_len)
    )
    late = effective_analysis(smollm2, result, "rollout", start_layer=20)
    assert not rollout_collapse(late.attentions).collapsed  # 10 layers: 0.987 at the end


def test_minilm_rollout_does_not_collapse(minilm):
    rolled = effective_analysis(minilm, analyze(minilm, DEFAULT_TEXT), "rollout")
    assert not rollout_collapse(rolled.attentions).collapsed


def test_mean_ablation_differs_from_zero_ablation(smollm2):
    result = analyze(smollm2, DEFAULT_TEXT)
    layer_one = [(1, head) for head in range(smollm2.n_heads)]
    zero = ablation_effect(smollm2, result, layer_one)
    mean = ablation_effect(smollm2, result, layer_one, mode="mean")
    # Measured: zero 1.55 nats, mean 0.11: a zeroed layer is far off what the model ever saw.
    assert zero.importance > 5 * mean.importance > 0
    assert len(zero.per_position) == len(mean.per_position) == result.seq_len
    assert zero.per_position[-1] == pytest.approx(zero.kl_divergence, rel=1e-3, abs=1e-6)
    assert max(zero.per_position) > zero.per_position[-1]  # the effect is not only at the end


def test_minilm_per_position_cosines(minilm):
    result = analyze(minilm, DEFAULT_TEXT)
    effect = ablation_effect(minilm, result, [(1, 0), (1, 1)], mode="mean")
    assert effect.position_metric == "cosine" and len(effect.per_position) == result.seq_len
    assert all(0.5 < c < 1.0 for c in effect.per_position)


def test_statistics_over_queries_with_a_choice_on_smollm2(smollm2):
    result = analyze(smollm2, DEFAULT_TEXT)
    seq_len = result.seq_len
    plain = HeadStats.from_analysis(result)
    choice = HeadStats.from_analysis(result, queries="choice")
    # Query 0's forced [1] adds (1 - mean of the others) / T to the first-token share.
    gap = plain.first_token - choice.first_token
    assert torch.allclose(gap, (1 - choice.first_token) / seq_len, atol=1e-5)
    assert torch.allclose(plain.previous_token, choice.previous_token)  # already over i >= 1
    assert (result.normalized_head_entropy_choice >= result.normalized_head_entropy - 1e-6).all()
    assert sum(row.count("first-token sink") for row in choice.patterns) <= sum(
        row.count("first-token sink") for row in plain.patterns
    )


def test_minilm_statistics_are_the_same_over_both_query_sets(minilm):
    result = analyze(minilm, DEFAULT_TEXT)
    assert torch.allclose(result.normalized_head_entropy, result.normalized_head_entropy_choice)
    assert torch.allclose(result.head_entropy, result.head_entropy_choice)


def test_residual_norms_on_a_post_ln_and_a_pre_ln_model(any_model):
    result = analyze(any_model, DEFAULT_TEXT)
    norms = residual_norm_attention(any_model, result)
    assert norms.layer_norm == (any_model.kind == "encoder")  # BERT post-LN, Llama pre-LN
    assert norms.norms.shape == (result.n_layers, result.seq_len, result.seq_len)
    # The residual keeps most of each position (measured: 0.54-0.72 of a row in MiniLM's layers,
    # 0.55-0.92 in SmolLM2's), as Kobayashi et al. 2021 found for BERT.
    share = norms.residual_share.mean(-1)  # (L,)
    assert (share > 0.4).all() and (share < 1.0).all()
    if any_model.kind == "decoder":  # nothing above the diagonal
        assert torch.all(torch.triu(norms.norms, diagonal=1) == 0)
