"""The query-key map against our own projection: q and k recomputed here from the layer's input
(the model's hidden states), its q/k projection weights and, in SmolLM2, RoPE written out by
hand; then AttentionViz's centring and scaling and an SVD. MiniLM (BERT, query/key linears) and
SmolLM2 (Llama: GQA with 9 query heads over 3 key heads, rotary embedding)."""

from __future__ import annotations

import numpy as np
import torch

from core import analyze
from core.engine.hooks import count_hooks
from core.methods.qk_map import qk_map, qk_map_of_analysis

TEXT = "The animal didn't cross the street because it was too tired."
OTHER = "A second text, with commas; and more words than the first one had!"


def own_queries_keys(model, ids: list[int], layer: int, head: int):
    """q ``(T, d)`` of query head ``head`` and k ``(T, d)`` of the key head it reads, from the
    layer's input hidden states and the projection weights (RoPE by hand for Llama)."""
    base = model.model.base_model
    inputs = torch.tensor([ids])
    with torch.inference_mode():
        hidden = base(input_ids=inputs, output_hidden_states=True).hidden_states[layer][0]
        if model.kind == "decoder":  # Llama: pre-norm, then q_proj / k_proj, then RoPE
            block = base.layers[layer]
            x = block.input_layernorm(hidden[None])[0]  # (T, D)
            wq, bq = block.self_attn.q_proj.weight, block.self_attn.q_proj.bias
            wk, bk = block.self_attn.k_proj.weight, block.self_attn.k_proj.bias
        else:  # BERT: post-norm, the layer's input goes straight into query / key
            attention = base.encoder.layer[layer].attention.self
            x = hidden
            wq, bq = attention.query.weight, attention.query.bias
            wk, bk = attention.key.weight, attention.key.bias
        q = x.double() @ wq.double().T + (0 if bq is None else bq.double())  # (T, H d)
        k = x.double() @ wk.double().T + (0 if bk is None else bk.double())  # (T, KV d)
    d = q.shape[1] // model.n_heads
    kv = head // (model.n_heads // model.n_kv_heads)
    q, k = q[:, head * d : (head + 1) * d], k[:, kv * d : (kv + 1) * d]  # (T, d) each
    if model.kind == "decoder":
        config = model.model.config
        rope = getattr(config, "rope_parameters", None) or {}
        theta = rope.get("rope_theta", getattr(config, "rope_theta", None))
        assert rope.get("rope_type", "default") == "default"
        inv_freq = 1.0 / theta ** (torch.arange(0, d, 2, dtype=torch.float64) / d)  # (d/2,)
        angles = torch.arange(len(ids), dtype=torch.float64)[:, None] * inv_freq  # (T, d/2)
        cos, sin = angles.cos().repeat(1, 2), angles.sin().repeat(1, 2)  # (T, d)

        def rotate_half(v):
            return torch.cat([-v[:, d // 2 :], v[:, : d // 2]], dim=1)

        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
    return q, k, kv


def own_map(q: torch.Tensor, k: torch.Tensor):
    """AttentionViz's normalisation and a 2-D PCA by SVD, in float64."""
    k = k - k.mean(0) + q.mean(0)
    s = (k.norm(dim=1).mean() / q.norm(dim=1).mean()).sqrt()
    x = torch.cat([q * s, k / s]).numpy()  # (2N, d)
    centred = x - x.mean(0)
    _, sv, vt = np.linalg.svd(centred, full_matrices=False)
    return x, centred @ vt[:2].T, (sv[:2] ** 2) / (sv**2).sum()


def check(found, q, k) -> None:
    vectors, points, ratio = own_map(q, k)
    assert np.abs(found.vectors - vectors).max() < 1e-5 * max(1.0, np.abs(vectors).max())
    for axis in range(2):  # PCA's sign is arbitrary
        sign = np.sign(found.points[:, axis] @ points[:, axis])
        assert np.allclose(found.points[:, axis], sign * points[:, axis], atol=1e-3)
    assert np.allclose(found.explained_variance, ratio, atol=1e-5)


def test_minilm_current_text(minilm):
    analysis = analyze(minilm, TEXT)
    found = qk_map_of_analysis(minilm, analysis, layer=2, head=5)
    q, k, _ = own_queries_keys(minilm, list(analysis.token_ids), 2, 5)
    check(found, q, k)
    n = analysis.seq_len
    assert found.points.shape == (2 * n, 2) and found.kind == ("query",) * n + ("key",) * n
    assert found.token[:n] == analysis.tokens and found.position[:n].tolist() == list(range(n))
    assert found.token_type[0] == "special" and found.token_type[n - 2] == "punct"
    assert found.context[1].startswith("[CLS] [The] animal") and not found.rotary
    assert count_hooks(minilm.model) == 0


def test_smollm2_gqa_after_rope_over_sampled_texts(smollm2):
    head = 7  # 9 query heads over 3 key heads: reads key head 2
    found = qk_map(smollm2, [TEXT, OTHER], layer=9, head=head, max_tokens=20, seed=3)
    assert found.rotary and found.kv_head == 2 and found.n_tokens == 20
    q_parts, k_parts = [], []
    for text_index, position in zip(found.text_index[:20], found.position[:20], strict=True):
        ids = list(analyze(smollm2, [TEXT, OTHER][text_index]).token_ids)
        q, k, kv = own_queries_keys(smollm2, ids, 9, head)
        q_parts.append(q[position])
        k_parts.append(k[position])
    assert kv == 2
    check(found, torch.stack(q_parts), torch.stack(k_parts))
    again = qk_map(smollm2, [TEXT, OTHER], layer=9, head=head, max_tokens=20, seed=3)
    assert np.array_equal(again.points, found.points)  # seeded
    assert count_hooks(smollm2.model) == 0
