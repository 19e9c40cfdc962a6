"""Cross-attention beyond its heatmap: the rectangular head/model view payload (queries: target
tokens, keys: source tokens; square payloads unchanged), head statistics of a hand-built (H, 2, 3)
cross-attention against hand arithmetic, and cross-attention over words."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from core.engine.seq2seq import CrossAttention, analyze_pair
from core.methods.alignment import merge_rectangular, token_words
from core.methods.cross_words import cross_units
from core.methods.head_metrics import CROSS_NOT_APPLICABLE
from core.methods.head_stats import HeadStats
from tests.unit.test_attention_view import make_result
from tests.unit.tiny_seq2seq_vision import tiny_marian
from viz.attention_view import (
    decode_payload,
    encode_cross_head_view,
    encode_cross_model_view,
    encode_head_view,
    encode_model_view,
)
from viz.tables import head_stats_frame

# 1 layer, 2 heads, 2 target tokens (rows) x 3 source tokens (columns); rows sum to 1.
WEIGHTS = torch.tensor(
    [
        [
            [[0.5, 0.5, 0.0], [0.0, 0.25, 0.75]],
            [[1.0, 0.0, 0.0], [0.2, 0.2, 0.6]],
        ]
    ]
)  # (1, 2, 2, 3)
TARGET = ("Le", "chat")
SOURCE = ("cat", ",", "</s>")


def hand_cross() -> CrossAttention:
    return CrossAttention(WEIGHTS, TARGET, SOURCE)


def test_head_view_payload_of_cross_attention_is_rectangular():
    header, blobs = decode_payload(encode_cross_head_view(hand_cross(), 0, selected_head=1).data)
    assert header["tokens"] == ["Le", "chat"] and header["seq_len"] == 2
    assert header["key_tokens"] == ["cat", ",", "</s>"] and header["key_len"] == 3
    assert header["mode"] == "head" and header["encoding"] == "dense"
    assert header["selected_head"] == 1 and header["causal"] is False
    weights = blobs["weights"]  # (H, T_q, T_k) as 16-bit fixed point
    assert weights.shape == (2, 2, 3)
    assert weights[0, 1].tolist() == [0, round(0.25 * 65535), round(0.75 * 65535)]
    assert weights[1, 0].tolist() == [65535, 0, 0]
    # entropies for the tooltips: head 0, rows ln 2 and -(.25 ln .25 + .75 ln .75)
    row1 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    mean = (math.log(2) + row1) / 2
    assert header["head_entropy"][0][0] == round(mean, 4)
    assert header["normalized_head_entropy"][0][0] == round(mean / math.log(3), 4)


def test_cross_head_view_goes_sparse_past_the_limit():
    header, blobs = decode_payload(encode_cross_head_view(hand_cross(), 0, dense_limit=4).data)
    assert header["encoding"] == "sparse" and header["top_k"] == 3
    assert blobs["top_indices"][0, 1].tolist() == [2, 1, 0]  # 0.75, 0.25, 0
    assert blobs["top_values"][1, 1].tolist() == [round(0.6 * 65535), 13107, 13107]


def test_model_view_payload_of_cross_attention_has_rectangular_thumbnails():
    torch.manual_seed(0)
    weights = torch.softmax(torch.randn(2, 3, 5, 40), dim=-1)  # 5 target x 40 source
    cross = CrossAttention(weights, tuple("abcde"), tuple(f"s{j}" for j in range(40)))
    header, blobs = decode_payload(encode_cross_model_view(cross, (1, 2)).data)
    assert header["key_len"] == 40 and header["selected"] == [1, 2]
    thumbs = blobs["thumbnails"]  # (L, H, 5, 32): queries kept, keys max-pooled to 32
    assert thumbs.shape == (2, 3, 5, 32)
    pooled = torch.nn.functional.adaptive_max_pool2d(weights[1, 2][None, None], (5, 32))[0, 0]
    expected = (pooled / pooled.max()).sqrt().mul(255).round()
    assert np.array_equal(thumbs[1, 2], expected.numpy().astype(np.uint8))
    detail = blobs["detail"].astype(np.float64) / 65535  # (1, 5, 40)
    assert detail.shape == (1, 5, 40)
    assert np.abs(detail[0] - weights[1, 2].numpy()).max() <= 0.5 / 65535 + 1e-9


def test_square_payloads_carry_no_key_list():
    result = make_result(seq_len=5)
    for payload in (encode_head_view(result, 0), encode_model_view(result, (0, 1))):
        header, _ = decode_payload(payload.data)
        assert "key_tokens" not in header and "key_len" not in header
        assert header["tokens"] == list(result.tokens)


def test_cross_head_statistics_equal_hand_arithmetic():
    stats = HeadStats.from_cross_attention(
        WEIGHTS, SOURCE, key_special=(False, False, True)
    )  # (1, 2) each
    h0 = -(0.25 * math.log(0.25) + 0.75 * math.log(0.75))
    h1 = -(2 * 0.2 * math.log(0.2) + 0.6 * math.log(0.6))  # row [0.2, 0.2, 0.6]
    expected = {
        "entropy": [(math.log(2) + h0) / 2, (0.0 + h1) / 2],
        "normalized_entropy": [(math.log(2) + h0) / 2 / math.log(3), h1 / 2 / math.log(3)],
        "confidence": [(0.5 + 0.75) / 2, (1.0 + 0.6) / 2],
        "first_token": [(0.5 + 0.0) / 2, (1.0 + 0.2) / 2],
        "cls": [0.0, 0.0],  # source token 0 is not special
        "sep": [(0.0 + 0.75) / 2, (0.0 + 0.6) / 2],  # "</s>"
        "punctuation": [(0.5 + 0.25) / 2, (0.0 + 0.2) / 2],  # ","
        "punctuation_or_sep": [(0.5 + 1.0) / 2, (0.0 + 0.8) / 2],
    }
    for name, values in expected.items():
        assert stats.metric(name)[0].tolist() == pytest.approx(values, abs=1e-6), name
    for name in CROSS_NOT_APPLICABLE:
        assert torch.isnan(stats.metric(name)).all(), name
    # head 0: no share reaches 0.5 (punctuation or </s>: 0.75), so punctuation/separator;
    # head 1: first token 0.6
    assert stats.patterns == (("punctuation/separator", "first-token sink"),)
    table = head_stats_frame(stats, omit=CROSS_NOT_APPLICABLE)
    assert len(table) == 2 and not table.isna().any().any()
    assert "mean distance (tokens)" not in table.columns
    with pytest.raises(ValueError, match="T_src = 2"):
        HeadStats.from_cross_attention(WEIGHTS, SOURCE[:2])


def test_cross_attention_over_words_merges_each_axis():
    loaded = tiny_marian()
    result = analyze_pair(loaded, "the cat sat", "a dog slept on")
    tokens = cross_units(loaded, result, words=False)
    assert tokens.cross is result.cross
    assert tokens.key_special == tuple(t == "</s>" for t in result.source_tokens)
    words = cross_units(loaded, result, words=True)
    src_groups, src_labels = token_words(loaded, result.source)
    tgt_groups, tgt_labels = token_words(loaded, result.target)
    assert words.cross.key_tokens == src_labels and words.cross.query_tokens == tgt_labels
    expected = merge_rectangular(result.cross.weights, tgt_groups, src_groups)
    assert torch.equal(words.cross.weights, expected)
    assert words.cross.weights.shape[:2] == result.cross.weights.shape[:2]
    torch.testing.assert_close(words.cross.weights.sum(-1), torch.ones(expected.shape[:-1]))
    assert words.key_special[-1] and not any(words.key_special[:-1])
