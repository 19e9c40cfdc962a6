"""Loading from every kind of source, the SmolLM2 cache, and a clear error for every bad input."""

from __future__ import annotations

import shutil
import time

import pytest

from core import (
    InputError,
    ModelLoadError,
    ModelNotFoundError,
    analyze,
    load_model,
)
from core.engine.devices import pick_device
from core.engine.models import BUILTIN_MODELS, _package_dir


@pytest.fixture(scope="module")
def minilm_folder():
    return _package_dir(BUILTIN_MODELS["minilm"]) / "model"


def test_a_local_folder_loads(minilm_folder, minilm):
    loaded = load_model(str(minilm_folder))
    assert loaded.kind == "encoder" and loaded.n_layers == 6
    text = "Folders work too."
    assert (
        analyze(loaded, text).head_entropy.tolist() == analyze(minilm, text).head_entropy.tolist()
    )


def test_smollm2_is_converted_once_then_read_from_the_cache(tmp_path, monkeypatch, smollm2):
    monkeypatch.setenv("ATTNSCOPE_CACHE_DIR", str(tmp_path))
    messages: list[str] = []
    started = time.perf_counter()
    cold = load_model("smollm2", progress=messages.append)
    cold_seconds = time.perf_counter() - started
    assert any("Converting" in m for m in messages)
    cached = list(tmp_path.glob("models/smollm2-*/model.safetensors"))
    assert len(cached) == 1 and cached[0].stat().st_size > 100_000_000
    assert not list(tmp_path.glob("models/.smollm2-*"))  # no half-written folder left behind

    messages.clear()
    started = time.perf_counter()
    warm = load_model("smollm2", progress=messages.append)
    warm_seconds = time.perf_counter() - started
    assert not any("Converting" in m for m in messages)
    assert warm.source == str(cached[0].parent)
    assert warm_seconds < cold_seconds
    # The cached copy computes exactly what the fresh conversion does.
    text = "Caching keeps the weights."
    assert torch_equal(analyze(cold, text).attentions, analyze(warm, text).attentions)
    assert torch_equal(analyze(smollm2, text).attentions, analyze(warm, text).attentions)


def torch_equal(a, b) -> bool:
    import torch

    return torch.allclose(a, b, atol=1e-6)


@pytest.mark.parametrize("text", ["", "   ", "\n\t "])
def test_empty_text_is_an_input_error(minilm, text):
    with pytest.raises(InputError, match="empty"):
        analyze(minilm, text)


def test_a_pair_for_a_decoder_is_refused(smollm2):
    with pytest.raises(InputError, match="encoder"):
        analyze(smollm2, "One.", "Two.")


@pytest.mark.parametrize("name", ["no-such-owner/no-such-model-xyz", "bert-base-nonexistent"])
def test_unknown_model_id(name):
    with pytest.raises(ModelNotFoundError, match="Could not find"):
        load_model(name)


@pytest.mark.parametrize("name", ["../etc/passwd", "a/b/c", "~nobody/x", "", "  ", "bad id!"])
def test_malformed_model_names_never_reach_the_hub(name):
    with pytest.raises(ModelNotFoundError):
        load_model(name)


def test_a_folder_that_is_not_a_model(tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(ModelNotFoundError, match="no config.json"):
        load_model(str(tmp_path))


def test_a_folder_with_a_broken_config(tmp_path):
    (tmp_path / "config.json").write_text("{ this is not json")
    with pytest.raises(ModelLoadError, match="not valid JSON|Could not load"):
        load_model(str(tmp_path))


def test_a_folder_with_truncated_weights(tmp_path, minilm_folder):
    for name in ("config.json", "tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        shutil.copy(minilm_folder / name, tmp_path / name)
    weights = (minilm_folder / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(weights[: len(weights) // 3])
    with pytest.raises(ModelLoadError, match="Could not load"):
        load_model(str(tmp_path))


def test_device_choice():
    assert pick_device("cpu").type == "cpu"
    assert pick_device(None).type in ("cuda", "mps", "cpu")
    with pytest.raises(InputError):
        pick_device("tpu")
    import torch

    if not torch.cuda.is_available():
        with pytest.raises(InputError, match="not available"):
            pick_device("cuda")
