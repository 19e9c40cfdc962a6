"""One analysis as one self-contained HTML file, an offline report: the text, the model, our head
and model views, the heatmaps and the statistics tables, with every script inlined.

It makes no network request (it opens from a USB stick) and is escaped as strictly as the app: a
Content-Security-Policy allows only scripts that carry the page's nonce and no connection at all;
every value travels as JSON in one ``<script type="application/json">`` (``<``, ``>``, ``&``,
U+2028/9 escaped by :func:`viz.bertviz_views.safe_json`) that ``assets/report/report.js`` reads
with ``textContent`` and ``JSON.parse``, and text reaches the page through ``textContent`` only.
The views are the app's own component (``assets/attention_view``), fed the same binary payloads
(base64 in the JSON); the heatmaps are the app's Plotly figures, drawn by plotly.py's own
``plotly.min.js``, inlined once.
"""

from __future__ import annotations

import base64
import functools
import json
import re
import secrets
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from core.engine.analysis import Analysis
from core.policy.i18n import DEFAULT_LANG, Lang, t
from viz.attention_view import encode_head_view, encode_model_view, view_assets
from viz.bertviz_views import safe_json
from viz.export import portable_figure
from viz.heatmaps import entropy_heatmap, layer_heatmap
from viz.tables import head_stats_table, layer_entropy_table, most_attended_table, tokens_table

__all__ = ["REPORT_DENSE_LIMIT", "report_data", "report_html", "write_report"]

REPORT_ASSETS = Path(__file__).resolve().parent.parent / "assets" / "report"
# A layer's head view goes into the report with every weight (16 bits each) up to this many
# weights (2 MB; MiniLM to about 290 tokens), beyond that with each row's strongest keys only.
REPORT_DENSE_LIMIT = 2**20
TOP_ATTENDED = 5
DIGITS = 4  # decimals shown in the tables (the JSON keeps every digit)
# What report.js calls: the views' drawing function, in the same module as it.
_ENTRY = "function drawAttentionView("
# In an inline script these would end the element or change how the HTML parser reads it.
_SCRIPT_END = re.compile(r"</(script)", re.IGNORECASE)
_COMMENT_OPEN = "<!--"
_PLOTLY_STYLE_IDS = re.compile(
    r'getElementById\("([0-9a-f]{64})"\)\)\{var \w+=document\.createElement\("style"\)'
)


def _inline_js(code: str) -> str:
    """``code`` safe to put between ``<script>`` and ``</script>``: ``</script`` and ``<!--``
    (in strings, regexes or comments of valid JS) written with a backslash, which JS reads as
    the same characters.

    >>> _inline_js('s = "</SCRIPT><!--"')
    's = "<\\\\/SCRIPT><\\\\!--"'
    """
    return _SCRIPT_END.sub(r"<\\/\1", code).replace(_COMMENT_OPEN, "<\\!--")


@functools.cache
def _plotly_js() -> tuple[str, tuple[str, ...]]:
    """plotly.py's own ``plotly.min.js`` (the one the app's figures and kaleido use), and the ids
    of the ``<style>`` elements it adds at load unless they exist (map traces' CSS): the page
    holds them, empty and with the nonce, so that no style without the nonce is ever tried."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    code = path.read_text(encoding="utf-8")
    return _inline_js(code), tuple(dict.fromkeys(_PLOTLY_STYLE_IDS.findall(code)))


@functools.cache
def _report_js() -> str:
    """The views' module (the app's component, its export included), then the report's own
    drawing code, which calls ``drawAttentionView``."""
    views, _ = view_assets()
    if _ENTRY not in views:
        raise RuntimeError(f"assets/attention_view has no `{_ENTRY}`: its layout changed")
    own = (REPORT_ASSETS / "report.js").read_text(encoding="utf-8")
    return _inline_js(views + "\n" + own)


@functools.cache
def _report_css() -> str:
    _, views = view_assets()
    css = views + "\n" + (REPORT_ASSETS / "report.css").read_text(encoding="utf-8")
    if "</" in css:  # would end the <style> element
        raise RuntimeError("the views' or the report's CSS holds '</'")
    return css


def _csp(nonce: str) -> str:
    """Nothing from the network, no script and no style sheet without this page's nonce.
    Style attributes stay allowed: Plotly and the views position and size elements with them,
    and a style attribute cannot run code."""
    return (
        "default-src 'none'; "
        f"script-src 'nonce-{nonce}'; "
        f"style-src 'nonce-{nonce}'; style-src-elem 'nonce-{nonce}'; "
        "style-src-attr 'unsafe-inline'; "
        "img-src data: blob:; font-src data:; base-uri 'none'; form-action 'none'"
    )


def _figure(fig: go.Figure) -> dict[str, Any]:
    """A figure as plain JSON (arrays as Plotly's compact base64 typed arrays), in plotly.py's
    own template: a report built in the app must not carry Streamlit's theme, which needs the
    app page's CSS (without it the ticks lose their labels)."""
    return json.loads(portable_figure(fig).to_json())


def _table(name: str, title: str, frame: pd.DataFrame) -> dict[str, Any]:
    """A table as headings and rows of plain values (numbers stay numbers)."""
    rows = frame.astype(object).where(frame.notna(), None).values.tolist()
    return {
        "name": name,
        "title": title,
        "columns": [str(c) for c in frame.columns],
        "rows": rows,
        "digits": DIGITS,
    }


def _base64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def report_data(result: Analysis, model: str | None = None, *, lang: Lang = DEFAULT_LANG) -> dict:
    """Everything the report shows, as JSON-ready values: words in ``lang``, the view payloads
    (base64), the figures and the tables. ``model`` names the model (``result.model_name`` if
    not given)."""
    model = model or result.model_name
    held = result.held_layers
    missing = [layer for layer in range(result.n_layers) if layer not in held]
    notes = []
    if result.truncated:
        notes.append(
            t("views.report_truncated", lang, total=result.n_input_tokens, count=result.seq_len)
        )
    if missing:
        notes.append(t("views.report_missing", lang, layers=", ".join(map(str, missing))))
    head_views = {
        layer: _base64(
            encode_head_view(result, layer, dense_limit=REPORT_DENSE_LIMIT, lang=lang).data
        )
        for layer in held
    }
    facts = [
        [t("sidebar.model", lang), model],
        [t("heatmaps.tokens", lang), t("views.report_tokens", lang, count=result.seq_len)],
    ]
    tables = [
        _table(
            "layer_entropy", t("stats.layer_entropy", lang), layer_entropy_table(result, lang=lang)
        ),
        _table("head_entropy", t("stats.head_entropy", lang), head_stats_table(result, lang=lang)),
        _table(
            "most_attended",
            t("stats.most_attended", lang),
            most_attended_table(result, TOP_ATTENDED, lang=lang),
        ),
        _table("tokens", t("heatmaps.tokens", lang), tokens_table(result, lang=lang)),
    ]
    return {
        "lang": lang,
        "model": model,
        "text": result.text,
        "pair": result.pair,
        "facts": facts,
        "notes": notes,
        "strings": {
            "title": t("views.report_title", lang),
            "text": t("views.report_text", lang),
            "pair": t("views.report_pair", lang),
            "head_view": t("views.head", lang),
            "model_view": t("views.model", lang),
            "model_hint": t("views.report_model_hint", lang),
            "layer": t("views.report_layer", lang),
            "layer_n": t("common.layer_n", lang, layer="{layer}"),
            "heatmaps": t("heatmaps.header", lang),
            "tables": t("stats.header", lang),
            "footer": t("views.report_footer", lang),
        },
        "head_views": head_views,
        "model_view": _base64(encode_model_view(result, lang=lang).data),
        "heatmaps": {layer: _figure(layer_heatmap(result, layer, lang=lang)) for layer in held},
        "entropy": _figure(entropy_heatmap(result, lang=lang)),
        "tables": tables,
    }


_PAGE = """<!DOCTYPE html>
<html lang="{lang}"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{csp}">
<meta property="csp-nonce" content="{nonce}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>AttnScope</title>
<style nonce="{nonce}">{css}</style>
<style id="plotly.js-style-global" nonce="{nonce}"></style>{plotly_styles}
</head><body data-state="loading">
<main>
<header>
<h1 id="r-title"></h1>
<dl class="r-facts" id="r-facts"></dl>
<div class="r-label" id="r-text-label"></div><div class="r-text" id="r-text"></div>
<div class="r-label" id="r-pair-label"></div><div class="r-text" id="r-pair"></div>
<p class="r-notes" id="r-notes"></p>
</header>
<section id="r-head"><h2 id="r-head-title"></h2>
<label class="r-pick"><span id="r-head-layer-label"></span>
<select id="r-head-layer"></select></label>
<div id="r-head-view"></div></section>
<section id="r-model"><h2 id="r-model-title"></h2><p class="r-hint" id="r-model-hint"></p>
<div id="r-model-view"></div></section>
<section id="r-heatmaps"><h2 id="r-heatmaps-title"></h2>
<label class="r-pick"><span id="r-heatmap-layer-label"></span>
<select id="r-heatmap-layer"></select></label>
<div id="r-heatmap"></div><div id="r-entropy"></div></section>
<section id="r-tables"><h2 id="r-tables-title"></h2></section>
<footer id="r-footer"></footer>
</main>
<script type="application/json" id="attnscope-report-data">{data}</script>
<script nonce="{nonce}">{plotly}</script>
<script type="module" nonce="{nonce}">{views}</script>
</body></html>
"""


def report_html(result: Analysis, model: str | None = None, *, lang: Lang = DEFAULT_LANG) -> str:
    """The report of ``result`` as one HTML page (see the module docstring): about 5 MB of
    plotly.js plus the data (MiniLM at 128 tokens: 8 MB in all)."""
    nonce = secrets.token_urlsafe(16)
    plotly, style_ids = _plotly_js()
    return _PAGE.format(
        lang=lang,
        csp=_csp(nonce),
        nonce=nonce,
        css=_report_css(),
        data=safe_json(report_data(result, model, lang=lang)),
        plotly=plotly,
        plotly_styles="".join(f'\n<style id="{i}" nonce="{nonce}"></style>' for i in style_ids),
        views=_report_js(),
    )


def write_report(
    result: Analysis, path: str | Path, model: str | None = None, *, lang: Lang = DEFAULT_LANG
) -> Path:
    """:func:`report_html` written to ``path`` as UTF-8; returns the path."""
    path = Path(path)
    path.write_text(report_html(result, model, lang=lang), encoding="utf-8")
    return path
