"""Head ablation on tiny models: exact equivalences with zeroed weights and zeroed outputs, no-op
ablation, KL and cosine against direct computation, ranking, cancellation and hook clean-up."""

from __future__ import annotations

import copy

import pytest
import torch

from core import InputError, analyze
from core.engine.hooks import HookSet, architecture_for, count_hooks, projections
from core.engine.tokenize import tokenize
from core.methods.ablation import (
    ablate_heads,
    ablation_effect,
    cosine_similarity,
    kl_divergence,
    mean_pool,
    rank_heads,
    ranking_baseline,
)
from tests.unit.tiny_models import TINY_MODELS, tiny_bert, tiny_llama

TEXT = "the cat sat on the mat , and it slept"


def run(loaded, text=TEXT, pair=None):
    """The model's full output: logits (decoders) or the last hidden state (encoders)."""
    tokenized = tokenize(loaded, text, pair)
    inputs = tokenized.inputs
    with torch.inference_mode():
        if loaded.kind == "decoder":
            return loaded.model(**inputs, use_cache=False).logits[0]
        return loaded.model(**inputs).last_hidden_state[0]


@pytest.fixture(scope="module", params=["bert", "llama", "gpt2"])
def tiny(request):
    return TINY_MODELS[request.param]()


def test_ablating_every_head_of_a_layer_equals_zeroing_its_attention_output(tiny):
    """All heads ablated -> the output projection's input is 0, so its output is its bias: BERT's
    ``attention.output.dense`` and GPT-2's ``c_proj`` give exactly the bias, Llama's ``o_proj``
    (no bias) exactly 0. The reference replaces the projection's output by that directly."""
    for layer in range(tiny.n_layers):
        output = projections(tiny)[layer].output
        bias = output.bias
        assert (bias is None) == (tiny.model.config.model_type == "llama")

        def attention_output_is_bias(module, args, out, bias=bias):
            return torch.zeros_like(out) if bias is None else torch.zeros_like(out) + bias

        with HookSet() as hooks:
            hooks.forward(output, attention_output_is_bias)
            reference = run(tiny)
        with ablate_heads(tiny, [(layer, h) for h in range(tiny.n_heads)]):
            ablated = run(tiny)
        assert torch.equal(ablated, reference)
        assert not torch.allclose(ablated, run(tiny))  # and it did change something


def test_ablating_one_head_equals_zeroing_its_block_of_w_o(tiny):
    layer, head = 1, 1
    modules = projections(tiny)[layer]
    d = modules.head_dim
    edited = copy.deepcopy(tiny)
    with torch.no_grad():
        weight = projections(edited)[layer].output.weight
        if architecture_for(tiny.model).weight_in_out:  # Conv1D: (in, out)
            weight[head * d : (head + 1) * d, :] = 0.0
        else:  # Linear: (out, in)
            weight[:, head * d : (head + 1) * d] = 0.0
    with ablate_heads(tiny, [(layer, head)]):
        ablated = run(tiny)
    assert torch.allclose(ablated, run(edited), atol=1e-6)


def test_ablating_no_heads_changes_nothing(tiny):
    effect = ablation_effect(tiny, analyze(tiny, TEXT), [])
    assert effect.heads == ()
    assert effect.importance == 0.0
    if tiny.kind == "decoder":
        assert effect.kl_divergence == 0.0
        assert effect.top_before == effect.top_after and len(effect.top_before) == 5
        assert effect.cosine_similarity is None
    else:
        assert effect.cosine_similarity == pytest.approx(1.0, abs=1e-12)
        assert effect.kl_divergence is None and effect.top_before == ()


def test_decoder_effect_equals_direct_kl_and_top_tokens():
    llama = tiny_llama()
    heads = [(0, 1), (1, 3)]
    before = torch.log_softmax(run(llama)[-1], -1)
    with ablate_heads(llama, heads):
        after = torch.log_softmax(run(llama)[-1], -1)
    effect = ablation_effect(llama, analyze(llama, TEXT), heads, top_k=3)
    direct = torch.nn.functional.kl_div(after, before, log_target=True, reduction="sum")
    assert effect.kl_divergence == pytest.approx(direct.item(), rel=1e-5)
    assert effect.kl_divergence > 1e-4
    assert effect.metric == "kl" and effect.importance == effect.kl_divergence
    probs, ids = before.exp().topk(3)
    assert [t.token_id for t in effect.top_before] == ids.tolist()
    assert [t.prob for t in effect.top_before] == pytest.approx(probs.tolist(), abs=1e-6)
    assert [t.token for t in effect.top_before] == [llama.tokenizer.decode([i]) for i in ids]
    assert [t.token_id for t in effect.top_after] == after.exp().topk(3).indices.tolist()
    assert effect.heads == ((0, 1), (1, 3))


def test_encoder_effect_equals_direct_cosine_with_a_pair():
    bert = tiny_bert()
    heads = [(1, 0)]
    before = run(bert, "the cat sat", "a dog slept").mean(0)
    with ablate_heads(bert, heads):
        after = run(bert, "the cat sat", "a dog slept").mean(0)
    effect = ablation_effect(bert, analyze(bert, "the cat sat", "a dog slept"), heads)
    direct = torch.nn.functional.cosine_similarity(before, after, dim=0).item()
    assert effect.cosine_similarity == pytest.approx(direct, abs=1e-6)
    assert effect.cosine_similarity < 1.0 - 1e-6
    assert effect.metric == "1 - cosine"
    assert effect.importance == pytest.approx(1 - direct, abs=1e-6)


def test_rank_heads_matches_one_ablation_per_head_and_reports_progress(tiny):
    calls: list[tuple[int, int]] = []
    ranking = rank_heads(
        tiny,
        analyze(tiny, TEXT),
        progress=lambda done, total: calls.append((done, total)),
        batch_size=1,
    )
    total = tiny.n_layers * tiny.n_heads
    assert calls == [(k, total) for k in range(1, total + 1)]
    assert ranking.completed and ranking.n_done == ranking.n_total == total
    assert ranking.importance.shape == (tiny.n_layers, tiny.n_heads)
    for layer in range(tiny.n_layers):
        for head in range(tiny.n_heads):
            single = ablation_effect(tiny, analyze(tiny, TEXT), [(layer, head)]).importance
            assert ranking.importance[layer, head].item() == pytest.approx(single, abs=1e-9)
    ranked = ranking.ranked()
    assert [value for *_, value in ranked] == sorted(ranking.importance.flatten().tolist())[::-1]
    assert ranking.metric == ("kl" if tiny.kind == "decoder" else "1 - cosine")


def test_rank_heads_can_be_stopped_and_limited_to_layers():
    llama = tiny_llama()
    asked = []

    def stop_after_three():
        asked.append(1)
        return len(asked) > 3

    stopped = rank_heads(llama, analyze(llama, TEXT), should_stop=stop_after_three, batch_size=1)
    assert not stopped.completed and stopped.n_done == 3 and stopped.n_total == 8
    assert not torch.isnan(stopped.importance[0, :3]).any()
    assert torch.isnan(stopped.importance[0, 3:]).all() and torch.isnan(stopped.importance[1]).all()
    assert len(stopped.ranked()) == 3

    second = rank_heads(llama, analyze(llama, TEXT), layers=[1], batch_size=1)
    assert second.completed and second.n_total == 4
    assert torch.isnan(second.importance[0]).all() and not torch.isnan(second.importance[1]).any()


def test_ranking_layer_by_layer_from_one_baseline_equals_ranking_all_at_once(tiny):
    """The app ranks one layer per slot from one unablated pass; the result is the whole run's."""
    whole = rank_heads(tiny, analyze(tiny, TEXT), batch_size=1)
    baseline = ranking_baseline(tiny, analyze(tiny, TEXT))
    assert baseline.before.shape[0] == 1
    for layer in range(tiny.n_layers):
        part = rank_heads(
            tiny,
            analyze(tiny, "ignored: the baseline's inputs are used"),
            layers=[layer],
            baseline=baseline,
            batch_size=1,
        )
        assert torch.equal(part.importance[layer], whole.importance[layer])


def test_batched_ranking_equals_one_pass_per_head(tiny):
    """Batches of 3 copies of the text, each with its own head ablated, give the values of one
    pass per head (up to float rounding); progress and stopping go batch by batch."""
    single = rank_heads(tiny, analyze(tiny, TEXT), batch_size=1)
    calls: list[int] = []
    batched = rank_heads(
        tiny, analyze(tiny, TEXT), batch_size=3, progress=lambda done, total: calls.append(done)
    )
    total = tiny.n_layers * tiny.n_heads
    assert calls == [*range(3, total, 3), total]
    assert torch.allclose(batched.importance, single.importance, rtol=1e-3, atol=1e-6)
    assert not torch.isnan(batched.importance).any()
    seen: list[int] = []
    stopped = rank_heads(
        tiny,
        analyze(tiny, TEXT),
        batch_size=3,
        progress=lambda done, total: seen.append(done),
        should_stop=lambda: bool(seen),  # stop once the first batch is in
    )
    assert seen == [3] and stopped.n_done == 3 and not stopped.completed
    assert torch.equal(stopped.importance.flatten()[:3], batched.importance.flatten()[:3])


@pytest.mark.parametrize("heads", [[(2, 0)], [(0, 4)], [(-1, 0)]])
def test_heads_out_of_range_are_input_errors(heads):
    with pytest.raises(InputError, match="layers 0-1 with heads 0-3"):
        llama = tiny_llama()
        ablation_effect(llama, analyze(llama, TEXT), heads)


def test_hooks_are_removed_when_the_forward_raises(monkeypatch):
    llama = tiny_llama()
    run(llama)  # transformers adds its own output-recording hooks on the first pass
    before = count_hooks(llama.model)

    def broken(*args, **kwargs):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(llama.model.model.layers[1].mlp, "forward", broken)
    with pytest.raises(RuntimeError, match="deliberately"):
        ablation_effect(llama, analyze(llama, TEXT), [(0, 0), (1, 2)])
    assert count_hooks(llama.model) == before
    with pytest.raises(RuntimeError, match="deliberately"):
        rank_heads(llama, analyze(llama, TEXT))
    assert count_hooks(llama.model) == before
    with pytest.raises(ZeroDivisionError), ablate_heads(llama, [(0, 0)]):
        assert count_hooks(llama.model) == before + 1
        _ = 1 / 0
    assert count_hooks(llama.model) == before


def test_the_projection_input_itself_is_not_modified():
    llama = tiny_llama()
    o_proj = projections(llama)[0].output
    seen = []
    with HookSet() as hooks:
        hooks.forward_pre(o_proj, lambda module, args: seen.append(args[0]))  # runs first
        with ablate_heads(llama, [(0, h) for h in range(4)]):
            run(llama)
    assert seen[0].abs().sum() > 0


def test_measures_by_hand():
    p = torch.log(torch.tensor([0.5, 0.25, 0.25]))
    q = torch.log(torch.tensor([0.25, 0.25, 0.5]))
    # 0.5 ln 2 + 0 + 0.25 ln 0.5 = 0.25 ln 2
    assert kl_divergence(p, q).item() == pytest.approx(0.25 * torch.log(torch.tensor(2.0)).item())
    hidden = torch.tensor([[2.0, 0.0], [0.0, 2.0], [100.0, 100.0]])
    assert mean_pool(hidden, torch.tensor([1, 1, 0])).tolist() == [1.0, 1.0]
    assert mean_pool(hidden).tolist() == pytest.approx([34.0, 34.0])
    assert cosine_similarity(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 3.0])) == 0.0
