"""The weights download: .npz and .safetensors files load back (with numpy and safetensors' own
readers, no pickle) to the analysis' weights and tokens for the layers and heads chosen, and a
selection over the download budget is refused."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import torch

from core.engine.budget import attention_bytes
from core.engine.export import read_weights_file, weights_file, weights_file_bytes
from core.engine.run import analyze
from core.methods.effective import effective_analysis
from core.policy.errors import InputError
from tests.unit.tiny_models import tiny_bert, tiny_llama

TEXT = "the cat sat on the mat , and it slept ."


@pytest.fixture(scope="module")
def llama_analysis():
    return analyze(tiny_llama(), TEXT)


@pytest.mark.parametrize("fmt", ["npz", "safetensors"])
def test_file_loads_back_to_the_chosen_weights_and_tokens(llama_analysis, fmt):
    layers, heads = [1, 0], [3, 1]
    data = weights_file(llama_analysis, layers, heads, fmt)
    weights, meta = read_weights_file(data, fmt)
    expected = torch.stack([llama_analysis.layer(layer)[heads] for layer in layers]).numpy()
    assert weights.dtype == np.float32 and weights.shape == (2, 2, 11, 11)
    assert np.array_equal(weights, expected)
    assert meta["tokens"] == list(llama_analysis.tokens)
    assert meta["token_ids"] == list(llama_analysis.token_ids)
    assert meta["layers"] == layers and meta["heads"] == heads
    assert meta["model"] == "tiny-llama" and meta["derived_from"] == ""


def test_npz_opens_with_numpy_alone(llama_analysis):
    data = weights_file(llama_analysis, [0], [0, 1, 2, 3], "npz")
    with np.load(io.BytesIO(data), allow_pickle=False) as loaded:
        assert np.array_equal(loaded["attention"][0], llama_analysis.layer(0).numpy())
        assert loaded["tokens"].tolist() == list(llama_analysis.tokens)
        assert str(loaded["model"]) == "tiny-llama"


def test_safetensors_opens_with_safetensors_alone(llama_analysis):
    from safetensors.torch import load

    data = weights_file(llama_analysis, [1], [2], "safetensors")
    tensors = load(data)
    assert torch.equal(tensors["attention"][0, 0], llama_analysis.head(1, 2))
    header = json.loads(data[8 : 8 + int.from_bytes(data[:8], "little")])
    assert json.loads(header["__metadata__"]["tokens"]) == list(llama_analysis.tokens)


def test_over_the_budget_is_refused_with_the_sizes(llama_analysis):
    size = weights_file_bytes(llama_analysis, [0, 1], [0, 1, 2, 3])
    assert size == attention_bytes(2, 4, 11) == 2 * 4 * 11 * 11 * 4
    with pytest.raises(InputError) as refused:
        weights_file(llama_analysis, [0, 1], [0, 1, 2, 3], budget=size - 1)
    assert refused.value.key == "error.weights_too_large"
    assert weights_file(llama_analysis, [0, 1], [0, 1, 2, 3], budget=size)  # exactly fits
    with pytest.raises(InputError):
        weights_file(llama_analysis, [], [0])


def test_a_derived_analysis_says_so_and_has_no_token_ids():
    model = tiny_bert()
    rolled = effective_analysis(model, analyze(model, TEXT), "rollout")
    weights, meta = read_weights_file(weights_file(rolled, [1], [0], "npz"), "npz")
    assert meta["derived_from"] == "rollout" and "token_ids" not in meta
    assert np.array_equal(weights[0, 0], rolled.head(1, 0).numpy())
