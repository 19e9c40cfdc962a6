"""The Analysis result built from hand-made attention: lookups, most-attended rows, JSON form."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from core.engine.analysis import Analysis


def two_head_layer() -> torch.Tensor:
    head0 = torch.tensor([[1.0, 0.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 0.0]])  # all look at 0
    head1 = torch.tensor([[0.0, 0.0, 1.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])  # all look at 2
    return torch.stack([head0, head1]).unsqueeze(0)  # (1, 2, 3, 3)


def test_from_attentions_computes_every_statistic():
    result = Analysis.from_attentions(two_head_layer(), ["a", "b", "c"], kind="encoder")
    assert (result.n_layers, result.n_heads, result.seq_len) == (1, 2, 3)
    assert result.head_entropy.tolist() == [[0.0, 0.0]]
    assert result.layer_entropy.tolist() == pytest.approx([math.log(2)])
    assert result.mean_head_entropy.tolist() == [0.0]
    assert result.received_by_layer[0].tolist() == pytest.approx([0.5, 0.0, 0.5])
    assert torch.equal(result.layer_average(0), two_head_layer()[0].mean(0))
    assert torch.equal(result.head(0, 1), two_head_layer()[0, 1])


def test_most_attended_per_layer_and_per_head():
    result = Analysis.from_attentions(two_head_layer(), ["a", "b", "c"], kind="encoder")
    rows = result.most_attended(2)
    assert [(r.rank, r.position, r.token, r.head) for r in rows] == [
        (1, 0, "a", None),
        (2, 2, "c", None),
    ]
    assert [r.share for r in rows] == pytest.approx([0.5, 0.5])
    per_head = result.most_attended(1, per_head=True)
    assert [(r.head, r.position, r.share) for r in per_head] == [(0, 0, 1.0), (1, 2, 1.0)]


def test_to_dict_has_the_documented_keys_and_shapes():
    result = Analysis.from_attentions(two_head_layer(), ["a", "b", "c"], kind="decoder")
    data = result.to_dict(top_k=2)
    assert data["tokens"] == ["a", "b", "c"]
    assert data["head_entropy"] == [[0.0, 0.0]]
    assert len(data["normalized_head_entropy"]) == 1
    assert data["layer_entropy"] == pytest.approx([math.log(2)])
    assert data["most_attended"] == [
        [{"position": 0, "token": "a", "share": 0.5}, {"position": 2, "token": "c", "share": 0.5}]
    ]


def test_shape_mismatch_is_refused():
    with pytest.raises(ValueError):
        Analysis.from_attentions(torch.full((1, 1, 2, 2), 0.5), ["only one"], kind="encoder")


def test_input_tensor_is_not_modified():
    attn = two_head_layer()
    before = attn.clone()
    Analysis.from_attentions(attn, ["a", "b", "c"], kind="encoder")
    assert torch.equal(attn, before)


def test_holding_adds_the_given_layers_and_leaves_the_original_alone():
    attn = torch.cat([two_head_layer(), two_head_layer().flip(-1)])  # (2, 2, 3, 3)
    full = Analysis.from_attentions(attn, ["a", "b", "c"], kind="encoder")
    bare = replace(full, layer_weights=(None, None))  # statistics only, as for a long input
    assert bare.held_layers == ()
    one = bare.holding({1: attn[1]})
    assert one.held_layers == (1,) and torch.equal(one.layer(1), attn[1])
    assert bare.held_layers == ()  # a new analysis; the original still holds nothing
    assert torch.equal(one.head_entropy, full.head_entropy)  # statistics carried over
