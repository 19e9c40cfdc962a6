"""Shareable links: the query parameters that carry a view (model, text or example, second
sentence, layer, head, language), read back with every value validated like any other input.

The page itself is the link's path (``/heatmaps``, ``/views``, ...), which Streamlit resolves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

from core.policy.i18n import Lang, parse_lang
from core.policy.parsing import whole_number

__all__ = [
    "MAX_LINK_TEXT",
    "LinkProblem",
    "SharedView",
    "link_params",
    "parse_link",
]

# A link carries at most this much text (URLs past ~8 kB break in browsers and proxies);
# a longer text is shared by example id or not at all.
MAX_LINK_TEXT = 2000
MAX_MODEL_NAME = 200
MAX_INDEX = 1023  # no model here has more layers or heads
LinkProblem = Literal["text_too_long", "model_too_long", "bad_layer", "bad_head", "bad_example"]


@dataclass(frozen=True)
class SharedView:
    """What a link asks to show; ``None`` where it says nothing (or said something invalid)."""

    model: str | None = None
    text: str | None = None
    example: str | None = None
    pair: str | None = None
    layer: int | None = None
    head: int | None = None
    average: bool = False  # head=avg: the layer's head average
    lang: Lang | None = None

    @property
    def wants_analysis(self) -> bool:
        return bool(self.text or self.example)


def _first(value: str | Sequence[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value[0] if value else None


def _index(value: str | None) -> int | None:
    """A layer or head number, or None when absent or invalid.

    >>> _index("3"), _index("-1"), _index("x"), _index("99999"), _index("²"), _index(None)
    (3, None, None, None, None, None)
    """
    number = whole_number(value)
    return number if number is not None and number <= MAX_INDEX else None


def parse_link(
    params: Mapping[str, str | Sequence[str]], *, examples: Sequence[str]
) -> tuple[SharedView, tuple[LinkProblem, ...]]:
    """The view a link asks for, and what was wrong with it (dropped, never acted on).

    The model name is only length-checked here: it then goes through the same checks as a name
    typed in the sidebar (demo allowlist, no paths, Hub id syntax).

    >>> view, problems = parse_link({"text": "Hi", "layer": "2", "head": "x"}, examples=[])
    >>> view.text, view.layer, view.head, problems
    ('Hi', 2, None, ('bad_head',))
    """
    problems: list[LinkProblem] = []
    text = _first(params.get("text"))
    if text is not None and len(text) > MAX_LINK_TEXT:
        problems.append("text_too_long")
        text = None
    model = _first(params.get("model"))
    if model is not None and (len(model) > MAX_MODEL_NAME or not model.strip()):
        problems.append("model_too_long")
        model = None
    example = _first(params.get("example"))
    if example is not None and example not in examples:
        problems.append("bad_example")
        example = None
    pair = _first(params.get("pair"))
    if pair is not None and len(pair) > MAX_LINK_TEXT:
        problems.append("text_too_long")
        pair = None
    layer_text = _first(params.get("layer"))
    layer = _index(layer_text)
    if layer_text is not None and layer is None:
        problems.append("bad_layer")
    head_text = _first(params.get("head"))
    average = head_text == "avg"
    head = None if average else _index(head_text)
    if head_text is not None and head is None and not average:
        problems.append("bad_head")
    lang_text = _first(params.get("lang"))
    view = SharedView(
        model=model.strip() if model else None,
        text=text,
        example=example,
        pair=pair or None,
        layer=layer,
        head=head,
        average=average,
        lang=parse_lang(lang_text) if lang_text else None,
    )
    return view, tuple(problems)


def link_params(
    *,
    model: str,
    text: str,
    pair: str | None,
    layer: int,
    head: int | None,
    lang: Lang,
    examples: Mapping[str, tuple[str, str | None]],
) -> dict[str, str]:
    """Query parameters that restore a view: an example's id when the text is one (short
    links), else the text itself while it fits :data:`MAX_LINK_TEXT`.

    >>> link_params(model="minilm", text="Hi", pair=None, layer=1, head=None, lang="en",
    ...             examples={})
    {'model': 'minilm', 'layer': '1', 'head': 'avg', 'lang': 'en', 'text': 'Hi'}
    """
    params = {
        "model": model,
        "layer": str(layer),
        "head": "avg" if head is None else str(head),
        "lang": lang,
    }
    example = next((key for key, value in examples.items() if value == (text, pair)), None)
    if example is not None:
        params["example"] = example
    elif len(text) + len(pair or "") <= MAX_LINK_TEXT:
        params["text"] = text
        if pair:
            params["pair"] = pair
    return params
