"""The bundled models under AttnScope's own attention function against eager attention: every
statistic, the kept weights, rollout and norm-based attention, to 1e-5; and the blocks path on
an input long enough to be cut into several blocks."""

from __future__ import annotations

from contextlib import contextmanager

import pytest
import torch

from core import analyze
from core.engine.attention_fn import NAME
from core.methods.norms import norm_based_attention
from core.methods.rollout import rollout

STATISTICS = (
    "head_entropy",
    "normalized_head_entropy",
    "layer_entropy",
    "received_by_head",
    "head_entropy_choice",
    "normalized_head_entropy_choice",
    "layer_entropy_choice",
)
TEXT = "The quick brown fox jumps over the lazy dog, and then it sleeps. " * 8


@contextmanager
def eager(loaded):
    """``loaded`` under transformers' eager attention for the block, then ours again."""
    assert loaded.model.config._attn_implementation == NAME
    loaded.model.set_attn_implementation("eager")
    try:
        yield loaded
    finally:
        loaded.model.set_attn_implementation(NAME)


@pytest.mark.parametrize("name", ["minilm", "smollm2"])
def test_bundled_models_equal_eager(name, request):
    loaded = request.getfixturevalue(name)
    ours = analyze(loaded, TEXT)
    ours_norms = norm_based_attention(loaded, ours)
    with eager(loaded):
        theirs = analyze(loaded, TEXT)
        theirs_norms = norm_based_attention(loaded, theirs)
    assert ours.seq_len == theirs.seq_len > 100
    for key in STATISTICS:
        torch.testing.assert_close(
            getattr(ours, key), getattr(theirs, key), atol=1e-5, rtol=0, msg=key
        )
    torch.testing.assert_close(ours.attentions, theirs.attentions, atol=1e-5, rtol=0)
    torch.testing.assert_close(
        rollout(ours.attentions), rollout(theirs.attentions), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(ours_norms.norms, theirs_norms.norms, atol=1e-5, rtol=0)
    torch.testing.assert_close(ours_norms.layer_norms, theirs_norms.layer_norms, atol=1e-5, rtol=0)


def test_long_input_in_blocks_equals_eager(smollm2, monkeypatch):
    """Statistics only (no layer kept), the blocks cut small so every layer comes in 9 blocks."""
    import core.engine.attention_fn as attention_fn
    from core.engine.block_stats import BlockAccumulator

    monkeypatch.setattr(attention_fn, "BLOCK_BYTES", 9 * 360 * 4 * 40)  # >= 40 queries a block
    starts: list[int] = []
    original = BlockAccumulator.__call__

    def counted(self, layer, start, weights, logits):
        starts.append(start)
        return original(self, layer, start, weights, logits)

    monkeypatch.setattr(BlockAccumulator, "__call__", counted)
    text = "Attention sinks take the mass that a query has nowhere else to put. " * 20
    ours = analyze(smollm2, text, keep_layers="none")
    assert len(starts) >= 30 * 5 and starts.count(0) == 30  # every layer in 5 blocks or more
    with eager(smollm2):
        theirs = analyze(smollm2, text, keep_layers="none")
    assert 250 < ours.seq_len <= 360, ours.seq_len
    for key in STATISTICS:
        torch.testing.assert_close(
            getattr(ours, key), getattr(theirs, key), atol=1e-5, rtol=0, msg=key
        )
    torch.testing.assert_close(ours.pooled_maps, theirs.pooled_maps, atol=1e-5, rtol=0)
    for part in ("sink", "local", "mass", "mean"):
        torch.testing.assert_close(
            getattr(ours.long_range, part), getattr(theirs.long_range, part), atol=1e-5, rtol=0
        )
    # SmolLM2's attention sink: in its upper layers the first 4 of ~280 tokens (1.4 % of the
    # keys) take over 20 times their share of the attention (0.45 here)
    assert ours.long_range.sink[12:].mean() > 20 * 4 / ours.seq_len
