"""The README's "Python API" section runs as written: its python blocks, in order, in one
namespace, with the real bundled models. A renamed function or a changed signature fails here."""

from __future__ import annotations

import re
import traceback
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
SECTION = "## Python API"
_FENCE = re.compile(r"^```(\w*)\s*$")


def python_blocks(markdown: str, section: str = SECTION) -> list[tuple[int, str]]:
    """The fenced ``python`` blocks under ``section`` (a ``## `` heading) and its subsections, up
    to the next ``## `` heading, as (line number of the first code line, code)."""
    lines = markdown.splitlines()
    try:
        start = next(i for i, line in enumerate(lines) if line.strip() == section)
    except StopIteration:
        raise AssertionError(f"README has no {section!r} section") from None
    blocks, language, code, first = [], None, [], 0
    for number, line in enumerate(lines[start + 1 :], start=start + 2):
        fence = _FENCE.match(line)
        if language is None:
            if line.startswith("## "):
                break
            if fence:
                language, code, first = fence.group(1), [], number + 1
        elif line.strip() == "```":
            if language == "python":
                blocks.append((first, "\n".join(code)))
            language = None
        else:
            code.append(line)
    assert language is None, f"unclosed code block at README.md:{first - 1}"
    return blocks


def test_python_blocks_are_read_from_the_section_only():
    markdown = """# Title
```python
before = 1
```
## Python API
```python
a = 1
```
Some text.
### Sub
```bash
not python
```
```python
b = a + 1
```
## Next
```python
after = 1
```
"""
    assert python_blocks(markdown) == [(7, "a = 1"), (15, "b = a + 1")]


@pytest.fixture
def session_models(monkeypatch, request):
    """``load_model("minilm")`` and ``load_model("smollm2")`` hand out the session's models, so
    the README's blocks do not load them again; any other call loads as usual."""
    import core

    real = core.load_model

    def load_model(name, *args, **kwargs):
        if name in ("minilm", "smollm2") and not args and not kwargs:
            core.load_model = real  # the fixture itself loads through core.load_model
            try:
                return request.getfixturevalue(name)
            finally:
                core.load_model = load_model
        return real(name, *args, **kwargs)

    monkeypatch.setattr(core, "load_model", load_model)


def test_the_python_api_section_runs(session_models):
    blocks = python_blocks(README.read_text(encoding="utf-8"))
    assert blocks, f"README's {SECTION!r} section has no python blocks"
    namespace: dict = {"__name__": "readme"}
    for first, code in blocks:
        # Padded with blank lines, so that a traceback names the README's own line.
        compiled = compile("\n" * (first - 1) + code, str(README), "exec")
        error = None
        try:
            exec(compiled, namespace)
        except Exception:
            error = traceback.format_exc()
        if error:
            pytest.fail(f"the README block at README.md:{first} raised:\n{error}", pytrace=False)
