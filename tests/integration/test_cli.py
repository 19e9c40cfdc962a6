"""The command line prints the same numbers as the Python API, and fails without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from core import analyze

ROOT = Path(__file__).resolve().parents[2]
TEXT = "Attention is all you need, 日本語も。"


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "core", *args], cwd=ROOT, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize("fixture", ["minilm", "smollm2"])
def test_json_equals_the_python_api(fixture, request):
    loaded = request.getfixturevalue(fixture)
    out = run_cli("analyze", TEXT, "--model", fixture, "--top-k", "3", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    expected = analyze(loaded, TEXT).to_dict(top_k=3)
    assert data["tokens"] == expected["tokens"]
    assert [[r["position"] for r in layer] for layer in data["most_attended"]] == [
        [r["position"] for r in layer] for layer in expected["most_attended"]
    ]
    for key in ("head_entropy", "normalized_head_entropy"):
        for got_row, want_row in zip(data[key], expected[key], strict=True):
            assert got_row == pytest.approx(want_row, abs=1e-6)
    assert data["layer_entropy"] == pytest.approx(expected["layer_entropy"], abs=1e-6)
    assert len(data["head_entropy"]) == loaded.n_layers
    assert len(data["head_entropy"][0]) == loaded.n_heads


def test_pair_and_tables(minilm):
    out = run_cli("analyze", "The cat sat.", "--pair", "A dog slept.", "--top-k", "2")
    assert out.returncode == 0, out.stderr
    assert "head entropy (nats)" in out.stdout
    assert "most attended tokens (top 2 per layer" in out.stdout
    assert "[SEP]" in out.stdout and "dog" in out.stdout
    expected = analyze(minilm, "The cat sat.", "A dog slept.")
    assert f"{expected.layer_entropy[0].item():.4f}" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "   "], "empty"),
        (["analyze", "x", "--model", "../../no-such-folder"], "neither a built-in"),
        (["analyze", "x", "--model", "nobody/nothing-here"], "Could not find"),
        (["analyze", "x", "--model", "smollm2", "--pair", "y"], "encoder"),
        (["analyze", "x", "--top-k", "0"], "top-k"),
    ],
)
def test_errors_are_one_line_with_status_2(args, message):
    out = run_cli(*args)
    assert out.returncode == 2
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_models_listing():
    out = run_cli("models")
    assert out.returncode == 0
    assert "minilm" in out.stdout and "smollm2" in out.stdout
