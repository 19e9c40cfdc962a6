"""BertViz HTML: vendored scripts inlined, nothing fetched, token text cannot become markup."""

from __future__ import annotations

import hashlib
import re

import pytest
import torch

from core.engine.analysis import Analysis
from viz.bertviz_views import (
    VENDOR,
    bertviz_budget,
    bertviz_html,
    estimate_bertviz_bytes,
    safe_json,
)

EVIL = ["</script><script>alert(1)</script>", '"><img src=x onerror=alert(1)>', "&amp;"]


def make_result(seq_len: int = 3, n_layers: int = 2, n_heads: int = 2, tokens=None) -> Analysis:
    attn = torch.full((n_layers, n_heads, seq_len, seq_len), 1 / seq_len)
    return Analysis.from_attentions(
        attn, tokens or [f"t{i}" for i in range(seq_len)], kind="encoder"
    )


def scripts(html: str) -> list[tuple[str, str]]:
    return re.findall(r"<script([^>]*)>(.*?)</script>", html, flags=re.DOTALL)


@pytest.mark.parametrize("view", ["head", "model"])
def test_no_cdn_and_every_script_is_ours(view):
    html = bertviz_html(make_result(), view)
    assert "cdnjs" not in html and "https://" not in html.split("</style>")[0]
    # BertViz's own script (the last one) no longer configures CDN paths at all.
    assert "require.config" not in scripts(html)[-1][1]
    nonce = re.search(r"script-src 'nonce-([^']+)'", html).group(1)
    found = scripts(html)
    assert len(found) == 5  # jquery, d3, require.js, the module definitions, bertviz
    assert all(f'nonce="{nonce}"' in attrs for attrs, _ in found)
    assert "default-src 'none'" in html


def test_vendored_files_are_inlined_unchanged():
    html = bertviz_html(make_result(), "head")
    sums = (VENDOR / "SHA256SUMS").read_text().split("\n")
    for line in filter(None, sums):
        digest, name = line.split()
        content = (VENDOR / name).read_bytes()
        assert hashlib.sha256(content).hexdigest() == digest, name
        assert content.decode("utf-8") in html, name


@pytest.mark.parametrize("view", ["head", "model"])
def test_hostile_tokens_stay_inside_the_json_string(view):
    html = bertviz_html(make_result(tokens=EVIL), view)
    data_script = scripts(html)[-1][1]
    # Nothing in the data can end the script element or open a tag.
    assert (
        "</script" not in data_script and "<img" not in data_script and "<script" not in data_script
    )
    assert "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)" in data_script
    assert "\\u0026amp;" in data_script
    # Exactly the five script elements we wrote, no more.
    assert len(scripts(html)) == 5


def test_safe_json_round_trips():
    import json

    value = {"tokens": EVIL + ["\u2028", "日本"]}
    assert json.loads(safe_json(value)) == value


def test_weights_are_sent_for_the_selected_layers_and_heads_only():
    result = make_result(seq_len=2, n_layers=3, n_heads=4)
    html = bertviz_html(result, "model", layers=(1,), heads=(0, 3))
    data_script = scripts(html)[-1][1]
    assert '"include_layers": [1]' in data_script
    assert '"include_heads": [0, 3]' in data_script
    # 1 layer x 2 heads x 2 x 2 weights of 0.5
    assert '"attn": [[[[0.5, 0.5], [0.5, 0.5]], [[0.5, 0.5], [0.5, 0.5]]]]' in data_script


def test_budget_keeps_small_inputs_whole_and_cuts_long_ones():
    small = make_result(seq_len=8, n_layers=6, n_heads=12)
    assert not bertviz_budget(small).reduced
    assert bertviz_budget(small).layers == tuple(range(6))
    long = make_result(seq_len=300, n_layers=6, n_heads=12)
    cut = bertviz_budget(long, layer=4)
    assert cut.reduced and cut.layers == (4,)
    assert estimate_bertviz_bytes(300, 1, len(cut.heads)) <= 6_000_000
    assert len(cut.heads) == 6_000_000 // estimate_bertviz_bytes(300, 1, 1)


def test_empty_selection_is_refused():
    with pytest.raises(ValueError):
        bertviz_html(make_result(), "head", layers=())
