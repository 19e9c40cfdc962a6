"""The binary payload of our head and model views: exact round trip, small, markup-free."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from core.engine.analysis import Analysis
from viz.attention_view import (
    MAGIC,
    decode_payload,
    encode_head_view,
    encode_model_view,
    view_assets,
)


def make_result(seq_len=6, n_layers=2, n_heads=3, tokens=None, seed=0) -> Analysis:
    torch.manual_seed(seed)
    attn = torch.softmax(torch.randn(n_layers, n_heads, seq_len, seq_len) * 3, dim=-1)
    return Analysis.from_attentions(
        attn, tokens or [f"t{i}" for i in range(seq_len)], kind="encoder"
    )


def test_head_view_round_trips_every_weight_to_1e5():
    result = make_result()
    payload = encode_head_view(result, 1)
    assert payload.data[:4] == MAGIC
    header, blobs = decode_payload(payload.data)
    assert header["mode"] == "head" and header["layer"] == 1 and header["encoding"] == "dense"
    weights = blobs["weights"].astype(np.float64) / 65535  # (H, T, T)
    assert weights.shape == (3, 6, 6)
    assert np.abs(weights - result.layer(1).numpy()).max() <= 0.5 / 65535 + 1e-9
    assert header["tokens"] == list(result.tokens)


def test_blobs_are_aligned_for_typed_arrays():
    result = make_result(seq_len=5)
    header, _ = decode_payload(encode_head_view(result, 0).data)
    (length,) = np.frombuffer(encode_head_view(result, 0).data[4:8], dtype="<u4")
    assert (8 + length) % 4 == 0
    assert all(blob["offset"] % 4 == 0 for blob in header["blobs"].values())


def test_long_layers_go_sparse_with_each_rows_top_keys():
    result = make_result(seq_len=40, n_heads=2)
    payload = encode_head_view(result, 0, dense_limit=100)
    header, blobs = decode_payload(payload.data)
    assert header["encoding"] == "sparse" and header["top_k"] == 32
    values = blobs["top_values"] / 65535  # (H, T, k), largest first
    indices = blobs["top_indices"].astype(np.int64)
    expected_values, expected_indices = torch.topk(result.layer(0), 32, dim=-1)
    assert np.array_equal(indices, expected_indices.numpy())
    assert np.allclose(values, expected_values.numpy(), atol=1e-5)
    assert (np.diff(values, axis=-1) <= 1e-9).all()


def test_model_view_thumbnails_and_detail():
    result = make_result(seq_len=40, n_layers=3, n_heads=2)
    header, blobs = decode_payload(encode_model_view(result, (2, 1)).data)
    assert header["selected"] == [2, 1]
    thumbs = blobs["thumbnails"]  # (L, H, S, S), each scaled to its own maximum
    assert thumbs.shape == (3, 2, 32, 32) and thumbs.dtype == np.uint8
    assert (thumbs.reshape(6, -1).max(axis=1) == 255).all()
    assert np.allclose(blobs["detail"][0] / 65535, result.head(2, 1).numpy(), atol=1e-5)
    header, blobs = decode_payload(encode_model_view(result).data)
    assert header["selected"] is None and "detail" not in blobs


def test_hostile_tokens_are_plain_json_strings():
    evil = ["</script><script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "a"]
    payload = encode_head_view(make_result(seq_len=3, tokens=evil), 0)
    header, _ = decode_payload(payload.data)
    assert header["tokens"] == evil  # exact text, set with textContent in the browser
    js, _ = view_assets()
    assert "innerHTML" not in js and "insertAdjacentHTML" not in js and "eval(" not in js


def test_identical_views_share_an_id_and_different_ones_do_not():
    result = make_result()
    first = json.dumps(encode_head_view(result, 0).header["view_id"])
    assert first == json.dumps(encode_head_view(result, 0).header["view_id"])
    assert (
        encode_head_view(result, 0).header["view_id"]
        != encode_head_view(result, 1).header["view_id"]
    )


@pytest.mark.parametrize("seq_len", [16, 128])
def test_payload_is_two_bytes_per_weight_plus_the_header(seq_len):
    result = make_result(seq_len=seq_len, n_layers=2, n_heads=3)
    payload = encode_head_view(result, 0)
    header_bytes = 8 + int(np.frombuffer(payload.data[4:8], dtype="<u4")[0])
    assert payload.size == header_bytes + 3 * seq_len * seq_len * 2 + (-(3 * seq_len**2 * 2) % 4)
