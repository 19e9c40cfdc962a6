"""The query-key map's normalisation and figure, on hand-built vectors and a tiny Llama (GQA)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from core.engine.hooks import count_hooks
from core.methods.qk_map import QKMap, normalise, qk_map, token_types
from viz.qk_map import qk_map_figure, qk_map_frame


def test_normalise_keeps_every_attention_weight():
    generator = torch.Generator().manual_seed(0)
    q = torch.randn(7, 4, generator=generator) * 3 + 1
    k = torch.randn(5, 4, generator=generator) * 0.5 - 2
    q2, k2, s = normalise(q, k)
    # centroids coincide before scaling: mean(k') = mean(q), so mean(k2) * s = mean(q2) / s
    assert torch.allclose(k2.mean(0) * s, q2.mean(0) / s, atol=1e-5)
    assert q2.norm(dim=1).mean().item() == pytest.approx(k2.norm(dim=1).mean().item(), rel=1e-5)
    before = torch.softmax(q @ k.T, dim=1)  # (7, 5): each query's attention over the keys
    after = torch.softmax(q2 @ k2.T, dim=1)
    assert torch.allclose(before, after, atol=1e-5)


def test_token_types():
    assert token_types(["<s>", "Hi", ",", "you", "…", "。"], [True] + [False] * 5) == (
        "special",
        "word",
        "punct",
        "word",
        "punct",
        "punct",
    )


def small_map() -> QKMap:
    return QKMap(
        layer=1,
        head=2,
        kv_head=0,
        rotary=True,
        points=np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 2.0], [3.0, 1.0]], np.float32),
        vectors=np.zeros((4, 2), np.float32),
        kind=("query", "query", "key", "key"),
        token=("<img src=x>", "b", "<img src=x>", "b"),
        position=np.array([0, 1, 0, 1]),
        text_index=np.array([0, 0, 0, 0]),
        token_type=("special", "word", "special", "word"),
        context=("[<img src=x>] b", "<img src=x> [b]") * 2,
        explained_variance=np.array([0.75, 0.25], np.float32),
        scale=1.0,
        n_texts=1,
    )


@pytest.mark.parametrize("lang", ["en", "ja"])
def test_figure_colours_and_escapes(lang):
    qk = small_map()
    by_kind = qk_map_figure(qk, "kind", lang)
    assert [len(trace.x) for trace in by_kind.data] == [2, 2]
    assert list(by_kind.data[1].x) == [2.0, 3.0]  # the keys
    for trace in by_kind.data:
        assert all("<img" not in text and "&lt;img src=x&gt;" in text for text in trace.text)
    by_type = qk_map_figure(qk, "token_type", lang)
    assert [list(trace.x) for trace in by_type.data] == [[0.0, 2.0], [1.0, 3.0]]
    by_position = qk_map_figure(qk, "position", lang)
    assert list(by_position.data[0].marker.color) == [0, 1]
    assert by_position.data[1].marker.symbol == "diamond"
    assert "75.0" in by_kind.layout.title.text and "25.0" in by_kind.layout.title.text
    assert len(qk_map_frame(qk, lang=lang)) == 4
    with pytest.raises(ValueError):
        qk_map_figure(qk, "colour", lang)


def test_tiny_llama_gqa_key_head_and_sampling():
    from tests.unit.tiny_models import tiny_llama

    loaded = tiny_llama()
    texts = ["the cat sat on the mat", "a dog ran", "the end"]
    found = qk_map(loaded, texts, layer=0, head=loaded.n_heads - 1, max_tokens=6, seed=1)
    group = loaded.n_heads // loaded.n_kv_heads
    assert found.kv_head == (loaded.n_heads - 1) // group and found.rotary
    assert found.n_tokens == 6 and found.points.shape == (12, 2)
    assert found.kind[:6] == ("query",) * 6 and found.token[:6] == found.token[6:]
    assert set(found.text_index.tolist()) <= {0, 1, 2}
    assert found.explained_variance.sum() <= 1.0 + 1e-6
    assert count_hooks(loaded.model) == 0
