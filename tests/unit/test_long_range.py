"""Long-range statistics (sink, local window, far context, distance profile) against a direct
double loop over (query, key) pairs, whole or in blocks of rows."""

from __future__ import annotations

import pytest
import torch

from core.engine.long_range import (
    LOCAL_WINDOW,
    SINK_TOKENS,
    LongRangeAccumulator,
    distance_edges,
)


def direct(attn: torch.Tensor, *, causal: bool):
    """(sink, local, mass per bin, mean per pair per bin) of one layer (H, T, T), by loops."""
    heads, seq_len, _ = attn.shape
    edges = distance_edges(seq_len)
    n_bins = len(edges) - 1
    sink = torch.zeros(heads)
    local = torch.zeros(heads)
    mass = torch.zeros(heads, n_bins)
    pairs = torch.zeros(n_bins)
    for i in range(seq_len):
        for j in range(seq_len):
            if causal and j > i:
                continue
            d = abs(i - j)
            b = next(m for m in range(n_bins) if edges[m] <= d < edges[m + 1])
            pairs[b] += 1
            mass[:, b] += attn[:, i, j]
            if j < SINK_TOKENS:
                sink += attn[:, i, j]
            elif d < LOCAL_WINDOW:
                local += attn[:, i, j]
    return sink / seq_len, local / seq_len, mass / seq_len, mass / pairs


@pytest.mark.parametrize("causal", [True, False])
@pytest.mark.parametrize("seq_len", [3, 70, 100])
@pytest.mark.parametrize("block", [7, 1000])
def test_blocks_equal_the_double_loop(causal, seq_len, block):
    torch.manual_seed(seq_len)
    logits = torch.randn(2, seq_len, seq_len) * 3
    if causal:
        logits = logits.masked_fill(torch.ones(seq_len, seq_len).triu(1).bool(), float("-inf"))
    attn = torch.softmax(logits, dim=-1)  # (H, T, T)
    gather = LongRangeAccumulator(1, 2, seq_len, causal=causal)
    for start in range(0, seq_len, block):
        stop = min(seq_len, start + block)
        reach = stop if causal else seq_len  # a causal block leaves out the keys past it
        gather(0, start, attn[:, start:stop, :reach])
    got = gather.result()
    sink, local, mass, mean = direct(attn, causal=causal)
    torch.testing.assert_close(got.sink[0], sink, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.local[0], local, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.mass[0], mass, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.mean[0], mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(got.mass[0].sum(-1), torch.ones(2), atol=1e-5, rtol=0)
    torch.testing.assert_close(got.sink + got.local + got.far, torch.ones(1, 2), atol=1e-5, rtol=0)


def test_hand_arithmetic_on_a_sink_head():
    """Every query puts 0.5 on token 0 and 0.5 on itself (query 0: 1.0 on token 0), T = 8."""
    seq_len = 8
    attn = torch.zeros(1, seq_len, seq_len)
    for i in range(seq_len):
        attn[0, i, 0] += 0.5
        attn[0, i, i] += 0.5
    gather = LongRangeAccumulator(1, 1, seq_len, causal=True)
    gather(0, 0, attn)
    got = gather.result()
    # sink: queries 0-3 put all their mass on tokens 0-3, queries 4-7 half: (4 + 4 * 0.5) / 8
    assert got.sink.item() == pytest.approx(0.75)
    assert got.local.item() == pytest.approx(0.25)  # queries 4-7 on themselves: 4 * 0.5 / 8
    # distance 0 (bin 0): 0.5 from every query and 0.5 more from query 0: 4.5 / 8
    assert got.mass[0, 0, 0].item() == pytest.approx(4.5 / 8)
    # distance 4-7 (bin 3): queries 4..7 on token 0, 0.5 each: 2 / 8; its pairs: 4+3+2+1 = 10
    assert got.mass[0, 0, 3].item() == pytest.approx(2 / 8)
    assert got.mean[0, 0, 3].item() == pytest.approx(2 / 10)
