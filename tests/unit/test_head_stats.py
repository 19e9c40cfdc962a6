"""Head statistics and pattern labels on hand-built attention, checked against hand arithmetic."""

from __future__ import annotations

import math
from typing import get_args

import pytest
import torch

from core.engine.analysis import Analysis
from core.methods import head_stats as hs
from core.methods.head_stats import HEAD_METRICS, PATTERN_THRESHOLDS, HeadStats


def one_hot_rows(targets: list[int], seq_len: int | None = None) -> torch.Tensor:
    """Row i puts all its attention on key targets[i]."""
    size = seq_len or len(targets)
    return torch.nn.functional.one_hot(torch.tensor(targets), size).float()  # (T, T)


def causal_uniform(seq_len: int) -> torch.Tensor:
    return torch.tril(torch.ones(seq_len, seq_len)) / torch.arange(1, seq_len + 1).unsqueeze(1)


def test_previous_token_head_has_distance_one_and_its_label():
    # Encoder head: row 0 looks at key 1 (it has no previous token), every other row at i - 1.
    attn = one_hot_rows([1, 0, 1, 2, 3]).reshape(1, 1, 5, 5)
    stats = HeadStats.from_attentions(attn, list("abcde"), causal=False)
    assert stats.mean_distance.item() == 1.0
    assert stats.previous_token.item() == 1.0
    assert stats.next_token.item() == pytest.approx(1 / 4)  # only row 0 looks forward
    assert stats.self_token.item() == 0.0
    assert stats.confidence.item() == 1.0
    assert stats.patterns == (("previous-token",),)


def test_decoder_previous_token_head():
    # Causal: row 0 can only see itself, then every row looks one back.
    attn = one_hot_rows([0, 0, 1, 2]).reshape(1, 1, 4, 4)
    stats = HeadStats.from_attentions(attn, list("abcd"), causal=True)
    assert stats.mean_distance.item() == pytest.approx(3 / 4)  # distances 0, 1, 1, 1
    assert stats.previous_token.item() == 1.0
    assert stats.self_token.item() == pytest.approx(1 / 4)
    assert stats.first_token.item() == pytest.approx(2 / 4)  # rows 0 and 1
    assert stats.patterns == (("previous-token",),)


def test_next_self_and_sink_heads():
    nxt = one_hot_rows([1, 2, 3, 2])  # last row has no next token: looks back one
    own = torch.eye(4)
    sink = one_hot_rows([0, 0, 0, 0])
    attn = torch.stack([nxt, own, sink]).unsqueeze(0)  # (1, 3, 4, 4)
    stats = HeadStats.from_attentions(attn, list("abcd"), causal=False)
    assert stats.next_token.tolist() == [[1.0, 0.0, 0.0]]
    assert stats.self_token.tolist() == [[0.0, 1.0, 0.25]]
    assert stats.first_token.tolist() == [[0.0, 0.25, 1.0]]  # self: row 0 is on token 0
    assert stats.mean_distance.tolist() == [[1.0, 0.0, 1.5]]  # sink: (0 + 1 + 2 + 3) / 4
    assert stats.patterns == (("next-token", "self", "first-token sink"),)


def test_uniform_encoder_head_is_broad_with_hand_computed_values():
    attn = torch.full((1, 1, 4, 4), 0.25)
    stats = HeadStats.from_attentions(attn, list("abcd"), causal=False)
    assert stats.confidence.item() == 0.25
    # sum_j |i - j| / 4 for i = 0..3: 6/4, 4/4, 4/4, 6/4 -> mean 1.25
    assert stats.mean_distance.item() == pytest.approx(1.25)
    assert stats.entropy.item() == pytest.approx(math.log(4))
    assert stats.normalized_entropy.item() == pytest.approx(1.0)
    assert stats.previous_token.item() == stats.next_token.item() == pytest.approx(0.25)
    assert stats.patterns == (("broad",),)


def test_causal_uniform_head_is_broad():
    seq_len = 8
    attn = causal_uniform(seq_len).reshape(1, 1, seq_len, seq_len)
    stats = HeadStats.from_attentions(attn, list("abcdefgh"), causal=True)
    assert stats.normalized_entropy.item() == pytest.approx(7 / 8)  # row 0 counts 0, others 1
    # row i is uniform over 0..i: mean distance i / 2, first-token share 1 / (i + 1)
    assert stats.mean_distance.item() == pytest.approx(sum(i / 2 for i in range(8)) / 8)
    assert stats.first_token.item() == pytest.approx(sum(1 / (i + 1) for i in range(8)) / 8)
    assert stats.patterns == (("broad",),)


def test_short_causal_uniform_head_is_a_sink():
    # With 4 tokens the first one gets (1 + 1/2 + 1/3 + 1/4) / 4 = 0.52 >= 0.5 of the attention.
    stats = HeadStats.from_attentions(
        causal_uniform(4).reshape(1, 1, 4, 4), list("abcd"), causal=True
    )
    assert stats.first_token.item() == pytest.approx(25 / 48)
    assert stats.patterns == (("first-token sink",),)


def test_local_and_mixed_heads():
    seq_len = 12
    # Each row spread 1/3, 1/3, 1/3 over i - 1, i, i + 1 (two at the edges): local, not broad.
    band = torch.zeros(seq_len, seq_len)
    for i in range(seq_len):
        keys = [j for j in (i - 1, i, i + 1) if 0 <= j < seq_len]
        band[i, keys] = 1 / len(keys)
    # Each row split between the keys 5 and 7 positions further on (wrapping round): mixed.
    far = torch.zeros(seq_len, seq_len)
    for i in range(seq_len):
        far[i, (i + 5) % seq_len] = 0.5
        far[i, (i + 7) % seq_len] = 0.5
    attn = torch.stack([band, far]).unsqueeze(0)
    stats = HeadStats.from_attentions(attn, [str(i) for i in range(seq_len)], causal=False)
    assert stats.mean_distance[0, 0].item() == pytest.approx((2 * 0.5 + 10 * 2 / 3) / 12)
    assert stats.normalized_entropy[0, 0].item() < 0.75
    assert stats.patterns == (("positional-local", "mixed"),)


def test_cls_sep_and_punctuation_shares():
    tokens = ["[CLS]", "Hi", ",", "there", ".", "[SEP]"]
    special = [True, False, False, False, False, True]
    # Row by row: [CLS], [SEP], ",", half "." half "there", [SEP], [SEP]
    attn = torch.zeros(6, 6)
    attn[0, 0] = 1.0
    attn[1, 5] = 1.0
    attn[2, 2] = 1.0
    attn[3, 4] = attn[3, 3] = 0.5
    attn[4, 5] = 1.0
    attn[5, 5] = 1.0
    stats = HeadStats.from_attentions(
        attn.reshape(1, 1, 6, 6), tokens, causal=False, special=special
    )
    assert stats.cls.item() == pytest.approx(1 / 6)
    assert stats.first_token.item() == pytest.approx(1 / 6)
    assert stats.sep.item() == pytest.approx(3 / 6)
    assert stats.punctuation.item() == pytest.approx(1.5 / 6)
    assert stats.punctuation_or_sep.item() == pytest.approx(4.5 / 6)
    assert stats.patterns == (("punctuation/separator",),)


def test_cls_is_zero_when_the_first_token_is_not_special():
    attn = one_hot_rows([0, 0, 0]).reshape(1, 1, 3, 3)
    stats = HeadStats.from_attentions(attn, ["a", "b", "c"], causal=True)
    assert stats.first_token.item() == 1.0
    assert stats.cls.item() == 0.0 and stats.sep.item() == 0.0


def test_punctuation_positions():
    tokens = ["Hello", ",", "world", "!", "…", "。", "、(1/2)", "(1/2)", "a.b", "␣", "[SEP]", "--"]
    special = [False] * 10 + [True, False]
    # "(1/2)" alone is not a fragment suffix on a character: its digits are not punctuation.
    expected = [False, True, False, True, True, True, True, False, False, False, False, True]
    assert hs.punctuation_positions(tokens, special).tolist() == expected


def test_ties_go_to_the_earlier_pattern_and_the_largest_share_wins():
    # First row of the share patterns: sink 0.6 vs previous 0.7 -> previous; sink 0.5 = self 0.5
    # -> sink (listed first).
    metrics = {
        "first_token": torch.tensor([[0.6, 0.5]]),
        "previous_token": torch.tensor([[0.7, 0.0]]),
        "next_token": torch.zeros(1, 2),
        "self_token": torch.tensor([[0.0, 0.5]]),
        "punctuation_or_sep": torch.zeros(1, 2),
        "normalized_entropy": torch.zeros(1, 2),
        "mean_distance": torch.full((1, 2), 9.0),
    }
    assert hs.label_heads(metrics) == (("previous-token", "first-token sink"),)


def test_thresholds_are_the_documented_ones():
    described = {name: rule.describe() for name, rule in PATTERN_THRESHOLDS.items()}
    assert described == {
        "first-token sink": "first_token >= 0.5",
        "previous-token": "previous_token >= 0.5",
        "next-token": "next_token >= 0.5",
        "self": "self_token >= 0.5",
        "punctuation/separator": "punctuation_or_sep >= 0.5",
        "broad": "normalized_entropy >= 0.75",
        "positional-local": "mean_distance <= 1.5",
    }
    assert set(PATTERN_THRESHOLDS) | {"mixed"} == set(get_args(hs.HeadPattern))
    assert set(HEAD_METRICS) == set(get_args(hs.HeadMetric))


def test_functions_are_vectorised_and_leave_the_input_alone():
    attn = torch.softmax(torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(0)), -1)
    copy = attn.clone()
    for function in (hs.confidence, hs.mean_distance, hs.first_token_share, hs.self_share):
        values = function(attn)
        assert values.shape == (3, 4)
        # each (layer, head) computed alone gives the same number
        assert values[2, 1].item() == pytest.approx(function(attn[2, 1]).item(), abs=1e-6)
    assert hs.previous_share(attn)[1, 3].item() == pytest.approx(
        sum(attn[1, 3, i, i - 1].item() for i in range(1, 5)) / 4, abs=1e-6
    )
    assert hs.next_share(attn)[0, 0].item() == pytest.approx(
        sum(attn[0, 0, i, i + 1].item() for i in range(4)) / 4, abs=1e-6
    )
    assert torch.equal(attn, copy)


def test_a_single_token_has_no_neighbours():
    attn = torch.ones(1, 2, 1, 1)
    stats = HeadStats.from_attentions(attn, ["x"], causal=True)
    assert stats.previous_token.tolist() == [[0.0, 0.0]]
    assert stats.next_token.tolist() == [[0.0, 0.0]]
    assert stats.mean_distance.tolist() == [[0.0, 0.0]]
    assert stats.patterns == (("first-token sink", "first-token sink"),)


def test_rows_and_metric_lookup():
    attn = torch.stack([torch.eye(3), one_hot_rows([1, 0, 1])]).unsqueeze(0)  # (1, 2, 3, 3)
    stats = HeadStats.from_attentions(attn, ["a", "b", "c"], causal=False)
    rows = stats.rows()
    assert [(r["layer"], r["head"], r["pattern"]) for r in rows] == [
        (0, 0, "self"),
        (0, 1, "previous-token"),
    ]
    assert rows[1]["mean_distance"] == 1.0 and rows[0]["self_token"] == 1.0
    assert set(rows[0]) == {"layer", "head", "pattern", *HEAD_METRICS}
    assert torch.equal(stats.metric("previous_token"), stats.previous_token)
    assert list(stats.metrics()) == list(HEAD_METRICS)


def test_from_analysis_uses_the_special_flags():
    attn = one_hot_rows([2, 2, 2]).reshape(1, 1, 3, 3)
    analysis = Analysis.from_attentions(
        attn, ["[CLS]", "a", "[SEP]"], kind="encoder", special=[True, False, True]
    )
    stats = HeadStats.from_analysis(analysis)
    assert stats.sep.item() == 1.0 and stats.cls.item() == 0.0
    assert stats.entropy.tolist() == analysis.head_entropy.tolist()
    assert stats.patterns == (("punctuation/separator",),)


def test_wrong_shapes_are_refused():
    with pytest.raises(ValueError, match="T = 2 tokens"):
        HeadStats.from_attentions(torch.ones(1, 1, 3, 3) / 3, ["a", "b"], causal=False)
