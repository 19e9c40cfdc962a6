"""Bring your own model from a user's file: refused in demo mode and without the remote-code
switch (before any of its code runs), loaded under the contract otherwise, and turned into a
derived analysis that the heatmaps, the head view payload and the head statistics read."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import torch

from core.engine.byo import load_user_model, require_user_code, user_analysis
from core.methods.head_stats import HeadStats
from core.policy.errors import InputError
from core.policy.settings import DEMO, LOCAL
from tests.unit import byo_models
from tests.unit.byo_models import build, encode
from viz.attention_view import SCALE, decode_payload, encode_head_view
from viz.heatmaps import head_heatmap

SOURCE = Path(byo_models.__file__).read_text(encoding="utf-8")
TEXT = "the cat sat on the mat"
# Would record that it ran: a refused file must never get this far.
SIDE_EFFECT = SOURCE + "\nimport tests.unit.byo_models as m\nm.RAN.append(1)\n"


@pytest.fixture(scope="module")
def analysis():
    user = load_user_model(SOURCE, settings=LOCAL, trusted=True, file_name="nanogpt.py")
    return user_analysis(user, TEXT, max_tokens=64)


def test_the_file_runs_into_a_derived_analysis_equal_to_the_explicit_attention(analysis):
    assert (analysis.n_layers, analysis.n_heads, analysis.seq_len) == (3, 4, len(TEXT))
    assert analysis.tokens == tuple(TEXT) and analysis.token_ids == tuple(encode(TEXT))
    assert analysis.kind == "decoder" and analysis.derived_from == "byo"
    assert not analysis.runnable and analysis.model_name.startswith("nanogpt.py#")
    model = build().eval()  # the same seed: the same weights
    model.set_explicit(True)
    with torch.inference_mode():
        model(torch.tensor([encode(TEXT)]))
    for layer, block in enumerate(model.h):
        assert torch.allclose(analysis.layer(layer), block.attn.last_att[0], atol=1e-6, rtol=0)


def test_the_views_read_the_captured_analysis(analysis):
    # heatmap: the figure's z is the head's weights
    figure = head_heatmap(analysis, 1, 2)
    z = figure.data[0].z
    assert torch.allclose(torch.as_tensor(z, dtype=torch.float32), analysis.head(1, 2), atol=1e-6)
    # head view payload: every head of the layer, 16-bit fixed point
    header, blobs = decode_payload(encode_head_view(analysis, 0).data)
    assert header["tokens"] == list(TEXT) and header["causal"] is True
    weights = torch.from_numpy(blobs["weights"].astype("float32")) / SCALE  # (H, T, T)
    assert torch.allclose(weights, analysis.layer(0), atol=1 / SCALE)
    # head statistics equal those of the explicit weights, computed independently
    stats = HeadStats.from_analysis(analysis)
    expected = HeadStats.from_attentions(analysis.attentions, list(TEXT), causal=True)
    assert torch.equal(stats.previous_token, expected.previous_token)
    diagonal = torch.diagonal(analysis.attentions, offset=-1, dim1=-2, dim2=-1)  # (L, H, T-1)
    # previous-token share (Clark et al. 2019): mean over the T - 1 queries i >= 1 of a[i, i-1]
    by_hand = diagonal.sum(-1) / (analysis.seq_len - 1)
    assert torch.allclose(stats.previous_token, by_hand, atol=1e-6)


@pytest.mark.parametrize(
    ("settings", "trusted", "key"),
    [
        (DEMO, True, "error.byo_demo"),
        (DEMO, False, "error.byo_demo"),
        (replace(LOCAL, allow_remote_code=False), True, "error.byo_not_allowed"),
        (LOCAL, False, "error.byo_switch_off"),
    ],
)
def test_user_code_is_refused_before_it_runs(settings, trusted, key):
    byo_models.RAN = []
    with pytest.raises(InputError) as refused:
        load_user_model(SIDE_EFFECT, settings=settings, trusted=trusted)
    assert refused.value.key == key
    assert byo_models.RAN == []  # not one line of the file ran
    english, japanese = refused.value.localized("en"), refused.value.localized("ja")
    assert english and japanese and english != japanese and "⟦" not in english + japanese
    with pytest.raises(InputError):
        require_user_code(settings, trusted=trusted)


def test_the_switch_on_a_local_server_runs_it():
    byo_models.RAN = []
    load_user_model(SIDE_EFFECT, settings=LOCAL, trusted=True)
    assert byo_models.RAN == [1]


@pytest.mark.parametrize(
    ("source", "key"),
    [
        ("x = 1\n", "error.byo_no_build"),
        ("def build():\n    raise ValueError('no weights')\n", "error.byo_build"),
        ("def build():\n    return 3\n", "error.byo_not_module"),
        ("import not_a_module_anywhere\n", "error.byo_import"),
        ("  \n", "error.byo_empty"),
        (b"\xff\xfe", "error.byo_not_utf8"),
    ],
)
def test_broken_files_are_named_errors(source, key):
    with pytest.raises(InputError) as failed:
        load_user_model(source, settings=LOCAL, trusted=True)
    assert failed.value.key == key


NO_ATTENTION = """
import torch
def build():
    return torch.nn.Embedding(300, 4)
"""
MULTIHEAD = """
import torch
from tests.unit.byo_models import MHAModel, decode, encode
def build():
    torch.manual_seed(2)
    return MHAModel()
"""


def test_default_characters_and_no_attention():
    user = load_user_model(NO_ATTENTION, settings=LOCAL, trusted=True)
    assert list(user.encode("aé")) == [97, 233] and user.labels([97, 233], "aé") == ["a", "é"]
    with pytest.raises(InputError) as failed:
        user_analysis(user, "hello", max_tokens=16)
    assert failed.value.key == "error.byo_no_attention"


def test_a_multihead_attention_model_from_a_file():
    user = load_user_model(MULTIHEAD, settings=LOCAL, trusted=True, file_name="mha.py")
    result = user_analysis(user, "abcdefgh", max_tokens=6)  # truncated to 6 tokens
    assert (result.n_layers, result.n_heads, result.seq_len) == (3, 2, 6)
    assert result.truncated and result.n_input_tokens == 8
    assert result.kind == "encoder"  # the first and third layers see every token
    assert result.layer(1).triu(1).abs().max() == 0  # the second is masked causally
    assert torch.allclose(result.attentions.sum(-1), torch.ones(3, 2, 6), atol=1e-6)
