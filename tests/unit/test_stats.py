"""Every statistic on hand-built attention, checked against arithmetic done by hand."""

from __future__ import annotations

import math

import pytest
import torch

from core.engine import stats

LN2, LN3, LN4 = math.log(2), math.log(3), math.log(4)


def causal_uniform(seq_len: int) -> torch.Tensor:
    """Row i uniform over keys 0..i: what a decoder head that averages its context looks like."""
    return torch.tril(torch.ones(seq_len, seq_len)) / torch.arange(1, seq_len + 1).unsqueeze(1)


def test_uniform_rows_have_entropy_ln_k():
    attn = torch.full((2, 3, 4, 4), 0.25)  # (L, H, T, T)
    assert torch.allclose(stats.row_entropy(attn), torch.full((2, 3, 4), LN4))
    assert torch.allclose(stats.head_entropy(attn), torch.full((2, 3), LN4))


def test_one_hot_rows_have_entropy_zero():
    attn = torch.eye(5).expand(2, 3, 5, 5)
    assert torch.equal(stats.head_entropy(attn), torch.zeros(2, 3))
    assert not torch.signbit(stats.head_entropy(attn)).any()  # +0, not -0


def test_mixed_rows_by_hand():
    attn = torch.tensor(
        [[0.5, 0.5, 0.0, 0.0], [0.25, 0.25, 0.25, 0.25], [1.0, 0, 0, 0], [0.5, 0.25, 0.25, 0]]
    )
    # -(0.5 ln 0.5 + 2 * 0.25 ln 0.25) = 0.5 ln 2 + ln 2 = 1.5 ln 2
    expected_rows = torch.tensor([LN2, LN4, 0.0, 1.5 * LN2])
    assert torch.allclose(stats.row_entropy(attn), expected_rows)
    assert stats.head_entropy(attn).item() == pytest.approx((LN2 + LN4 + 1.5 * LN2) / 4, abs=1e-6)


def test_causal_rows_entropy_and_normalisation():
    attn = causal_uniform(4)  # row i uniform over i + 1 keys
    assert torch.allclose(stats.row_entropy(attn), torch.tensor([0.0, LN2, LN3, LN4]))
    # Each row is uniform over what it can see, so normalised entropy is 1, except the first row,
    # which sees one key and counts 0.
    assert torch.allclose(
        stats.normalize_row_entropy(stats.row_entropy(attn), causal=True),
        torch.tensor([0.0, 1.0, 1.0, 1.0]),
    )
    assert stats.normalize_row_entropy(stats.row_entropy(attn), causal=True).mean(
        dim=-1
    ).item() == pytest.approx(0.75)
    # Read as an encoder (every row sees 4 keys), the same rows are far from uniform.
    encoder_view = stats.normalize_row_entropy(stats.row_entropy(attn), causal=False)
    assert torch.allclose(encoder_view, torch.tensor([0.0, LN2, LN3, LN4]) / LN4)


def test_a_row_that_sees_one_key_counts_zero_not_nan():
    attn = torch.ones(1, 1)  # T = 1: one query, one key
    assert (
        stats.normalize_row_entropy(stats.row_entropy(attn), causal=False).mean(dim=-1).item()
        == 0.0
    )
    assert (
        stats.normalize_row_entropy(stats.row_entropy(attn), causal=True).mean(dim=-1).item() == 0.0
    )
    assert stats.head_entropy(attn).item() == 0.0


def test_encoder_normalisation_divides_by_ln_t():
    attn = torch.tensor([[0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3], [1.0, 0.0, 0.0]])
    expected = (LN2 / LN3 + 1.0 + 0.0) / 3
    assert stats.normalize_row_entropy(stats.row_entropy(attn), causal=False).mean(
        dim=-1
    ).item() == pytest.approx(expected)


def test_layer_entropy_is_entropy_of_the_head_average():
    # Head 0 always looks at key 0, head 1 at key 1: each head has entropy 0; their average is
    # uniform over two keys, so the layer entropy is ln 2 while the mean head entropy is 0.
    head0 = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    head1 = torch.tensor([[0.0, 1.0], [0.0, 1.0]])
    attn = torch.stack([head0, head1]).unsqueeze(0)  # (1, 2, 2, 2)
    assert stats.layer_entropy(attn).tolist() == pytest.approx([LN2])
    assert stats.head_entropy(attn).mean(dim=-1).tolist() == pytest.approx([0.0])


def test_layer_entropy_never_below_mean_head_entropy():
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(4, 6, 7, 7) * 3, dim=-1)
    assert (stats.layer_entropy(attn) >= stats.head_entropy(attn).mean(dim=-1) - 1e-6).all()


def test_received_attention_and_top_k_by_hand():
    # Layer average of two heads over three tokens.
    a = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [0.2, 0.2, 0.6]])
    received = stats.received_attention(a)  # column means
    assert torch.allclose(received, torch.tensor([1.7 / 3, 0.7 / 3, 0.6 / 3]))
    assert received.sum().item() == pytest.approx(1.0)
    shares, positions = stats.top_k_positions(received, 2)
    assert positions.tolist() == [0, 1]
    assert shares.tolist() == pytest.approx([1.7 / 3, 0.7 / 3])


def test_top_k_ties_go_to_the_earlier_position_and_k_is_capped():
    shares, positions = stats.top_k_positions(torch.tensor([0.25, 0.25, 0.25, 0.25]), 10)
    assert positions.tolist() == [0, 1, 2, 3]
    with pytest.raises(ValueError):
        stats.top_k_positions(torch.tensor([1.0]), 0)


def test_statistics_never_modify_their_input():
    torch.manual_seed(1)
    attn = torch.softmax(torch.randn(2, 3, 5, 5), dim=-1)
    before = attn.clone()
    stats.head_entropy(attn)
    stats.normalize_row_entropy(stats.row_entropy(attn), causal=True).mean(dim=-1)
    stats.layer_entropy(attn)
    stats.received_attention(stats.layer_average(attn))
    stats.top_k_positions(stats.received_attention(attn), 3)
    assert torch.equal(attn, before)


def test_entropies_lie_between_zero_and_ln_t():
    torch.manual_seed(2)
    attn = torch.softmax(torch.randn(3, 4, 9, 9) * 5, dim=-1)
    entropy = stats.head_entropy(attn)
    assert (entropy >= 0).all() and (entropy <= math.log(9) + 1e-6).all()
    normalized = stats.normalize_row_entropy(stats.row_entropy(attn), causal=False).mean(dim=-1)
    assert (normalized >= 0).all() and (normalized <= 1 + 1e-6).all()


def test_visible_keys_and_max_entropy():
    assert stats.visible_keys(4, causal=True).tolist() == [1, 2, 3, 4]
    assert stats.visible_keys(4, causal=False).tolist() == [4, 4, 4, 4]
    assert stats.max_entropy(1) == 0.0
    assert stats.max_entropy(8) == pytest.approx(math.log(8))


def test_blocked_row_entropy_on_large_maps_equals_the_direct_sum():
    """Large maps take the blocked path (several blocks, the last one short); its values must
    be those of the plain formula, with zeros (causal mask, one-hot rows) counting 0, and the
    input left untouched."""
    n_keys = 700
    rows = 3 * n_keys  # (3, 700, 700): 1.47M weights, several blocks of whole rows
    assert 3 * n_keys * n_keys > 2 * stats._CHUNK_ELEMENTS
    assert rows % (stats._CHUNK_ELEMENTS // n_keys) != 0  # the last block is short
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(3, n_keys, n_keys, generator=gen) * 4
    causal = torch.ones(n_keys, n_keys).triu(1).bool()
    attn = torch.softmax(logits.masked_fill(causal, float("-inf")), dim=-1)  # (3, T, T)
    attn[1, 5] = torch.nn.functional.one_hot(torch.tensor(3), n_keys).float()
    before = attn.clone()
    got = stats.row_entropy(attn)
    wanted = torch.special.entr(attn.double()).sum(dim=-1)  # float64 reference
    assert got.shape == (3, n_keys)
    assert torch.allclose(got.double(), wanted, atol=1e-5)
    assert got[0, 0].item() == 0.0 and got[1, 5].item() == 0.0  # one key seen, one-hot row
    assert not torch.signbit(got).any()  # +0, never -0
    assert torch.equal(attn, before)
