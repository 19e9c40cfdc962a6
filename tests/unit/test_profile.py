"""The profiler on tiny models: a row for every layer, operator times that add up, a Chrome trace
that is JSON with traceEvents (its temporary file gone), hooks always removed, and peak memory
that grows with the number of tokens."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import pytest
import torch

from core import analyze
from core.engine.hooks import count_hooks
from core.methods.profile import _layer_scopes, doubling_lengths, length_curve, profile_forward
from tests.unit.tiny_models import tiny_bert, tiny_gpt2
from viz.profile import layers_frame, length_figure, lengths_frame, operators_frame

REPEATS = 2


@pytest.fixture(scope="module", params=[tiny_bert, tiny_gpt2], ids=["bert", "gpt2"])
def profiled(request):
    loaded = request.param()
    analysis = analyze(loaded, "the cat sat on the mat")
    traces_before = set(Path(tempfile.gettempdir()).glob("attnscope-trace-*"))
    result = profile_forward(loaded, analysis, repeats=REPEATS)
    traces_after = set(Path(tempfile.gettempdir()).glob("attnscope-trace-*"))
    return loaded, analysis, result, traces_after - traces_before


def test_every_layer_has_a_row(profiled):
    loaded, analysis, result, _ = profiled
    assert [row.layer for row in result.layers] == list(range(loaded.n_layers))
    assert all(row.calls == REPEATS for row in result.layers)
    expected = "BertLayer" if loaded.kind == "encoder" else "GPT2Block"
    assert {row.module for row in result.layers} == {expected}
    assert sum(row.cpu_total_us for row in result.layers) <= result.forward_cpu_us
    assert all(0 < row.share <= 1 for row in result.layers)
    assert result.seq_len == analysis.seq_len and result.device == "cpu"
    assert count_hooks(loaded.model) == 0


def test_operator_times_add_up(profiled):
    loaded, _, result, _ = profiled
    self_total = sum(row.cpu_self_us for row in result.operators)
    assert 0 < self_total <= result.forward_cpu_us * (1 + 1e-9)
    assert all(row.cpu_self_us <= row.cpu_total_us + 1e-6 for row in result.operators)
    selfs = [row.cpu_self_us for row in result.operators]
    assert selfs == sorted(selfs, reverse=True)
    by_name = {row.name: row for row in result.operators}
    # eager attention: one softmax per layer and pass
    assert by_name["aten::softmax"].calls == loaded.n_layers * REPEATS
    assert not any(name.startswith("attnscope::") for name in by_name)
    assert result.peak_bytes > 0 and result.memory_source == "profiler_cpu_allocations"


def test_the_chrome_trace_is_json_and_its_file_is_gone(profiled):
    _, _, result, leftover = profiled
    trace = json.loads(result.trace)
    names = {event.get("name") for event in trace["traceEvents"]}
    assert {"attnscope::forward", "attnscope::layer 0", "aten::softmax"} <= names
    assert leftover == set()


def test_layer_scopes_are_closed_and_hooks_removed_when_the_pass_raises():
    loaded = tiny_gpt2()
    blocks = list(loaded.model.transformer.h)

    def broken(module, args):
        raise RuntimeError("mid-pass")

    handle = blocks[1].register_forward_pre_hook(broken)
    try:
        with pytest.raises(RuntimeError), torch.inference_mode(), _layer_scopes(blocks):
            loaded.model(input_ids=torch.tensor([[4, 5, 6]]))  # layer 0 ran, layer 1 raised
    finally:
        handle.remove()
    assert count_hooks(loaded.model) == 0


def test_length_curve_grows_with_tokens():
    loaded = tiny_gpt2()
    analysis = analyze(loaded, "the cat sat")
    curve = length_curve(loaded, analysis, start=4, max_tokens=32, repeats=1)
    assert [p.seq_len for p in curve.points] == [4, 8, 16, 32] == list(doubling_lengths(4, 32))
    peaks = [p.peak_bytes for p in curve.points]
    assert all(a < b for a, b in zip(peaks, peaks[1:], strict=False))  # more tokens, more memory
    assert all(p.seconds > 0 for p in curve.points)
    figure = length_figure(curve, lang="ja")
    assert list(figure.data[0].x) == [4, 8, 16, 32]
    assert list(figure.data[1].y) == [peak / 2**20 for peak in peaks]
    assert lengths_frame(curve).iloc[:, 0].tolist() == [4, 8, 16, 32]


def test_tables_show_cuda_columns_only_on_a_gpu(profiled):
    _, _, result, _ = profiled
    assert "CUDA total (ms)" not in operators_frame(result).columns
    layers = layers_frame(result, lang="ja")
    assert list(layers["層"]) == list(range(len(result.layers)))
