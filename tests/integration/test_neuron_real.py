"""The neuron view on the bundled models: MiniLM (BERT, 12 heads) and SmolLM2 (Llama with RoPE,
9 query heads sharing 3 KV heads). softmax(q·k * scaling + mask) of the captured vectors is the
analysis' attention, every head and query of the layers checked, to 1e-5."""

from __future__ import annotations

import torch

from core import analyze
from core.engine.hooks import count_hooks
from core.methods.neuron import neuron_layer

TEXT = "The animal didn't cross the street because it was too tired."


def check_layer(model, analysis, layer: int) -> None:
    captured = neuron_layer(model, analysis, layer)
    for head in range(model.n_heads):
        for query in range(analysis.seq_len):
            view = captured.view(head, query)
            expected = analysis.head(layer, head)[query]
            assert torch.allclose(view.probabilities, expected, atol=1e-5), (layer, head, query)


def test_minilm(minilm):
    analysis = analyze(minilm, TEXT, "It was very tired.")
    for layer in (0, 3, minilm.n_layers - 1):
        check_layer(minilm, analysis, layer)
    captured = neuron_layer(minilm, analysis, 0)
    assert not captured.rotary and captured.head_dim == 32
    assert captured.scaling == 32**-0.5
    assert count_hooks(minilm.model) == 0


def test_smollm2_gqa_after_rope(smollm2):
    analysis = analyze(smollm2, TEXT)
    for layer in (0, 14, smollm2.n_layers - 1):
        check_layer(smollm2, analysis, layer)
    captured = neuron_layer(smollm2, analysis, 14)
    assert captured.rotary and captured.n_heads == 9 and captured.n_kv_heads == 3
    assert [captured.kv_head(h) for h in range(9)] == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    view = captured.view(4, analysis.seq_len - 1)
    assert view.kv_head == 1 and bool(view.visible.all())
    assert count_hooks(smollm2.model) == 0
