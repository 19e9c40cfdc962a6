"""Rollout on hand-built attention; norm-based attention and the hook registry on tiny models of
every supported family, checked against the attention output the model itself computes."""

from __future__ import annotations

import pytest
import torch

from core import UnsupportedModelError
from core.engine.hooks import (
    ARCHITECTURES,
    HookSet,
    architecture_for,
    count_hooks,
    output_matrix,
    projections,
)
from core.engine.run import analyze
from core.engine.tokenize import tokenize
from core.methods.effective import (
    capture_attention,
    layer_norm_attention,
    norm_based_attention,
    rollout,
    transformed_values,
)
from tests.unit.tiny_models import TINY_MODELS, tiny_bert, tiny_llama

TEXT = "the cat sat on the mat , and it slept ."


@pytest.fixture(scope="module", params=sorted(TINY_MODELS))
def tiny(request):
    return TINY_MODELS[request.param]()


# --- rollout -------------------------------------------------------------------------------------


def test_rollout_of_identity_attention_is_identity():
    eye = torch.eye(5).expand(4, 3, 5, 5)
    assert torch.equal(rollout(eye), torch.eye(5).expand(4, 5, 5))


def test_rollout_by_hand():
    # One layer, two heads averaging to [[1, 0], [0.5, 0.5]]; with the residual:
    # 0.5 * A + 0.5 * I = [[1, 0], [0.25, 0.75]] (rows already sum to 1).
    heads = torch.tensor([[[1.0, 0.0], [1.0, 0.0]], [[1.0, 0.0], [0.0, 1.0]]]).unsqueeze(0)
    first = rollout(heads)
    assert torch.allclose(first, torch.tensor([[[1.0, 0.0], [0.25, 0.75]]]))
    # Two such layers: [[1, 0], [0.25, 0.75]] @ itself = [[1, 0], [0.25 + 0.1875, 0.5625]]
    second = rollout(heads.expand(2, 2, 2, 2))[1]
    assert torch.allclose(second, torch.tensor([[1.0, 0.0], [0.4375, 0.5625]]))


def test_rollout_residual_weights_and_row_sums():
    generator = torch.Generator().manual_seed(1)
    attn = torch.softmax(torch.randn(3, 2, 6, 6, generator=generator), dim=-1)
    copy = attn.clone()
    rolled = rollout(attn)
    assert torch.allclose(rolled.sum(-1), torch.ones(3, 6), atol=1e-6)
    assert torch.equal(attn, copy)
    assert torch.allclose(rollout(attn, residual=1.0), torch.eye(6).expand(3, 6, 6))
    mean = attn.mean(1)  # (L, T, T)
    assert torch.allclose(rollout(attn, residual=0.0)[2], mean[2] @ mean[1] @ mean[0], atol=1e-6)
    with pytest.raises(ValueError, match="residual"):
        rollout(attn, residual=1.5)


# --- transformed values and grouped-query attention ---------------------------------------------


def test_gqa_expansion_follows_transformers_repeat_kv():
    from transformers.models.llama.modeling_llama import repeat_kv

    generator = torch.Generator().manual_seed(2)
    n_heads, n_kv, head_dim, seq_len, hidden = 6, 2, 3, 4, 5
    values = torch.randn(seq_len, n_kv * head_dim, generator=generator)
    w_o = torch.randn(n_heads * head_dim, hidden, generator=generator)
    ours = transformed_values(values, w_o, n_heads=n_heads, n_kv_heads=n_kv)  # (H, T, hidden)
    # transformers: (batch, n_kv, T, d) -> repeat_kv -> (batch, H, T, d)
    states = repeat_kv(values.reshape(1, seq_len, n_kv, head_dim).transpose(1, 2), n_heads // n_kv)
    w = w_o.reshape(n_heads, head_dim, hidden)
    reference = torch.stack([states[0, h] @ w[h] for h in range(n_heads)])
    assert torch.allclose(ours, reference, atol=1e-6)
    # Query heads 0, 1, 2 read KV head 0; 3, 4, 5 read KV head 1 (h // 3), not h % 2.
    for h in range(n_heads):
        kv = values.reshape(seq_len, n_kv, head_dim)[:, h // 3]
        assert torch.allclose(ours[h], kv @ w[h], atol=1e-6)
    assert not torch.allclose(ours[1], values.reshape(seq_len, n_kv, head_dim)[:, 1] @ w[1])


def test_layer_norm_attention_equals_the_norm_of_the_summed_vectors():
    generator = torch.Generator().manual_seed(3)
    attn = torch.softmax(torch.randn(3, 4, 4, generator=generator), dim=-1)  # (H, T, T)
    f = torch.randn(3, 4, 7, generator=generator)  # (H, T, hidden)
    direct = torch.einsum("hij,hje->ije", attn, f).norm(dim=-1)  # builds (T, T, hidden)
    assert torch.allclose(layer_norm_attention(attn, f), direct, atol=1e-5)


# --- the identity on tiny models of every family ------------------------------------------------


def test_norm_vectors_rebuild_the_models_own_attention_output(tiny):
    """For every layer and head, sum_j a_ij f_h(x_j) equals that head's slice of the output
    projection's input times its block of W_O: the model's attention output without the bias."""
    capture = capture_attention(tiny, tokenize(tiny, TEXT).inputs)
    seq_len = capture.attentions.shape[-1]
    for layer in range(tiny.n_layers):
        f = transformed_values(
            capture.values[layer],
            capture.w_o[layer],
            n_heads=tiny.n_heads,
            n_kv_heads=tiny.n_kv_heads,
        )  # (H, T, hidden)
        mixed = torch.einsum("hij,hje->hie", capture.attentions[layer], f)  # (H, T, hidden)
        head_dim = capture.head_outputs[layer].shape[-1] // tiny.n_heads
        per_head = capture.head_outputs[layer].reshape(seq_len, tiny.n_heads, head_dim)
        w = capture.w_o[layer].reshape(tiny.n_heads, head_dim, -1)
        for head in range(tiny.n_heads):
            expected = per_head[:, head] @ w[head]  # (T, hidden)
            assert torch.allclose(mixed[head], expected, atol=1e-5), (layer, head)
        whole = capture.head_outputs[layer] @ capture.w_o[layer]  # o_proj(x) - bias
        assert torch.allclose(mixed.sum(0), whole, atol=1e-5)


def test_norm_based_attention_is_weight_times_vector_norm(tiny):
    result = norm_based_attention(tiny, analyze(tiny, TEXT))
    raw = analyze(tiny, TEXT).attentions
    assert torch.allclose(result.attentions, raw)
    assert torch.allclose(result.norms, raw * result.value_norms[:, :, None, :])
    assert result.norms.shape == raw.shape
    assert result.layer_norms.shape == (tiny.n_layers, raw.shape[-1], raw.shape[-1])
    assert result.tokens == analyze(tiny, TEXT).tokens
    # The layer norm is at most the sum of the heads' norms (triangle inequality).
    assert (result.layer_norms <= result.norms.sum(1) + 1e-5).all()


def test_qwen2_value_bias_is_part_of_f():
    qwen, plain = TINY_MODELS["qwen2"](), TINY_MODELS["qwen2"]()
    v_proj = projections(qwen)[0].value
    assert v_proj.bias is not None and v_proj.bias.abs().sum() > 0
    with torch.no_grad():
        v_proj.bias.zero_()
    # Zeroing b_V changes the norms of f, so the bias was in them.
    assert not torch.allclose(
        norm_based_attention(qwen, analyze(qwen, TEXT)).value_norms[0],
        norm_based_attention(plain, analyze(plain, TEXT)).value_norms[0],
    )


# --- the registry and the hooks ------------------------------------------------------------------


def test_registry_finds_each_familys_modules():
    families = {name: architecture_for(make().model).family for name, make in TINY_MODELS.items()}
    assert families == {
        "bert": "BERT",
        "roberta": "BERT",
        "llama": "Llama",
        "mistral": "Llama",
        "qwen2": "Llama",
        "gpt2": "GPT-2",
    }
    assert set(ARCHITECTURES) == set(TINY_MODELS)
    llama = tiny_llama()
    modules = projections(llama)
    blocks = llama.model.model.layers
    assert [m.value for m in modules] == [block.self_attn.v_proj for block in blocks]
    assert [m.output for m in modules] == [block.self_attn.o_proj for block in blocks]
    assert (modules[0].n_heads, modules[0].n_kv_heads, modules[0].head_dim) == (4, 2, 4)
    bert = tiny_bert()
    layer = bert.model.encoder.layer[1]
    assert projections(bert)[1].value is layer.attention.self.value
    assert projections(bert)[1].output is layer.attention.output.dense
    w = output_matrix(architecture_for(bert.model), layer.attention.output.dense)
    assert torch.equal(w, layer.attention.output.dense.weight.T)


def test_an_unknown_architecture_is_refused_clearly():
    from transformers import DistilBertConfig, DistilBertModel

    config = DistilBertConfig(vocab_size=30, dim=8, n_layers=1, n_heads=2, hidden_dim=16)
    model = DistilBertModel(config)
    with pytest.raises(UnsupportedModelError, match="'distilbert'.*supported: bert, gpt2, llama"):
        architecture_for(model)


def test_hooks_are_removed_when_the_forward_pass_raises(monkeypatch):
    llama = tiny_llama()
    # transformers adds its own output-recording hooks on the first pass that records attentions
    analyze(llama, TEXT, method="all")
    before = count_hooks(llama.model)
    mlp = llama.model.model.layers[1].mlp

    def broken(*args, **kwargs):
        raise RuntimeError("deliberately broken")

    monkeypatch.setattr(mlp, "forward", broken)
    with pytest.raises(RuntimeError, match="deliberately"):
        capture_attention(llama, tokenize(llama, TEXT).inputs)
    assert count_hooks(llama.model) == before


def test_hookset_removes_on_exception():
    layer = torch.nn.Linear(2, 2)
    with pytest.raises(KeyError), HookSet() as hooks:
        hooks.forward(layer, lambda module, args, output: output * 0)
        hooks.forward_pre(layer, lambda module, args: None)
        assert count_hooks(layer) == 2
        raise KeyError("boom")
    assert count_hooks(layer) == 0
