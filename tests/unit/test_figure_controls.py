"""Every Plotly figure the app shows gets the download control: pages and ui/ call
``ui.figures.show_figure``, and only that function calls ``st.plotly_chart``."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
HELPER = "ui/figures.py"


def calls(path: Path | str, name: str) -> list[int]:
    """Lines that call ``name`` (``st.plotly_chart``: the attribute; ``show_figure``: the name)
    in a file, or in source text."""
    source = path.read_text(encoding="utf-8") if isinstance(path, Path) else path
    tree = ast.parse(source)
    return [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and (
            (isinstance(node.func, ast.Attribute) and node.func.attr == name)
            or (isinstance(node.func, ast.Name) and node.func.id == name)
        )
    ]


def app_files() -> list[Path]:
    return [
        ROOT / "app.py",
        *sorted((ROOT / "pages").glob("*.py")),
        *sorted((ROOT / "ui").glob("*.py")),
    ]


def test_only_show_figure_calls_plotly_chart():
    direct = {
        path.relative_to(ROOT).as_posix(): lines
        for path in app_files()
        if (lines := calls(path, "plotly_chart"))
    }
    assert set(direct) == {HELPER}, f"show figures with ui.figures.show_figure: {direct}"
    assert len(direct[HELPER]) == 2  # show_figure, and live_figure for a curve redrawn in a run


def test_every_figure_page_uses_show_figure():
    shown = {p.stem: len(calls(p, "show_figure")) for p in sorted((ROOT / "pages").glob("*.py"))}
    # the pages with Plotly figures, and how many each shows
    assert {page: n for page, n in shown.items() if n} == {
        "ablation": 2,
        "attribution": 3,
        "compare": 1,
        "generate": 2,
        "heads": 1,
        "heatmaps": 1,
        "long_context": 2,
        "predictions": 1,
        "statistics": 2,
    }


def test_detector_finds_both_spellings():
    source = "st.plotly_chart(fig)\nshow_figure(fig, key='a')\nchart.plotly_chart\n"
    assert calls(source, "plotly_chart") == [1]
    assert calls(source, "show_figure") == [2]
