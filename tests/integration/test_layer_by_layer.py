"""The layer-by-layer path gives the statistics of the all-layers path, holding far less."""

from __future__ import annotations

import pytest
import torch

from core import analyze
from core.engine.analysis import LayerNotHeldError
from core.engine.hooks import attention_modules
from core.engine.run import with_layers
from core.engine.streaming import capture_attention

TEXT = "Statistics layer by layer must equal the statistics of every layer at once, 日本語も."
STATS = (
    "head_entropy",
    "normalized_head_entropy",
    "layer_entropy",
    "received_by_head",
    "head_entropy_choice",
    "normalized_head_entropy_choice",
    "layer_entropy_choice",
)


def test_both_paths_give_the_same_statistics(any_model):
    streamed = analyze(any_model, TEXT, method="layers")
    at_once = analyze(any_model, TEXT, method="all")
    for name in STATS:
        assert torch.allclose(getattr(streamed, name), getattr(at_once, name), atol=1e-6), name
    assert torch.allclose(streamed.received_by_layer, at_once.received_by_layer, atol=1e-6)
    assert torch.allclose(streamed.thumbnails, at_once.thumbnails, atol=1e-6)
    assert torch.allclose(streamed.attentions, at_once.attentions, atol=1e-6)
    assert streamed.to_dict(3)["tokens"] == at_once.to_dict(3)["tokens"]


def test_long_input_holds_only_what_was_asked(smollm2):
    full = analyze(smollm2, TEXT, method="all")
    lean = analyze(smollm2, TEXT, keep_layers=[4, 17])
    assert lean.held_layers == (4, 17)
    assert torch.allclose(lean.layer(17), full.layer(17), atol=1e-6)
    with pytest.raises(LayerNotHeldError, match="with_layers"):
        lean.layer(3)
    for name in STATS:
        assert torch.allclose(getattr(lean, name), getattr(full, name), atol=1e-6), name
    auto = analyze(smollm2, TEXT, keep_bytes=1)  # nothing fits: statistics only
    assert auto.held_layers == ()


def test_recomputing_a_layer_on_demand(any_model):
    full = analyze(any_model, "Recompute me later, please.", pair=None, method="all")
    lean = analyze(any_model, "Recompute me later, please.", keep_layers="none")
    again = with_layers(any_model, lean, [2, 0])
    assert again.held_layers == (0, 2)
    assert lean.held_layers == ()  # the original is untouched
    assert torch.allclose(again.layer(2), full.layer(2), atol=1e-6)
    assert torch.allclose(again.layer(0), full.layer(0), atol=1e-6)
    assert with_layers(any_model, again, [2]) is again  # nothing missing, nothing recomputed


def test_recompute_keeps_the_sentence_pair_segments(minilm):
    full = analyze(minilm, "The cat sat.", "A dog slept.", method="all")
    lean = analyze(minilm, "The cat sat.", "A dog slept.", keep_layers="none")
    assert lean.token_type_ids is not None and 1 in lean.token_type_ids
    assert torch.allclose(with_layers(minilm, lean, [5]).layer(5), full.layer(5), atol=1e-6)


def test_every_layer_has_one_attention_module(any_model):
    modules, index = attention_modules(any_model.model)
    assert len(modules) == any_model.n_layers and index == 1


def test_recompute_stops_after_the_last_wanted_layer(smollm2):
    seen = []
    inputs = {"input_ids": torch.tensor([[1, 2, 3, 4]])}
    with (
        torch.inference_mode(),
        capture_attention(smollm2.model, lambda layer, w: seen.append(layer), stop_after=2),
    ):
        smollm2.model.base_model(**inputs, use_cache=False)
    assert seen == [0, 1, 2]


def test_hooks_are_removed_even_when_the_pass_fails(minilm):
    modules, _ = attention_modules(minilm.model)
    before = [len(m._forward_hooks) for m in modules]

    def explode(layer, weights):
        raise RuntimeError("boom")

    with (
        pytest.raises(RuntimeError, match="boom"),
        torch.inference_mode(),
        capture_attention(minilm.model, explode),
    ):
        minilm.model(input_ids=torch.tensor([[101, 2000, 102]]))
    assert [len(m._forward_hooks) for m in modules] == before


def test_rollout_layer_by_layer_equals_rollout_of_all_layers(any_model):
    from core.methods.effective import effective_analysis, rollout, rollout_layer_by_layer

    full = analyze(any_model, TEXT, method="all")
    streamed = rollout_layer_by_layer(any_model, full.model_inputs())
    assert torch.allclose(streamed, rollout(full.attentions), atol=1e-5)
    lean = analyze(any_model, TEXT, keep_layers="none")
    shown = effective_analysis(any_model, lean, "rollout")
    assert shown.n_heads == 1 and shown.held_layers == tuple(range(full.n_layers))
    assert torch.allclose(shown.layer(3)[0], streamed[3], atol=1e-6)
    sums = shown.attentions.sum(-1)
    assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)


def test_norm_based_view_rows_are_shares_of_the_norms(minilm):
    from core.methods.effective import effective_analysis, norm_based_attention

    result = analyze(minilm, TEXT)
    shown = effective_analysis(minilm, result, "norm")
    norms = norm_based_attention(minilm, analyze(minilm, TEXT)).norms
    assert torch.allclose(shown.attentions, norms / norms.sum(-1, keepdim=True), atol=1e-6)
    assert effective_analysis(minilm, result, "raw") is result


def test_effective_views_of_exact_token_ids_keep_those_tokens(smollm2):
    """An analysis of token ids (a generation) whose decoded text tokenizes otherwise ("he" +
    "llo" decodes to "hello", one token): the norm-based view reads the ids, not the text."""
    from core.engine.run import analyze_ids
    from core.methods.effective import effective_analysis

    tokenizer = smollm2.tokenizer
    ids = tokenizer.encode("The he") + tokenizer.encode("llo world")
    assert len(tokenizer.encode(tokenizer.decode(ids))) < len(ids)
    result = analyze_ids(smollm2, ids)
    for mode in ("rollout", "norm"):
        shown = effective_analysis(smollm2, result, mode)
        assert shown.seq_len == len(ids) and shown.tokens == result.tokens
        sums = shown.attentions.sum(-1)
        assert torch.allclose(sums, torch.ones_like(sums), atol=1e-4)


def test_words_and_head_statistics_of_a_long_input_equal_the_held_ones(smollm2):
    from core.methods.head_stats import HeadStats
    from core.methods.words import word_analysis

    held = analyze(smollm2, TEXT)
    lean = analyze(smollm2, TEXT, keep_layers="none")
    assert lean.held_layers == ()
    words_held = word_analysis(smollm2, held)
    words_lean = word_analysis(smollm2, lean)
    assert words_lean.tokens == words_held.tokens
    assert torch.allclose(words_lean.attentions, words_held.attentions, atol=1e-6)
    stats_held = HeadStats.from_analysis(held)
    stats_lean = HeadStats.from_analysis(lean, smollm2)
    assert torch.allclose(stats_lean.mean_distance, stats_held.mean_distance, atol=1e-5)
    assert torch.allclose(stats_lean.previous_token, stats_held.previous_token, atol=1e-6)
    assert stats_lean.patterns == stats_held.patterns


def test_limits_refuse_with_a_message(smollm2):
    from core.methods.effective import effective_analysis
    from core.policy.errors import InputError

    long = analyze(smollm2, "word " * 900, max_tokens=800, keep_layers="none")
    with pytest.raises(InputError, match="Norm-based attention holds every layer"):
        effective_analysis(smollm2, long, "norm")
