"""Rollout from a start layer, without the sink, and its collapse check, on hand-built attention;
Kobayashi et al. 2021's residual (and LayerNorm) norms on tiny models of every family, checked
against the block's own output: the vectors whose lengths are taken add up to what the model
computes."""

from __future__ import annotations

import pytest
import torch

from core.engine.hooks import HookSet
from core.engine.run import analyze
from core.engine.tokenize import tokenize
from core.methods.effective import effective_analysis
from core.methods.norms import (
    attention_residual_norms,
    capture_attention,
    residual_norm_attention,
    transformed_values,
)
from core.methods.rollout import rollout, rollout_collapse, rollout_layer_by_layer, without_sink
from tests.unit.tiny_models import TINY_MODELS

TEXT = "the cat sat on the mat , and it slept ."


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def tiny(request):
    return TINY_MODELS[request.param]()


def sink_layers(n_layers: int, seq_len: int) -> torch.Tensor:
    """Every query of every layer looks only at token 0: ``(L, 1, T, T)``."""
    attn = torch.zeros(n_layers, 1, seq_len, seq_len)
    attn[..., 0] = 1.0
    return attn


# --- rollout --------------------------------------------------------------------------------------


def test_rollout_from_a_start_layer_is_the_rollout_of_those_layers():
    generator = torch.Generator().manual_seed(4)
    attn = torch.softmax(torch.randn(5, 2, 6, 6, generator=generator), dim=-1)
    from_two = rollout(attn, start=2)
    assert torch.equal(from_two[:2], torch.eye(6).expand(2, 6, 6))  # nothing rolled yet
    assert torch.allclose(from_two[4], rollout(attn[2:5])[-1], atol=1e-6)
    assert torch.allclose(from_two[2], rollout(attn[2:3])[0], atol=1e-6)
    assert torch.equal(rollout(attn, start=0), rollout(attn))
    with pytest.raises(ValueError, match="start"):
        rollout(attn, start=5)


def test_without_sink_by_hand_and_rows_still_sum_to_one():
    # Row 1: (0.6, 0.4, 0) -> (0, 1, 0); row 2: (0.8, 0.1, 0.1) -> (0, 0.5, 0.5); row 0 of a
    # decoder sees only token 0 and stays (1, 0, 0); a row only on token 0 keeps itself.
    attn = torch.tensor([[1.0, 0.0, 0.0], [0.6, 0.4, 0.0], [0.8, 0.1, 0.1]])
    out = without_sink(attn)
    assert torch.allclose(out, torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0.5, 0.5]]))
    only_sink = without_sink(torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.equal(only_sink, torch.eye(2))
    assert torch.allclose(out.sum(-1), torch.ones(3))
    assert torch.equal(attn[2], torch.tensor([0.8, 0.1, 0.1]))  # input untouched


def test_rollout_without_the_sink_by_hand():
    # One layer, T = 2: a = [[1, 0], [0.9, 0.1]] -> without sink [[1, 0], [0, 1]] -> the residual
    # mix 0.5 * that + 0.5 * I is the identity. With the sink: [[1, 0], [0.45, 0.55]].
    attn = torch.tensor([[1.0, 0.0], [0.9, 0.1]]).reshape(1, 1, 2, 2)
    assert torch.allclose(rollout(attn)[0], torch.tensor([[1.0, 0.0], [0.45, 0.55]]))
    assert torch.allclose(rollout(attn, exclude_sink=True)[0], torch.eye(2))


def test_collapse_is_found_at_the_layer_where_every_row_reaches_0_99():
    # Every layer looks at token 0: R[l, i, 0] = 1 - 0.5 ** (l + 1) for every i >= 1, which
    # first reaches 0.99 at layer 6 (1 - 1/128 = 0.9922; layer 5: 1 - 1/64 = 0.9844).
    rolled = rollout(sink_layers(8, 4))
    found = rollout_collapse(rolled)
    assert found.first_layer == 6 and found.collapsed and found.n_collapsed == 2
    assert found.sink_floor.tolist() == pytest.approx([1 - 0.5 ** (k + 1) for k in range(8)])
    assert rollout_collapse(rolled.unsqueeze(1)).first_layer == 6  # a derived analysis' shape
    assert rollout_collapse(rolled, threshold=0.999).first_layer is None  # 1 - 1/256 < 0.999
    # Without the sink every row keeps itself: nothing flows to token 0, nothing collapses.
    free = rollout_collapse(rollout(sink_layers(8, 4), exclude_sink=True))
    assert not free.collapsed and free.sink_floor.tolist() == [0.0] * 8


def test_one_row_not_on_the_sink_is_enough_to_say_not_collapsed():
    attn = sink_layers(8, 4)
    attn[:, :, 3] = torch.tensor([0.0, 0.0, 0.0, 1.0])  # query 3 looks at itself
    found = rollout_collapse(rollout(attn))
    assert not found.collapsed and found.sink_floor.max().item() == 0.0
    assert not rollout_collapse(torch.ones(3, 1, 1)).collapsed  # one token: no row i >= 1


def test_layer_by_layer_rollout_with_options_equals_the_whole_tensor_one(tiny):
    inputs = tokenize(tiny, TEXT).inputs
    attn = analyze(tiny, TEXT, method="all").attentions
    for options in ({"start": 1}, {"exclude_sink": True}, {"start": 1, "exclude_sink": True}):
        streamed = rollout_layer_by_layer(tiny, inputs, **options)
        assert torch.allclose(streamed, rollout(attn, **options), atol=1e-5), options


def test_effective_rollout_options_are_part_of_the_content_key():
    llama = TINY_MODELS["llama"]()
    result = analyze(llama, TEXT)
    plain = effective_analysis(llama, result, "rollout")
    no_sink = effective_analysis(llama, result, "rollout", exclude_sink=True)
    late = effective_analysis(llama, result, "rollout", start_layer=1)
    assert len({plain.content_key, no_sink.content_key, late.content_key}) == 3
    assert torch.equal(late.layer(0)[0], torch.eye(result.seq_len))
    assert torch.all(no_sink.layer(1)[0, 1:, 0] == 0)
    with pytest.raises(ValueError, match="start_layer"):
        effective_analysis(llama, result, "rollout", start_layer=result.n_layers)


# --- Kobayashi et al. 2021 ------------------------------------------------------------------------


def test_residual_norms_by_hand_without_and_with_a_layer_norm():
    # One head, T = 2, hidden 2. Query 1 looks at token 0 only.
    attn = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    f = torch.tensor([[[3.0, 0.0], [0.0, 1.0]]])  # f(x_0) = (3, 0), f(x_1) = (0, 1)
    x = torch.tensor([[0.0, 4.0], [1.0, 1.0]])
    # (0, 0): f(x_0) + x_0 = (3, 4) -> 5; (1, 0): f(x_0) = (3, 0) -> 3; (1, 1): x_1 -> sqrt 2.
    plain = attention_residual_norms(attn, f, x)
    assert torch.allclose(plain, torch.tensor([[5.0, 0.0], [3.0, 2**0.5]]))
    # LayerNorm weight (2, 1), scale s = (2, 4): centre each vector, scale by weight, divide by s.
    # (3, 4) -> (-0.5, 0.5) -> (-1, 0.5) / 2 -> |.| = sqrt(1.25) / 2.
    # (3, 0) -> (1.5, -1.5) -> (3, -1.5) / 4 -> sqrt(11.25) / 4; (1, 1) -> 0.
    normed = attention_residual_norms(
        attn, f, x, ln_weight=torch.tensor([2.0, 1.0]), ln_scale=torch.tensor([2.0, 4.0])
    )
    assert torch.allclose(normed, torch.tensor([[1.25**0.5 / 2, 0.0], [11.25**0.5 / 4, 0.0]]))


def block_outputs(tiny):
    """What the model computes after each attention block's residual: BERT's LayerNorm output
    (and input), Llama's and GPT-2's stream before the second norm."""
    found: dict[int, tuple[torch.Tensor, torch.Tensor | None]] = {}
    base = tiny.model.base_model
    family = tiny.model.config.model_type

    def keep_output(layer):
        def hook(module, args, output):
            found[layer] = (output[0].detach(), args[0][0].detach())

        return hook

    def keep_input(layer):
        def hook(module, args):
            found[layer] = (args[0][0].detach(), None)

        return hook

    with HookSet() as hooks:
        if family in ("bert", "roberta"):
            for layer, block in enumerate(base.encoder.layer):
                hooks.forward(block.attention.output.LayerNorm, keep_output(layer))
        elif family == "gpt2":
            for layer, block in enumerate(base.h):
                hooks.forward_pre(block.ln_2, keep_input(layer))
        else:
            for layer, block in enumerate(base.layers):
                hooks.forward_pre(block.post_attention_layernorm, keep_input(layer))
        with torch.inference_mode():
            tiny.model.base_model(**tokenize(tiny, TEXT).inputs)
    return found


def test_residual_norms_are_lengths_of_the_terms_the_block_adds_up(tiny):
    """Rebuild every term F_ij = sum_h a f_h(x_j) + [i = j] x_i from the captured pass; the terms
    plus the bias give the block's own output (through the split LayerNorm where there is one),
    and the norms are their lengths."""
    capture = capture_attention(tiny, tokenize(tiny, TEXT).inputs)
    ours = residual_norm_attention(tiny, analyze(tiny, TEXT))
    outputs = block_outputs(tiny)
    post_ln = tiny.model.config.model_type in ("bert", "roberta")
    assert ours.layer_norm == post_ln
    from core.engine.hooks import projections

    for layer, attn in enumerate(capture.attentions):
        f = transformed_values(
            capture.values[layer],
            capture.w_o[layer],
            n_heads=tiny.n_heads,
            n_kv_heads=tiny.n_kv_heads,
        )  # (H, T, hidden)
        x = capture.residuals[layer]  # (T, hidden)
        seq_len = x.shape[0]
        terms = torch.einsum("hij,hje->ije", attn, f)  # (T, T, hidden)
        terms = terms + torch.eye(seq_len)[:, :, None] * x[:, None, :]  # + [i = j] x_i
        output = projections(tiny)[layer].output
        bias = output.bias.detach() if output.bias is not None else torch.zeros(x.shape[1])
        reference, ln_input = outputs[layer]
        if post_ln:
            norm = projections(tiny)[layer].post_norm
            scale = (ln_input.var(-1, unbiased=False) + norm.eps).sqrt()  # (T,)
            weight = norm.weight.detach()

            def split(z, scale=scale, weight=weight):  # g_i(z) for every i at once
                return (z - z.mean(-1, keepdim=True)) * weight / scale[:, None, None]

            pieces = split(terms)  # (T, T, hidden)
            rebuilt = pieces.sum(1) + split(bias.expand(seq_len, 1, -1))[:, 0] + norm.bias
        else:
            pieces = terms
            rebuilt = terms.sum(1) + bias
        assert torch.allclose(rebuilt, reference, atol=1e-4), layer
        assert torch.allclose(ours.norms[layer], pieces.norm(dim=-1), atol=1e-4), layer
    share = ours.residual_share
    assert share.shape == (tiny.n_layers, len(analyze(tiny, TEXT).tokens))
    assert ((share >= 0) & (share <= 1 + 1e-6)).all()


def test_effective_residual_norm_view_is_a_share_of_lengths(tiny):
    result = analyze(tiny, TEXT)
    shown = effective_analysis(tiny, result, "norm_residual")
    assert shown.derived_from == "norm_residual" and shown.n_heads == 1
    assert torch.allclose(shown.attentions.sum(-1), torch.ones(result.n_layers, 1, result.seq_len))
