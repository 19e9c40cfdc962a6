"""BertViz head view and model view as self-contained HTML that draws with no network.

BertViz as shipped loads require.js, d3 and jQuery from a CDN (nothing draws offline) and splices
``json.dumps`` output into a ``<script>`` block unescaped (a token ``</script><script>...`` runs).
Here the vendored copies under ``assets/vendor`` are inlined, ``<``, ``>`` and ``&`` in the data are
escaped as ``\\u003c`` etc., and a Content-Security-Policy with a per-page nonce forbids every
network request and every script that is not ours. BertViz's own JS (from the installed
``bertviz`` package) draws, with tokens set through d3 ``.text()``.

BertViz sends every weight as JSON text, so its pages grow as ``layers x heads x T x T``;
:func:`bertviz_budget` picks a smaller default (one layer, fewer heads) when that would not draw in
reasonable time.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import re
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import torch

from core.engine.analysis import Analysis
from core.engine.budget import attention_bytes

__all__ = [
    "BERTVIZ_BYTE_BUDGET",
    "BertvizFilter",
    "BertvizView",
    "bertviz_budget",
    "bertviz_html",
    "estimate_bertviz_bytes",
    "safe_json",
    "view_height",
]

BertvizView = Literal["head", "model"]

VENDOR = Path(__file__).resolve().parent.parent / "assets" / "vendor"
_VENDORED = ("jquery-3.7.1/jquery.min.js", "d3-5.7.0/d3.min.js", "requirejs-2.3.6/require.js")
# About 6 MB of JSON draws in a few seconds in Chromium; beyond that BertViz freezes the tab.
BERTVIZ_BYTE_BUDGET = 6_000_000
# Bytes per weight in the JSON: rounded to 4 decimals, "0.1234, " is 8 characters at most.
_BYTES_PER_WEIGHT = 8
_DECIMALS = 4
_REQUIRE_CONFIG = re.compile(r"require\.config\(\{.*?\}\);", re.DOTALL)


@dataclass(frozen=True)
class BertvizFilter:
    """Which layers and heads a BertViz view includes (all when ``None``)."""

    layers: tuple[int, ...]
    heads: tuple[int, ...]
    reduced: bool  # True when this is smaller than everything, to stay within the budget


def safe_json(value: object) -> str:
    """JSON that is safe inside a ``<script>`` element: ``<``, ``>``, ``&``, U+2028/9 escaped.

    >>> safe_json({"t": "</script><script>alert(1)</script>"})
    '{"t": "\\\\u003c/script\\\\u003e\\\\u003cscript\\\\u003ealert(1)\\\\u003c/script\\\\u003e"}'
    """
    text = json.dumps(value, ensure_ascii=False)
    for raw, escaped in (
        ("&", "\\u0026"),
        ("<", "\\u003c"),
        (">", "\\u003e"),
        ("\u2028", "\\u2028"),
        ("\u2029", "\\u2029"),
    ):
        text = text.replace(raw, escaped)
    return text


@functools.cache
def _vendored_scripts() -> tuple[str, ...]:
    return tuple((VENDOR / name).read_text(encoding="utf-8") for name in _VENDORED)


@functools.cache
def _bertviz_script(view: BertvizView) -> str:
    spec = importlib.util.find_spec("bertviz")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("The bertviz package is not installed: `pip install bertviz`.")
    source = (Path(next(iter(spec.submodule_search_locations))) / f"{view}_view.js").read_text(
        encoding="utf-8"
    )
    # The CDN paths must go: our inlined copies are defined as AMD modules instead.
    stripped, count = _REQUIRE_CONFIG.subn("", source, count=1)
    if count != 1 or "PYTHON_PARAMS" not in stripped:
        raise RuntimeError(f"Unexpected bertviz {view}_view.js: its layout changed.")
    return stripped


def estimate_bertviz_bytes(seq_len: int, n_layers: int, n_heads: int) -> int:
    """Approximate size of a BertViz view's JSON: one number per layer x head x query x key."""
    return attention_bytes(n_layers, n_heads, seq_len, bytes_per_weight=_BYTES_PER_WEIGHT)


def bertviz_budget(
    result: Analysis, layer: int = 0, budget: int = BERTVIZ_BYTE_BUDGET
) -> BertvizFilter:
    """Everything if it fits the byte budget; else ``layer`` alone, with as many heads as fit.

    A single head that does not fit still gets drawn (one head is the least BertViz can show).
    """
    everything = BertvizFilter(tuple(range(result.n_layers)), tuple(range(result.n_heads)), False)
    if estimate_bertviz_bytes(result.seq_len, result.n_layers, result.n_heads) <= budget:
        return everything
    per_head = estimate_bertviz_bytes(result.seq_len, 1, 1)
    n_heads = max(1, min(result.n_heads, budget // per_head))
    return BertvizFilter((layer,), tuple(range(n_heads)), True)


def view_height(view: BertvizView, seq_len: int, n_layers: int, total_heads: int) -> int:
    """Pixel height the view draws at, from the constants in BertViz's JS (for the iframe)."""
    if view == "head":
        return int(seq_len * 22.5 + 30 + 70)
    thumbnail = seq_len * 7 * (12 / total_heads) + 10
    detail = seq_len * 18 + 30 + 25
    return int(max(n_layers * thumbnail + 38, detail) + 40)


def _csp(nonce: str) -> str:
    """No network at all, and no script without this page's nonce (injected markup cannot run)."""
    return (
        f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; img-src data:"
    )


def bertviz_html(
    result: Analysis,
    view: BertvizView,
    *,
    layers: tuple[int, ...] | None = None,
    heads: tuple[int, ...] | None = None,
    display_mode: Literal["light", "dark"] = "light",
) -> str:
    """A complete HTML page with BertViz's ``view`` of ``result``, restricted to ``layers`` and
    ``heads`` (all when ``None``). It needs no network and runs no script but its own."""
    layers = tuple(range(result.n_layers)) if layers is None else tuple(layers)
    heads = tuple(range(result.n_heads)) if heads is None else tuple(heads)
    if not layers or not heads:
        raise ValueError("Pick at least one layer and one head.")
    attn = torch.stack([result.layer(layer)[list(heads)] for layer in layers])  # (L', H', T, T)
    weights = np.round(attn.numpy().astype(np.float64), _DECIMALS).tolist()
    tokens = list(result.tokens)
    data = {"name": "All", "attn": weights, "left_text": tokens, "right_text": tokens}
    root = "bertviz-" + view
    params: dict[str, object] = {
        "attention": [data],
        "default_filter": "0",
        "root_div_id": root,
        "include_layers": list(layers),
    }
    if view == "head":
        params.update({"layer": layers[0], "heads": None})
        controls = 'Layer: <select id="layer"></select>'
    else:
        params.update(
            {
                "display_mode": display_mode,
                "include_heads": list(heads),
                # BertViz sizes thumbnails by the model's head count, not the filtered one.
                "total_heads": result.n_heads,
            }
        )
        controls = ""
    script = _bertviz_script(view).replace("PYTHON_PARAMS", safe_json(params), 1)
    nonce = secrets.token_urlsafe(16)
    vendored = "\n".join(f'<script nonce="{nonce}">{js}</script>' for js in _vendored_scripts())
    background = "#fff" if display_mode == "light" or view == "head" else "#000"
    return f"""<!DOCTYPE html>
<html><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{_csp(nonce)}">
<style>body {{ margin: 0; background: {background}; }}</style>
</head><body>
<div id="{root}" style="font-family: 'Helvetica Neue', Helvetica, Arial, sans-serif;">
<span style="user-select: none">{controls}</span>
<div id="vis"></div>
</div>
{vendored}
<script nonce="{nonce}">
define("jquery", [], function () {{ return window.jQuery; }});
define("d3", [], function () {{ return window.d3; }});
</script>
<script nonce="{nonce}">
{script}
</script>
</body></html>
"""
