"""AttnScope's head view and model view in Jupyter, as anywidgets: the app's own JS and bytes.

    from viz.notebook import head_view, model_view
    widget = head_view(result, layer=2)  # shown when it is a cell's last value
    widget.layer, widget.head, widget.heads  # what was clicked, read back in Python

The widget's ES module is ``assets/attention_view`` as the app loads it, with
``notebook_widget.js`` as its entry instead of Streamlit's (:func:`viz.attention_view.view_assets`),
sent inline as anywidget's ``_esm``: nothing is fetched, so it works offline. Its ``payload`` is
the app's compact bytes (:func:`viz.attention_view.encode_head_view`, ``encode_model_view``).
Plotly figures go through :func:`figure`, which inlines plotly.js from the installed package.
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets
from IPython.display import HTML

from core.engine.analysis import Analysis
from core.policy.i18n import DEFAULT_LANG, Lang
from viz.attention_view import encode_head_view, encode_model_view, view_assets

__all__ = ["AttentionWidget", "figure", "head_view", "model_view"]

_ESM, _CSS = view_assets("notebook")


class AttentionWidget(anywidget.AnyWidget):
    """One view of an analysis. Synced with the page: ``payload`` (the app's bytes, Python to
    JS), ``layer`` and ``head`` (the layer shown and the head last clicked; in the model view,
    the head opened), ``heads`` (head view: the heads whose lines are shown; settable)."""

    _esm = _ESM
    _css = _CSS
    view = traitlets.Unicode("head", read_only=True).tag(sync=True)
    payload = traitlets.Bytes(b"").tag(sync=True)
    layer = traitlets.Int(None, allow_none=True).tag(sync=True)
    head = traitlets.Int(None, allow_none=True).tag(sync=True)
    heads = traitlets.List(traitlets.Int()).tag(sync=True)

    def __init__(self, result: Analysis, view: str, lang: Lang, **traits: Any) -> None:
        self._result = result
        self._lang = lang
        super().__init__(**traits)
        self.set_trait("view", view)
        self._encode()
        self.observe(self._on_selection, names=["layer", "head"])

    @property
    def result(self) -> Analysis:
        return self._result

    def _encode(self) -> None:
        if self.view == "head":
            self.payload = encode_head_view(self._result, self.layer, lang=self._lang).data
        else:
            selected = None if self.layer is None or self.head is None else (self.layer, self.head)
            self.payload = encode_model_view(self._result, selected, lang=self._lang).data

    def _on_selection(self, change: dict[str, Any]) -> None:
        # The head view redraws for a new layer only (a click selects a head of the same
        # layer); the model view opens the clicked head at full resolution, as the app does.
        if self.view == "model" or change["name"] == "layer":
            self._encode()


def head_view(
    result: Analysis, layer: int = 0, *, heads: list[int] | None = None, lang: Lang = DEFAULT_LANG
) -> AttentionWidget:
    """Every head of ``layer`` as lines between the tokens (``result`` must hold that layer:
    :func:`core.engine.run.with_layers` recomputes one). ``heads``: the heads drawn (all)."""
    shown = list(range(result.n_heads)) if heads is None else sorted(heads)
    return AttentionWidget(result, "head", lang, layer=layer, heads=shown)


def model_view(
    result: Analysis, selected: tuple[int, int] | None = None, *, lang: Lang = DEFAULT_LANG
) -> AttentionWidget:
    """A thumbnail of every layer x head; clicking one (or ``selected``) opens it beside."""
    layer, head = selected if selected is not None else (None, None)
    return AttentionWidget(result, "model", lang, layer=layer, head=head)


def figure(fig: Any) -> HTML:
    """A Plotly figure as notebook HTML with plotly.js inline (about 4.7 MB, from the installed
    plotly package): shown without a CDN, in JupyterLab and in an exported HTML file alike.
    (``plotly.io``'s ``notebook_connected`` renderer and the default in some front ends fetch
    plotly.js from cdn.plot.ly.)"""
    return HTML(fig.to_html(include_plotlyjs=True, full_html=False))
