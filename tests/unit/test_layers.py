"""The layering holds: core and viz never pull in streamlit, and viz never loads models."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(folder: str) -> set[str]:
    names: set[str] = set()
    for path in (ROOT / folder).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module:
                names.add(node.module)
    return names


def test_core_and_viz_sources_never_import_streamlit():
    for folder in ("core", "viz"):
        assert not any(m.split(".")[0] == "streamlit" for m in imported_modules(folder)), folder


def test_viz_sources_never_import_model_loading_code():
    modules = imported_modules("viz")
    assert not any(m.split(".")[0] == "transformers" for m in modules)
    assert "core.engine.models" not in modules and "core.engine.devices" not in modules


def test_importing_core_and_viz_loads_neither_streamlit_nor_transformers():
    code = (
        "import sys, core, viz, core.cli\n"
        "print('streamlit' in sys.modules, 'transformers' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.split() == ["False", "False"]
