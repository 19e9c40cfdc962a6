"""Comparing two analyses built from hand-made attention: alignment, differences, stat changes."""

from __future__ import annotations

import math

import pytest
import torch

from core import InputError
from core.engine.analysis import Analysis
from core.methods.compare import align_tokens, compare
from core.methods.head_stats import HeadStats


def make(attn: torch.Tensor, words: list[str], ids: list[int] | None = None) -> Analysis:
    return Analysis.from_attentions(
        attn, words, kind="encoder", token_ids=ids or [hash(w) % 1000 for w in words]
    )


def one_hot_rows(targets: list[int]) -> torch.Tensor:
    return torch.nn.functional.one_hot(torch.tensor(targets), len(targets)).float()


def test_identical_analyses_have_no_difference():
    attn = torch.softmax(torch.randn(2, 3, 4, 4, generator=torch.Generator().manual_seed(0)), -1)
    a = make(attn, ["the", "cat", "sat", "."])
    result = compare(a, make(attn.clone(), ["the", "cat", "sat", "."]))
    assert result.identical and result.n_aligned == 4
    assert result.positions_a == result.positions_b == (0, 1, 2, 3)
    assert torch.equal(result.difference, torch.zeros(2, 3, 4, 4))
    assert torch.equal(result.mean_abs_difference, torch.zeros(2, 3))
    assert all(change.change == 0.0 for change in result.changes)
    assert len(result.changes) == 2 * 3 * 12  # every metric of every head
    assert result.pattern_changes == ()


def test_one_substituted_token_aligns_the_rest():
    # a: self head; b: previous-token head (row 0 on key 1). "cat" vs "dog" at position 1.
    a = make(torch.eye(4).reshape(1, 1, 4, 4), ["the", "cat", "sat", "."], [1, 2, 3, 4])
    b_attn = one_hot_rows([1, 0, 1, 2]).reshape(1, 1, 4, 4)
    b = make(b_attn, ["the", "dog", "sat", "."], [1, 7, 3, 4])
    result = compare(a, b)
    assert not result.identical
    assert result.positions_a == result.positions_b == (0, 2, 3)
    assert result.tokens == ("the", "sat", ".")
    # Over aligned rows/keys (0, 2, 3): a is the identity there; b has row 2 -> key 1 (not
    # aligned) and row 3 -> key 2, row 0 -> key 1 (not aligned).
    expected = torch.tensor([[-1.0, 0.0, 0.0], [0.0, -1.0, 0.0], [0.0, 1.0, -1.0]])
    assert torch.equal(result.difference[0, 0], expected)
    assert result.mean_abs_difference[0, 0].item() == pytest.approx(4 / 9)
    assert [(p.before, p.after) for p in result.pattern_changes] == [("self", "previous-token")]
    by_metric = {c.metric: c for c in result.changes}
    assert by_metric["self_token"].change == -1.0
    assert by_metric["previous_token"].change == 1.0
    # Largest absolute change first: entropy, confidence, shares are all 0 -> 0 or 1 at most,
    # mean distance goes from 0 to 1.
    assert [abs(c.change) for c in result.changes] == sorted(
        (abs(c.change) for c in result.changes), reverse=True
    )
    assert result.top_changes(1, metric="mean_distance")[0].after == 1.0
    assert len(result.top_changes(3)) == 3


def test_an_inserted_token_shifts_the_alignment():
    a_attn = torch.full((1, 1, 3, 3), 1 / 3)
    b_attn = torch.full((1, 1, 4, 4), 1 / 4)
    a = make(a_attn, ["a", "b", "c"], [1, 2, 3])
    b = make(b_attn, ["x", "a", "b", "c"], [9, 1, 2, 3])
    result = compare(a, b)
    assert (result.positions_a, result.positions_b) == ((0, 1, 2), (1, 2, 3))
    assert torch.allclose(result.difference, torch.full((1, 1, 3, 3), 1 / 4 - 1 / 3))
    change = {c.metric: c for c in result.changes}["entropy"]
    assert change.before == pytest.approx(math.log(3)) and change.after == pytest.approx(
        math.log(4)
    )


def test_nothing_in_common():
    a = make(torch.eye(2).reshape(1, 1, 2, 2), ["a", "b"], [1, 2])
    b = make(torch.eye(2).reshape(1, 1, 2, 2), ["c", "d"], [3, 4])
    result = compare(a, b)
    assert result.n_aligned == 0 and result.difference.shape == (1, 1, 0, 0)
    assert torch.isnan(result.mean_abs_difference).all()


def test_same_ids_from_different_tokenizers_do_not_align():
    a = make(torch.eye(2).reshape(1, 1, 2, 2), ["a", "b"], [1, 2])
    b = make(torch.eye(2).reshape(1, 1, 2, 2), ["a", "z"], [1, 2])
    assert compare(a, b).positions_a == (0,)


def test_different_shapes_are_refused_with_both_shapes():
    a = Analysis.from_attentions(torch.eye(2).expand(6, 12, 2, 2), ["a", "b"], kind="encoder")
    b = Analysis.from_attentions(torch.eye(2).expand(30, 9, 2, 2), ["a", "b"], kind="decoder")
    with pytest.raises(InputError, match="6 layers x 12 heads.*30 layers x 9 heads"):
        compare(a, b)


def test_align_tokens_keeps_order():
    # 2 and 3 swapped: only one of them can stay in order; SequenceMatcher keeps the one that
    # comes first in a (the 2).
    assert align_tokens([1, 2, 3, 4, 5], [1, 3, 2, 4, 5]) == ((0, 1, 3, 4), (0, 2, 3, 4))
    assert align_tokens([], [1]) == ((), ())


def test_stats_are_those_of_each_analysis():
    attn = torch.softmax(torch.randn(1, 2, 3, 3, generator=torch.Generator().manual_seed(4)), -1)
    a = make(attn, ["a", "b", "c"])
    result = compare(a, make(torch.eye(3).expand(1, 2, 3, 3), ["a", "b", "c"]))
    assert torch.equal(result.stats_a.confidence, HeadStats.from_analysis(a).confidence)
    assert torch.equal(result.stats_b.self_token, torch.ones(1, 2))
