"""The Jupyter widgets on hand-built attention: they carry the app's bytes, follow a selection
sent from the page as the app does, and load the app's drawing code with their own entry."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from core.engine.analysis import Analysis, LayerNotHeldError
from viz.attention_view import decode_payload, encode_head_view, encode_model_view, view_assets
from viz.notebook import head_view, model_view


def make_result(seq_len=5, n_layers=3, n_heads=4) -> Analysis:
    torch.manual_seed(0)
    attn = torch.softmax(torch.randn(n_layers, n_heads, seq_len, seq_len) * 3, dim=-1)
    return Analysis.from_attentions(attn, ["猫", "が", "い", "る", "。"][:seq_len], kind="encoder")


def test_head_view_holds_the_apps_bytes_and_follows_the_layer():
    result = make_result()
    view = head_view(result, layer=1)
    assert view.view == "head" and view.layer == 1 and view.heads == [0, 1, 2, 3]
    assert view.payload == encode_head_view(result, 1).data
    view.layer = 2  # from Python, or from the page
    assert view.payload == encode_head_view(result, 2).data
    assert decode_payload(view.payload)[0]["tokens"] == ["猫", "が", "い", "る", "。"]
    assert head_view(result, heads=[3, 1]).heads == [1, 3]


def test_a_click_on_the_page_reaches_python():
    result = make_result()
    view = head_view(result, layer=0)
    before = view.payload
    view.set_state({"layer": 0, "head": 2, "heads": [0, 1, 3]})  # what the JS sends
    assert (view.layer, view.head, view.heads) == (0, 2, [0, 1, 3])
    assert view.payload == before  # same layer: nothing to re-send

    grid = model_view(result)
    assert (grid.layer, grid.head) == (None, None)
    assert grid.payload == encode_model_view(result).data
    grid.set_state({"layer": 2, "head": 1})  # a thumbnail clicked
    assert grid.payload == encode_model_view(result, (2, 1)).data  # opened, as in the app
    assert decode_payload(grid.payload)[1]["detail"].shape == (1, 5, 5)


def test_a_layer_the_analysis_does_not_hold_is_an_error_that_says_so():
    result = make_result()
    thin = replace(result, layer_weights=(result.layer(0), None, result.layer(2)))
    assert head_view(thin, layer=2).payload == encode_head_view(result, 2).data
    with pytest.raises(LayerNotHeldError, match="1"):  # with_layers recomputes it
        head_view(thin, layer=1)


def test_the_widget_module_is_the_apps_drawing_code_with_its_own_entry():
    app_js, app_css = view_assets("streamlit")
    widget_js, widget_css = view_assets("notebook")
    assert widget_css == app_css
    assert app_js.count("function drawAttentionView(") == 1
    assert widget_js.count("function drawAttentionView(") == 1
    assert app_js.rstrip().endswith("export default drawAttentionView;")
    assert widget_js.rstrip().endswith("export default { render };")
    assert widget_js.count("export default") == 1 and app_js.count("export default") == 1
    assert "innerHTML" not in widget_js and "eval(" not in widget_js
