"""Attributions on tiny models and hand-built functions: integrated gradients' completeness
against f(x) - f(x') computed here from the model's own outputs, input × gradient exact on a
linear function, gradient-weighted rollout against Chefer et al.'s equations written out here,
bad targets and a Stop in the middle."""

from __future__ import annotations

import pytest
import torch

from core.engine.run import analyze
from core.methods.attention_gradient import attention_gradients
from core.methods.attribution import attribute, captum_scores
from core.methods.attribution_target import resolve_target
from core.policy.errors import InputError
from tests.unit.tiny_models import tiny_bert, tiny_llama

TEXT = "the cat sat on the mat and it slept"


@pytest.fixture(scope="module")
def llama():
    return tiny_llama()


@pytest.fixture(scope="module")
def bert():
    return tiny_bert()


def test_integrated_gradients_completeness_on_a_decoder(llama):
    analysis = analyze(llama, TEXT)
    target = resolve_target(llama, analysis, measure="log_prob", position=4, token="dog")
    result = attribute(
        llama, analysis, target, methods=("integrated_gradients",), baseline="pad", steps=32
    )
    # f(x) and f(x') straight from the causal LM on token ids: the pad baseline is the text's
    # ids replaced by the pad token's (no special tokens in this decoder).
    dog = llama.tokenizer.convert_tokens_to_ids("dog")
    ids = torch.tensor([analysis.token_ids])
    padded = torch.full_like(ids, llama.tokenizer.pad_token_id)
    with torch.no_grad():
        f_x = torch.log_softmax(llama.model(input_ids=ids).logits[0, 4], -1)[dog]
        f_b = torch.log_softmax(llama.model(input_ids=padded).logits[0, 4], -1)[dog]
    total = float(result.captum.integrated_gradients.sum())
    delta = result.captum.ig_delta
    assert result.f_input == pytest.approx(float(f_x), abs=1e-5)
    assert result.f_baseline == pytest.approx(float(f_b), abs=1e-5)
    assert abs(total - float(f_x - f_b)) <= abs(delta) + 1e-5
    assert abs(delta) < 1e-3 * abs(float(f_x - f_b))
    # Tokens after position 4 cannot change its prediction.
    assert result.captum.integrated_gradients[5:].abs().max() == 0.0


def test_integrated_gradients_completeness_on_an_encoder_pair(bert):
    analysis = analyze(bert, "the cat sat on the mat", "a dog slept")
    target = resolve_target(bert, analysis)
    result = attribute(bert, analysis, target, methods=("integrated_gradients",), baseline="zero")
    start = analysis.sentence_b_start
    assert target.pooled_a == tuple(range(start)) and target.pooled_b[-1] == analysis.seq_len - 1
    with torch.no_grad():
        hidden = bert.model(**analysis.model_inputs()).last_hidden_state[0]  # (T, d)
    cosine = torch.cosine_similarity(hidden[:start].mean(0), hidden[start:].mean(0), dim=0)
    assert result.f_input == pytest.approx(float(cosine), abs=1e-5)
    total = float(result.captum.integrated_gradients.sum())
    assert abs(total - (result.f_input - result.f_baseline)) <= abs(result.captum.ig_delta) + 1e-6
    special = [i for i, s in enumerate(analysis.special) if s]
    # [CLS] and [SEP] keep their own embeddings in the baseline: nothing to integrate.
    assert result.captum.integrated_gradients[special].abs().max() == 0.0


def test_input_x_gradient_is_exact_on_a_linear_model():
    weights = torch.tensor([[0.5, -1.0], [2.0, 0.25]])  # (T, d)

    def linear(embeds):  # (B, T, d) -> (B,)
        return (embeds * weights).sum(dim=(1, 2)) + 7.0

    x = torch.tensor([[[1.0, 2.0], [3.0, -1.0]]])
    scores, finished = captum_scores(linear, x, torch.zeros_like(x), steps=4)
    assert finished
    # x·w per token: 0.5 - 2 = -1.5 and 6 - 0.25 = 5.75; IG and occlusion against 0 agree.
    assert scores.input_x_gradient.tolist() == [-1.5, 5.75]
    assert scores.integrated_gradients.tolist() == pytest.approx([-1.5, 5.75], abs=1e-6)
    assert scores.occlusion.tolist() == [-1.5, 5.75]
    assert scores.saliency.tolist() == pytest.approx([1.25**0.5, 4.0625**0.5])
    assert abs(scores.ig_delta) < 1e-5


def chefer_by_hand(attentions, gradients, row):
    """Chefer et al. 2021 eqs. 5-6 written out: Ā = E_h[(∇A ⊙ A)^+], R ← R + Ā·R from R = I."""
    n_layers, n_heads, seq_len, _ = attentions.shape
    relevance = torch.eye(seq_len)
    for layer in range(n_layers):
        mixed = torch.zeros(seq_len, seq_len)
        for head in range(n_heads):
            product = gradients[layer, head] * attentions[layer, head]
            mixed += torch.where(product > 0, product, torch.zeros(())) / n_heads
        relevance = relevance + mixed @ relevance
    return relevance[row]


@pytest.mark.parametrize("which", ["llama", "bert"])
def test_gradient_rollout_equals_the_papers_equations(which, request):
    loaded = request.getfixturevalue(which)
    pair = "a dog slept" if which == "bert" else None
    analysis = analyze(loaded, "the cat sat on the mat", pair)
    target = resolve_target(loaded, analysis)
    result = attribute(loaded, analysis, target, methods=("gradient_rollout",))
    # Attention and its gradient taken here another way: a forward pass from token ids,
    # retain_grad on the attentions the model returns, backward from the target.
    inputs = analysis.model_inputs()
    out = loaded.model(**inputs, output_attentions=True)
    for layer in out.attentions:
        layer.retain_grad()
    hidden = out.last_hidden_state[0] if which == "bert" else None
    if which == "llama":
        value = out.logits[0, target.position, target.token_id]
    else:
        start = analysis.sentence_b_start
        value = torch.cosine_similarity(hidden[:start].mean(0), hidden[start:].mean(0), dim=0)
    value.backward()
    attn = torch.stack([a[0] for a in out.attentions]).detach()  # (L, H, T, T)
    grads = torch.stack([a.grad[0] for a in out.attentions])  # (L, H, T, T)
    # The decoder's target reads its position's row; the encoder's pools every position.
    rows = target.query_positions
    by_hand = torch.stack([chefer_by_hand(attn, grads, i) for i in rows]).mean(0)
    assert torch.allclose(result.attention.gradients, grads, atol=1e-6)
    assert torch.allclose(result.gradient_rollout, by_hand, atol=1e-5)
    assert result.gradient_rollout.abs().sum() > 0
    assert result.attention.gradients.abs().sum() > 0


def test_attention_times_gradient_is_the_analysis_attention_times_its_gradient(llama):
    analysis = analyze(llama, TEXT)
    target = resolve_target(llama, analysis)
    grads = attention_gradients(llama, analysis, target)
    assert grads.product.shape == (2, 4, analysis.seq_len, analysis.seq_len)
    assert torch.equal(grads.product, grads.attentions * grads.gradients)
    assert torch.allclose(grads.attentions, torch.stack(analysis.layer_weights), atol=1e-6)


def test_bad_targets_get_clear_messages(llama, bert):
    decoder = analyze(llama, TEXT)
    with pytest.raises(InputError, match='splits "cat sat" into 2 pieces') as split:
        resolve_target(llama, decoder, token="cat sat")
    assert "「cat sat」" in split.value.localized("ja")
    with pytest.raises(InputError, match="Position 9 is outside") as position:
        resolve_target(llama, decoder, position=9)
    assert "0 から 8" in position.value.localized("ja")
    with pytest.raises(InputError, match="second sentence"):
        resolve_target(bert, analyze(bert, TEXT))
    target = resolve_target(llama, decoder)
    with pytest.raises(InputError, match="from 1 to 512; got 0"):
        attribute(llama, decoder, target, steps=0)
    with pytest.raises(InputError, match="no mask token"):
        attribute(llama, decoder, target, baseline="mask")


def test_a_stop_in_the_middle_keeps_the_methods_done(llama):
    analysis = analyze(llama, TEXT)
    target = resolve_target(llama, analysis)
    asked = []

    def stop_during_integrated_gradients():
        asked.append(1)
        return len(asked) > 4  # saliency and input x gradient pass, IG's batches do not

    seen = []
    result = attribute(
        llama,
        analysis,
        target,
        steps=32,
        progress=lambda done, total: seen.append((done, total)),
        should_stop=stop_during_integrated_gradients,
    )
    assert not result.completed
    assert set(result.scores()) == {"saliency", "input_x_gradient"}
    assert result.captum.integrated_gradients is None and result.zeroing is None
    assert seen[0] == (1, seen[0][1]) and seen[-1][0] < seen[-1][1]


def test_relative_delta_flags_integrated_gradients_that_have_not_converged(llama):
    analysis = analyze(llama, TEXT)
    target = resolve_target(llama, analysis, measure="log_prob", position=4, token="dog")
    rough, fine = (
        attribute(llama, analysis, target, methods=("integrated_gradients",), steps=steps)
        for steps in (1, 64)
    )
    for result in (rough, fine):
        total = float(result.captum.integrated_gradients.sum())
        gap = result.f_input - result.f_baseline
        assert result.captum.ig_delta == pytest.approx(total - gap, abs=1e-5)
        assert result.relative_delta == pytest.approx(abs(total - gap) / abs(gap), abs=1e-4)
    # One Gauss-Legendre point misses the change by 45%; 64 points by about 1e-6.
    assert rough.relative_delta > 0.05 and rough.converged() is False
    assert fine.relative_delta < 1e-4 and fine.converged() is True
    saliency = attribute(llama, analysis, target, methods=("saliency",))
    assert saliency.relative_delta is None and saliency.converged() is None


def test_attention_and_its_gradient_past_the_budget_are_refused_before_any_work(llama):
    analysis = analyze(llama, TEXT)  # 9 tokens, 2 layers x 4 heads
    target = resolve_target(llama, analysis)
    # Attention and its gradient: 2 x 2 x 4 x 9 x 9 float32 = 5184 bytes.
    needed = 2 * 2 * 4 * 9 * 9 * 4
    calls = []
    with pytest.raises(InputError) as refused:
        attribute(
            llama,
            analysis,
            target,
            budget_bytes=needed - 1,
            progress=lambda done, total: calls.append(done),
        )
    assert calls == []  # nothing ran
    error = refused.value
    assert (error.key, error.params) == ("error.attribution_too_long", {"tokens": 9, "limit": 8})
    assert "8 tokens" in str(error) and "9" in str(error)
    assert "8 トークンまで" in error.localized("ja")
    with pytest.raises(InputError):
        attention_gradients(llama, analysis, target, budget_bytes=needed - 1)
    # Exactly the budget, or methods that hold no attention, run.
    fits = attribute(llama, analysis, target, methods=("gradient_rollout",), budget_bytes=needed)
    assert fits.gradient_rollout is not None
    small = attribute(llama, analysis, target, methods=("saliency",), budget_bytes=needed - 1)
    assert small.captum.saliency is not None
