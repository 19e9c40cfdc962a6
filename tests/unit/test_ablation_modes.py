"""Mean ablation beside zero ablation, and the effect at every position, on tiny models: mean
ablation equals adding (mean - own output) through the head's block of W_O; the per-position
effect equals KL / cosine computed directly from the model's full output."""

from __future__ import annotations

import pytest
import torch

from core import analyze
from core.engine.hooks import HookSet, architecture_for, output_matrix, projections
from core.engine.tokenize import tokenize
from core.methods.ablation import ablate_heads, ablation_effect, kl_divergence, rank_heads
from core.methods.ablation_hooks import ablated_input
from tests.unit.tiny_models import TINY_MODELS, tiny_bert, tiny_llama

TEXT = "the cat sat on the mat , and it slept"


def run(loaded, text=TEXT):
    """Logits (decoders) or the last hidden state (encoders), every position."""
    inputs = tokenize(loaded, text).inputs
    with torch.inference_mode():
        if loaded.kind == "decoder":
            return loaded.model(**inputs, use_cache=False).logits[0]
        return loaded.model(**inputs).last_hidden_state[0]


@pytest.fixture(scope="module", params=["bert", "llama", "gpt2"])
def tiny(request):
    return TINY_MODELS[request.param]()


def test_ablated_input_by_hand_and_the_input_is_left_alone():
    x = torch.tensor([[[1.0, 2.0, 10.0], [3.0, 4.0, 20.0], [5.0, 6.0, 60.0]]])  # (1, 3, 3)
    keep = torch.tensor([[[True, False, False]]])
    before = x.clone()
    assert torch.equal(ablated_input(x, keep, "zero")[0, :, 1:], torch.zeros(3, 2))
    # Column means over the 3 positions: (2 + 4 + 6) / 3 = 4 and (10 + 20 + 60) / 3 = 30.
    mean = ablated_input(x, keep, "mean")
    assert torch.equal(mean[0, :, 1], torch.full((3,), 4.0))
    assert torch.equal(mean[0, :, 2], torch.full((3,), 30.0))
    assert torch.equal(mean[0, :, 0], x[0, :, 0])
    assert torch.equal(x, before)
    with pytest.raises(ValueError, match="mode"):
        ablated_input(x, keep, "resample")


def test_mean_ablation_adds_the_mean_minus_own_output_through_w_o(tiny):
    """Reference built independently: the head's own slice z_h (T, d) is read from an unablated
    pass, then the projection's output gets (mean_t z_h - z_h[t]) W_O^h added at each t."""
    layer, head = 1, 1
    found = projections(tiny)[layer]
    d = found.head_dim
    seen = {}

    def keep_slice(module, args):
        seen["z"] = args[0][0, :, head * d : (head + 1) * d].clone()  # (T, d)

    with HookSet() as hooks:
        hooks.forward_pre(found.output, keep_slice)
        run(tiny)
    z = seen["z"]
    w_o = output_matrix(architecture_for(tiny.model), found.output)  # (H d, hidden)
    block = w_o[head * d : (head + 1) * d]  # (d, hidden)
    shift = (z.mean(0, keepdim=True) - z) @ block  # (T, hidden)

    def add_shift(module, args, output):
        return output + shift

    with HookSet() as hooks:
        hooks.forward(found.output, add_shift)
        reference = run(tiny)
    with ablate_heads(tiny, [(layer, head)], mode="mean"):
        ablated = run(tiny)
    assert torch.allclose(ablated, reference, atol=1e-5)
    with ablate_heads(tiny, [(layer, head)]):
        zeroed = run(tiny)
    assert not torch.allclose(ablated, zeroed, atol=1e-4)  # mean is not zero ablation


def test_per_position_effect_of_a_decoder_equals_direct_kl_at_every_position():
    llama = tiny_llama()
    heads = [(0, 1), (1, 3)]
    before = torch.log_softmax(run(llama), -1)  # (T, vocab)
    with ablate_heads(llama, heads):
        after = torch.log_softmax(run(llama), -1)
    effect = ablation_effect(llama, analyze(llama, TEXT), heads)
    direct = kl_divergence(before, after)  # (T,)
    assert effect.position_metric == "kl" and len(effect.per_position) == before.shape[0]
    assert effect.per_position == pytest.approx(direct.tolist(), rel=1e-4, abs=1e-7)
    assert effect.per_position[-1] == pytest.approx(effect.kl_divergence, rel=1e-4)
    assert max(effect.per_position) > 1e-4


def test_per_position_effect_of_an_encoder_is_each_positions_cosine():
    bert = tiny_bert()
    heads = [(1, 0)]
    before = run(bert)
    with ablate_heads(bert, heads, mode="mean"):
        after = run(bert)
    effect = ablation_effect(bert, analyze(bert, TEXT), heads, mode="mean")
    direct = torch.nn.functional.cosine_similarity(before, after, dim=-1)
    assert effect.position_metric == "cosine" and effect.mode == "mean"
    assert effect.per_position == pytest.approx(direct.tolist(), abs=1e-6)
    pooled = torch.nn.functional.cosine_similarity(before.mean(0), after.mean(0), dim=0)
    assert effect.cosine_similarity == pytest.approx(pooled.item(), abs=1e-6)


def test_no_heads_no_effect_anywhere(tiny):
    effect = ablation_effect(tiny, analyze(tiny, TEXT), [], mode="mean")
    expected = 0.0 if tiny.kind == "decoder" else 1.0
    assert effect.per_position == pytest.approx([expected] * len(effect.per_position), abs=1e-6)


def test_mean_and_zero_ablation_give_different_effects_and_rankings_agree(tiny):
    result = analyze(tiny, TEXT)
    zero = ablation_effect(tiny, result, [(0, 0)])
    mean = ablation_effect(tiny, result, [(0, 0)], mode="mean")
    assert zero.mode == "zero" and mean.mode == "mean"
    assert zero.importance != pytest.approx(mean.importance, rel=1e-3)
    ranking = rank_heads(tiny, result, layers=[0], batch_size=1, mode="mean")
    assert ranking.mode == "mean"
    assert ranking.importance[0, 0].item() == pytest.approx(mean.importance, abs=1e-9)
    with pytest.raises(ValueError, match="mode"):
        ablation_effect(tiny, result, [(0, 0)], mode="resample")
