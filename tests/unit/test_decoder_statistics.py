"""Statistics over the queries that have a choice, on hand-built causal attention: query 0 of a
decoder sees only itself, so its row is [1] whatever the head does. Every number is worked out by
hand in the comments; the earlier definitions stay under their names with their values."""

from __future__ import annotations

import math

import pytest
import torch

from core.engine import stats
from core.engine.analysis import Analysis
from core.engine.streaming import layer_statistics
from core.methods.head_metrics import (
    confidence,
    first_token_share,
    mean_distance,
    previous_share,
    query_positions,
    self_share,
)
from core.methods.head_stats import HeadStats


def causal_uniform(seq_len: int) -> torch.Tensor:
    """Row i spread evenly over keys 0..i: ``(T, T)``."""
    rows = torch.tril(torch.ones(seq_len, seq_len))
    return rows / rows.sum(-1, keepdim=True)


def only_token_zero(seq_len: int) -> torch.Tensor:
    attn = torch.zeros(seq_len, seq_len)
    attn[:, 0] = 1.0
    return attn


def previous_token(seq_len: int) -> torch.Tensor:
    """Row 0 forced onto itself, every other row one token back."""
    attn = torch.zeros(seq_len, seq_len)
    attn[0, 0] = 1.0
    attn[torch.arange(1, seq_len), torch.arange(seq_len - 1)] = 1.0
    return attn


CHOICE = query_positions("choice", 7, causal=True)


def test_choice_queries_in_decoders_encoders_and_one_token_texts():
    assert stats.choice_queries(4, causal=True).tolist() == [False, True, True, True]
    assert stats.choice_queries(4, causal=False).tolist() == [True] * 4
    assert stats.choice_queries(1, causal=True).tolist() == [True]  # none has one: all count
    assert query_positions("all", 4, causal=True) is None
    with pytest.raises(ValueError, match="queries"):
        query_positions("some", 4, causal=True)


@pytest.mark.parametrize("seq_len", [2, 3, 7, 40])
def test_uniform_causal_head_has_normalised_entropy_exactly_one(seq_len):
    out = layer_statistics(causal_uniform(seq_len).expand(1, seq_len, seq_len), causal=True)
    assert out["normalized_head_entropy_choice"].item() == pytest.approx(1.0, abs=1e-6)
    # The earlier definition counts row 0 as 0 among T rows: (T - 1) / T.
    assert out["normalized_head_entropy"].item() == pytest.approx((seq_len - 1) / seq_len, abs=1e-6)


def test_entropies_over_queries_with_a_choice_by_hand():
    # T = 3: row entropies 0, ln 2, ln 3. All queries: (ln 2 + ln 3) / 3; with a choice: / 2.
    out = layer_statistics(causal_uniform(3).expand(1, 3, 3), causal=True)
    assert out["head_entropy"].item() == pytest.approx((math.log(2) + math.log(3)) / 3, abs=1e-6)
    assert out["head_entropy_choice"].item() == pytest.approx(
        (math.log(2) + math.log(3)) / 2, abs=1e-6
    )
    # One head: the layer average is the head, so the layer entropies are the head entropies.
    assert out["layer_entropy_choice"].item() == pytest.approx(out["head_entropy_choice"].item())


def test_head_on_token_zero_has_first_token_share_exactly_one_and_self_share_zero():
    attn = only_token_zero(7)
    assert first_token_share(attn, CHOICE).item() == 1.0
    assert self_share(attn, CHOICE).item() == 0.0
    assert self_share(attn).item() == pytest.approx(1 / 7)  # query 0's a[0, 0] = 1 among 7
    assert confidence(attn, CHOICE).item() == 1.0


def test_self_head_has_no_first_token_share_over_queries_with_a_choice():
    attn = torch.eye(7)
    assert first_token_share(attn).item() == pytest.approx(1 / 7)  # the 1/T inflation
    assert first_token_share(attn, CHOICE).item() == 0.0
    assert self_share(attn, CHOICE).item() == 1.0


def test_previous_token_head_shares_share_one_denominator():
    attn = previous_token(7)
    # All queries: self 1/7 (row 0), first (1 + 1) / 7 (rows 0 and 1), previous 6/6.
    assert self_share(attn).item() == pytest.approx(1 / 7)
    assert first_token_share(attn).item() == pytest.approx(2 / 7)
    assert previous_share(attn).item() == 1.0
    # Queries 1..6: self 0, first 1/6 (row 1's previous token is token 0), previous 1.
    assert self_share(attn, CHOICE).item() == 0.0
    assert first_token_share(attn, CHOICE).item() == pytest.approx(1 / 6)
    assert previous_share(attn, CHOICE).item() == 1.0
    # Distance: row 0 is 0, every other row 1: 6/7 over all, 1 over queries with a choice.
    assert mean_distance(attn).item() == pytest.approx(6 / 7)
    assert mean_distance(attn, CHOICE).item() == 1.0


def test_the_label_rule_compares_like_with_like():
    # T = 3. Row 0 is forced; rows 1 and 2 put 0.4 on token 0 and the rest elsewhere.
    attn = torch.tensor([[1.0, 0.0, 0.0], [0.4, 0.6, 0.0], [0.4, 0.3, 0.3]]).reshape(1, 1, 3, 3)
    plain = HeadStats.from_attentions(attn, "abc", causal=True)
    choice = HeadStats.from_attentions(attn, "abc", causal=True, queries="choice")
    # All queries: first (1 + .4 + .4) / 3 = 0.6 and self (1 + .6 + .3) / 3 = 0.6333, both
    # pushed over 0.5 by query 0; the larger wins.
    assert plain.first_token.item() == pytest.approx(0.6)
    assert plain.self_token.item() == pytest.approx(1.9 / 3)
    assert plain.patterns == (("self",),)
    # Queries 1 and 2: first 0.4, self (0.6 + 0.3) / 2 = 0.45: no share pattern. Normalised
    # entropy (H(.4, .6) / ln 2 + H(.4, .3, .3) / ln 3) / 2 = (0.9710 + 0.9911) / 2 >= 0.75.
    assert choice.first_token.item() == pytest.approx(0.4)
    assert choice.self_token.item() == pytest.approx(0.45)
    h2 = -(0.4 * math.log(0.4) + 0.6 * math.log(0.6)) / math.log(2)
    h3 = -(0.4 * math.log(0.4) + 2 * 0.3 * math.log(0.3)) / math.log(3)
    assert choice.normalized_entropy.item() == pytest.approx((h2 + h3) / 2, abs=1e-6)
    assert choice.patterns == (("broad",),) and choice.queries == "choice"
    assert plain.queries == "all"


def test_encoders_give_the_same_values_over_both_query_sets():
    generator = torch.Generator().manual_seed(3)
    attn = torch.softmax(torch.randn(2, 3, 6, 6, generator=generator), dim=-1)
    tokens = ["[CLS]", "a", ",", "b", ".", "[SEP]"]
    special = [True, False, False, False, False, True]
    plain = HeadStats.from_attentions(attn, tokens, causal=False, special=special)
    choice = HeadStats.from_attentions(
        attn, tokens, causal=False, special=special, queries="choice"
    )
    for name, value in plain.metrics().items():
        assert torch.allclose(value, choice.metric(name), atol=1e-6), name
    out = layer_statistics(attn, causal=False)
    assert torch.allclose(out["normalized_head_entropy"], out["normalized_head_entropy_choice"])


def test_long_path_head_stats_honour_the_query_set():
    """HeadStats.from_analysis over "choice" equals from_attentions over "choice"."""
    attn = torch.stack([previous_token(5), causal_uniform(5)]).unsqueeze(0)  # (1, 2, 5, 5)
    analysis = Analysis.from_attentions(attn, list("abcde"), kind="decoder")
    got = HeadStats.from_analysis(analysis, queries="choice")
    want = HeadStats.from_attentions(attn, list("abcde"), causal=True, queries="choice")
    assert torch.equal(got.first_token, want.first_token) and got.queries == "choice"


# --- most attended --------------------------------------------------------------------------------


def test_visibility_normalised_received_attention_by_hand():
    # Uniform causal attention over 4 tokens. Key j is seen by 4 - j queries:
    # key 0: (1 + 1/2 + 1/3 + 1/4) / 4 = 25/48; key 1: (1/2 + 1/3 + 1/4) / 3 = 13/36;
    # key 2: (1/3 + 1/4) / 2 = 7/24; key 3: 1/4.
    received = stats.received_attention(causal_uniform(4))
    visible = stats.visibility_normalized(received, causal=True)
    assert visible.tolist() == pytest.approx([25 / 48, 13 / 36, 7 / 24, 1 / 4])
    assert stats.visible_queries(4, causal=True).tolist() == [4, 3, 2, 1]
    # The plain shares are capped by (T - j) / T; in an encoder nothing changes.
    assert received.tolist() == pytest.approx([25 / 48, 13 / 48, 7 / 48, 1 / 16])
    assert torch.equal(stats.visibility_normalized(received, causal=False), received)


def test_visible_ranking_shows_the_sink_apart_and_ranks_content_per_visible_query():
    # Every query i >= 1 puts 0.5 on token 0 and 0.5 on token 2 once it can see it.
    attn = torch.tensor(
        [
            [1.0, 0.0, 0.0, 0.0],
            [0.5, 0.5, 0.0, 0.0],
            [0.5, 0.0, 0.5, 0.0],
            [0.5, 0.0, 0.5, 0.0],
        ]
    ).reshape(1, 1, 4, 4)
    result = Analysis.from_attentions(attn, ["s", "a", "b", "c"], kind="decoder")
    plain = result.most_attended(2)
    # Plain: key 0 (1 + .5 + .5 + .5) / 4 = 0.625; key 2 (.5 + .5) / 4 = 0.25; key 1 0.125.
    assert [(r.position, r.share) for r in plain] == [(0, 0.625), (2, 0.25)]
    visible = result.most_attended(2, ranking="visible")
    # Sink apart: 0.625 over 4 queries. Key 2: 1 / 2 queries = 0.5; key 1: 0.5 / 3 = 0.1667.
    assert [(r.rank, r.position, r.sink, r.seen_by) for r in visible] == [
        (0, 0, True, 4),
        (1, 2, False, 2),
        (2, 1, False, 3),
    ]
    assert [r.share for r in visible] == pytest.approx([0.625, 0.5, 0.5 / 3])
    assert [r.head for r in result.most_attended(1, per_head=True, ranking="visible")] == [0, 0]
    with pytest.raises(ValueError, match="ranking"):
        result.most_attended(2, ranking="by mood")


def test_json_keeps_old_keys_and_adds_new_ones():
    attn = causal_uniform(3).reshape(1, 1, 3, 3)
    data = Analysis.from_attentions(attn, ["a", "b", "c"], kind="decoder").to_dict(top_k=2)
    assert data["normalized_head_entropy"][0] == pytest.approx([2 / 3])
    assert data["normalized_head_entropy_choice"][0] == pytest.approx([1.0])
    assert data["head_entropy_choice"][0] == pytest.approx([(math.log(2) + math.log(3)) / 2])
    assert len(data["layer_entropy_choice"]) == 1
    assert [r["position"] for r in data["most_attended"][0]] == [0, 1]
    visible = data["most_attended_visible"][0]
    assert visible["sink"] == {"position": 0, "token": "a", "share": pytest.approx(11 / 18)}
    assert [(r["position"], r["seen_by"]) for r in visible["top"]] == [(1, 2), (2, 1)]


# --- scripts written against earlier versions keep working ----------------------------------------


def test_earlier_names_import_and_keep_their_definitions():
    from core.methods.ablation import ablate_heads, ablation_effect, rank_heads  # noqa: F401
    from core.methods.effective import (  # noqa: F401
        AttentionCapture,
        NormAttention,
        capture_attention,
        layer_norm_attention,
        norm_based_attention,
        rollout,
        rollout_layer_by_layer,
        transformed_values,
    )
    from core.methods.head_stats import confidence, key_share, next_share  # noqa: F401

    attn = only_token_zero(4)  # a decoder head on token 0: its self share over all queries is 1/4
    assert self_share(attn).item() == pytest.approx(0.25)
    assert confidence(attn).item() == 1.0
    assert HeadStats.from_attentions(attn.reshape(1, 1, 4, 4), "abcd", causal=True).queries == "all"
    result = Analysis.from_attentions(
        causal_uniform(4).reshape(1, 1, 4, 4), list("abcd"), kind="decoder"
    )
    keys = set(result.to_dict())
    earlier = {
        "model",
        "kind",
        "text",
        "pair",
        "tokens",
        "raw_tokens",
        "n_layers",
        "n_heads",
        "seq_len",
        "truncated",
        "n_input_tokens",
        "head_entropy",
        "normalized_head_entropy",
        "layer_entropy",
        "mean_head_entropy",
        "most_attended",
    }
    assert earlier <= keys
    assert keys - earlier == {
        "head_entropy_choice",
        "normalized_head_entropy_choice",
        "layer_entropy_choice",
        "most_attended_visible",
    }
    assert [(r.rank, r.position) for r in result.most_attended(2)] == [(1, 0), (2, 1)]
