"""An executed notebook as one HTML file that works offline, its anywidgets (our views) drawn.

nbconvert's ``lab`` template loads require.js, MathJax, mermaid and
@jupyter-widgets/html-manager from CDNs. This template extends it without those and inlines
``assets/notebook/anywidget_embed.js``, which draws each anywidget from the widget state the
notebook saved (its ES module, CSS and traits, buffers included). Needs nbconvert (in
requirements-dev.txt); ``python -m viz.notebook_html NOTEBOOK.ipynb OUT.html``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat

__all__ = ["notebook_html"]

EMBED_JS = Path(__file__).resolve().parent.parent / "assets" / "notebook" / "anywidget_embed.js"
_TEMPLATE_NAME = "attnscope_offline.html.j2"
_TEMPLATE = """{%- extends 'index.html.j2' -%}
{%- block html_head_js_requirejs -%}{%- endblock html_head_js_requirejs -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block footer_js -%}
<script type="module">
{{ resources.attnscope_embed_js }}
</script>
{%- endblock footer_js -%}
"""


def notebook_html(notebook: nbformat.NotebookNode | str | Path) -> str:
    """``notebook`` (a node or a path to an executed ``.ipynb``) as a self-contained page."""
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    if not isinstance(notebook, nbformat.NotebookNode):
        notebook = nbformat.read(Path(notebook), as_version=4)
    embed = EMBED_JS.read_text(encoding="utf-8")
    if "</script" in embed.lower():  # it is written into a <script> element as it is
        raise ValueError(f"{EMBED_JS} must not contain '</script'")
    exporter = HTMLExporter(
        template_name="lab",
        extra_loaders=[DictLoader({_TEMPLATE_NAME: _TEMPLATE})],
        template_file=_TEMPLATE_NAME,
    )
    html, _ = exporter.from_notebook_node(notebook, resources={"attnscope_embed_js": embed})
    return html


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: python -m viz.notebook_html NOTEBOOK.ipynb OUT.html")
    Path(sys.argv[2]).write_text(notebook_html(sys.argv[1]), encoding="utf-8")
