"""Shared test set-up: offline Hugging Face, a repo-local model cache, real models per session."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Before anything imports huggingface_hub: a model id that is not cached must fail at once, not
# after half a minute of retries against a network this machine does not have.
os.environ["HF_HUB_OFFLINE"] = "1"
# SmolLM2's GGUF is converted once per checkout, then every test (and the app under test) reads it.
os.environ.setdefault("ATTNSCOPE_CACHE_DIR", str(ROOT / ".cache" / "attnscope"))


@pytest.fixture(scope="session")
def minilm():
    from core import load_model

    return load_model("minilm")


@pytest.fixture(scope="session")
def smollm2():
    from core import load_model

    return load_model("smollm2")


@pytest.fixture(scope="session", params=["minilm", "smollm2"])
def any_model(request):
    return request.getfixturevalue(request.param)
