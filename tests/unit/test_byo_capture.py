"""Bring your own model: attention captured by wrapping ``F.scaled_dot_product_attention`` and
``nn.MultiheadAttention.forward`` for one pass equals the modules' own explicit computation, the
model's output is unchanged, and the originals are back afterwards, also when the pass raises,
in nested captures and beside other threads."""

from __future__ import annotations

import threading

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from core.engine.capture import capture_attention, captured_pass, sdpa_weights
from core.policy.errors import InputError
from tests.unit.byo_models import GPT, MHAModel, build
from tests.unit.tiny_models import tiny_bert, tiny_gpt2, tiny_llama

SDPA = F.scaled_dot_product_attention
MHA_FORWARD = nn.MultiheadAttention.forward


def assert_restored():
    assert F.scaled_dot_product_attention is SDPA
    assert nn.MultiheadAttention.forward is MHA_FORWARD
    assert torch.backends.mha.get_fastpath_enabled()


@pytest.fixture(scope="module")
def gpt() -> GPT:
    return build().eval()


@pytest.fixture(scope="module")
def ids() -> torch.Tensor:
    return torch.tensor([[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8]])  # (1, T=12)


def test_nanogpt_capture_equals_its_explicit_attention(gpt, ids):
    with torch.inference_mode():
        plain, _ = gpt(ids)
    (logits, _), capture = captured_pass(gpt, ids)
    assert torch.equal(logits, plain)  # the wrapper returns the original's output
    assert [c.source for c in capture.calls] == ["sdpa"] * 3
    assert all(c.causal and c.dropout_p == 0.0 for c in capture.calls)
    gpt.set_explicit(True)
    try:
        with torch.inference_mode():
            explicit_logits, _ = gpt(ids)
        explicit = [block.attn.last_att for block in gpt.h]  # (1, 4, 12, 12) each
    finally:
        gpt.set_explicit(False)
    for call, att in zip(capture.calls, explicit, strict=True):
        assert call.weights.shape == (1, 4, 12, 12)
        assert torch.allclose(call.weights, att, atol=1e-6, rtol=0)
        assert call.weights.triu(1).abs().max() == 0  # causal
        assert torch.allclose(call.weights.sum(-1), torch.ones(1, 4, 12), atol=1e-6)
    assert torch.allclose(explicit_logits, logits, atol=1e-5)  # the two paths agree
    assert_restored()


def expand_heads(value: torch.Tensor, heads: int) -> torch.Tensor:
    return value.repeat_interleave(heads // value.shape[-3], dim=-3)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"is_causal": True},
        {"scale": 0.3},
        {"attn_mask": "bool"},
        {"attn_mask": "float"},
        {"enable_gqa": True},
    ],
    ids=["plain", "causal", "scale", "bool-mask", "float-mask", "gqa"],
)
def test_sdpa_weights_times_values_give_the_functions_output(options):
    """PyTorch's own kernel is the independent check: output = weights @ values."""
    generator = torch.Generator().manual_seed(1)
    q = torch.randn(2, 4, 5, 8, generator=generator)  # (B, H, Tq, E)
    kv_heads = 2 if options.get("enable_gqa") else 4
    k = torch.randn(2, kv_heads, 7, 8, generator=generator)  # (B, Hk, Tk, E)
    v = torch.randn(2, kv_heads, 7, 8, generator=generator)
    given = dict(options)
    if given.get("attn_mask") == "bool":
        given["attn_mask"] = torch.rand(5, 7, generator=generator) > 0.3
        given["attn_mask"][:, 0] = True  # every query keeps a key
    elif given.get("attn_mask") == "float":
        given["attn_mask"] = torch.randn(2, 1, 5, 7, generator=generator)
    with capture_attention() as capture:
        out = F.scaled_dot_product_attention(q, k, v, **given)
    (call,) = capture.calls
    assert call.weights.shape == (2, 4, 5, 7)
    assert torch.allclose(call.weights @ expand_heads(v, 4), out, atol=1e-5)
    if isinstance(given.get("attn_mask"), torch.Tensor) and given["attn_mask"].dtype == torch.bool:
        assert (call.weights[..., ~given["attn_mask"]] == 0).all()
    assert_restored()


def test_sdpa_weights_by_hand():
    q = torch.tensor([[1.0, 0.0], [0.0, 1.0]]).reshape(1, 1, 2, 2)
    k = torch.tensor([[2.0, 0.0], [0.0, 0.0]]).reshape(1, 1, 2, 2)
    weights = sdpa_weights(q, k, scale=1.0)[0, 0]
    e2 = torch.tensor(2.0).exp()
    # row 0: scores (2, 0) -> e²/(e²+1); row 1: scores (0, 0) -> 1/2 each
    expected = torch.tensor([[e2 / (e2 + 1), 1 / (e2 + 1)], [0.5, 0.5]])
    assert torch.allclose(weights, expected, atol=1e-7)
    masked = sdpa_weights(q, k, attn_mask=torch.tensor([[False, False], [True, True]]))
    assert masked[0, 0, 0].tolist() == [0.0, 0.0]  # no key allowed: zeros, not NaN


def test_multihead_attention_capture_equals_need_weights(ids):
    torch.manual_seed(2)
    model = MHAModel().eval()
    with torch.inference_mode():
        plain = model(ids)
    output, capture = captured_pass(model, ids)
    assert torch.allclose(output, plain, atol=1e-5)  # encoder layer: slow path, same numbers
    assert [c.source for c in capture.calls] == ["mha", "mha", "mha"]
    # The modules' own per-head weights, asked for directly.
    T = ids.shape[1]
    future = torch.ones(T, T, dtype=torch.bool).triu(1)
    with torch.no_grad():
        x = model.emb(ids)
        y, first = model.first(x, x, x, average_attn_weights=False)
        x = x + y
        y, second = model.second(x, x, x, attn_mask=future, average_attn_weights=False)
        x = x + y
        _, third = model.encoder.self_attn(x, x, x, average_attn_weights=False)
    for call, expected in zip(capture.calls, (first, second, third), strict=True):
        assert call.weights.shape == (1, 2, T, T)
        assert torch.allclose(call.weights, expected, atol=1e-6, rtol=0)
    assert capture.calls[1].weights.triu(1).abs().max() == 0
    assert_restored()


def test_multihead_attention_returns_what_the_caller_asked():
    torch.manual_seed(3)
    mha = nn.MultiheadAttention(8, 2).eval()
    x = torch.randn(5, 8)  # unbatched (T, D)
    with torch.no_grad():
        out_avg, avg = mha(x, x, x)
        out_none, none = mha(x, x, x, need_weights=False)
        with capture_attention() as capture:
            got_avg = mha(x, x, x)
            got_none = mha(x, x, x, need_weights=False)
    assert torch.equal(got_avg[0], out_avg) and torch.allclose(got_avg[1], avg, atol=1e-7)
    assert got_avg[1].shape == (5, 5)
    assert torch.equal(got_none[0], out_none) and got_none[1] is None and none is None
    assert [c.weights.shape for c in capture.calls] == [(1, 2, 5, 5)] * 2
    assert torch.allclose(capture.calls[0].weights.mean(1)[0], avg, atol=1e-6)
    assert_restored()


class Raises(nn.Module):
    def forward(self, x):
        F.scaled_dot_product_attention(x, x, x)
        raise RuntimeError("the learner's bug")


def test_originals_are_restored_when_the_forward_raises():
    x = torch.randn(1, 2, 3, 4)
    with pytest.raises(RuntimeError, match="learner's bug"):
        captured_pass(Raises(), x)
    assert_restored()
    # A capture that refuses to hold more weights raises from inside the wrapper: restored too.
    with pytest.raises(InputError) as refused, capture_attention(max_bytes=100):
        F.scaled_dot_product_attention(x, x, x)  # 2 x 3 x 3 x 4 bytes = 72: fits
        F.scaled_dot_product_attention(x, x, x)  # 144: does not
    assert refused.value.key == "error.byo_too_large"
    assert_restored()


def test_nested_captures_each_see_their_own_calls(gpt, ids):
    with capture_attention() as outer:
        F.scaled_dot_product_attention(*(torch.ones(1, 1, 2, 2),) * 3)
        with capture_attention() as inner:
            _, both = captured_pass(gpt, ids)
        assert F.scaled_dot_product_attention is not SDPA  # the outer one is still active
        F.scaled_dot_product_attention(*(torch.ones(1, 1, 2, 2),) * 3)
    assert_restored()
    assert len(inner.calls) == 3 and len(both.calls) == 3
    assert len(outer.calls) == 1 + 3 + 1
    assert all(torch.equal(a.weights, b.weights) for a, b in zip(inner.calls, both.calls))


def test_other_threads_are_not_recorded():
    x = torch.randn(1, 1, 3, 4)
    started, done = threading.Event(), threading.Event()

    def other():
        started.wait()
        F.scaled_dot_product_attention(x, x, x)  # while this thread's capture is active
        done.set()

    thread = threading.Thread(target=other)
    thread.start()
    with capture_attention() as capture:
        started.set()
        done.wait()
    thread.join()
    assert capture.calls == []
    assert_restored()


@pytest.mark.parametrize("make", [tiny_llama, tiny_gpt2, tiny_bert], ids=["llama", "gpt2", "bert"])
def test_transformers_sdpa_attention_equals_its_eager_attentions(make):
    """An independent check: transformers' "sdpa" attention (Llama with 2 KV heads for 4 query
    heads, causal; BERT, not) captured equals the same model's eager ``output_attentions``."""
    model = make().model
    ids = torch.tensor([[5, 6, 7, 8, 9, 10, 11]])  # (1, T=7)
    with torch.inference_mode():
        eager = model(input_ids=ids, output_attentions=True).attentions
    model.set_attn_implementation("sdpa")
    _, capture = captured_pass(model, input_ids=ids)
    assert len(capture.calls) == len(eager) == 2
    for call, expected in zip(capture.calls, eager, strict=True):
        assert call.weights.shape == expected.shape
        assert torch.allclose(call.weights, expected, atol=1e-6, rtol=0)
    assert_restored()
