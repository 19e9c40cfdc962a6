"""Shareable links: the query parameters that carry a view (model, text or example, second
sentence, layer, head, language), read back with every value validated like any other input.

A link never points at something other than the view it was made from. A short text travels as
itself (``text=``), a longer one compressed (``z=``: zlib, then base64url); one too long even then
is left out and the link says so (``toolong=1``): a session file (JSON, :func:`session_file`)
carries it instead and opens the same view. The page itself is the link's path (``/heatmaps``,
``/views``, ...), which Streamlit resolves.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal
from urllib.parse import quote_plus

from core.policy.errors import InputError
from core.policy.i18n import Lang, parse_lang

__all__ = [
    "MAX_LINK_TEXT",
    "MAX_LINK_VALUE",
    "MAX_SESSION_BYTES",
    "MAX_UNPACKED_BYTES",
    "Link",
    "LinkProblem",
    "OutOfRange",
    "SharedView",
    "link_params",
    "make_link",
    "out_of_range",
    "pack_text",
    "parse_link",
    "read_session_file",
    "session_file",
    "unpack_text",
]

# A plain ``text=`` holds at most this many characters (text and pair together).
MAX_LINK_TEXT = 2000
# The longest value a link made here holds (``text=`` once URL-encoded, or ``z=``): URLs past
# about 8 kB break in browsers and proxies.
MAX_LINK_VALUE = 6000
# The longest ``z=`` read back (a link made elsewhere may be longer than ours, within reason).
MAX_PACKED_VALUE = 16_000
# What a ``z=`` may unpack to: more is refused after reading this much, never all of it (a few
# kilobytes of deflate can unpack to gigabytes: a decompression bomb).
MAX_UNPACKED_BYTES = 1 << 20
MAX_SESSION_BYTES = 4 << 20  # a session file: any text the app accepts, with room to spare
MAX_SESSION_TEXT = 1_000_000  # characters; the server's own text limit applies afterwards
MAX_MODEL_NAME = 200
SESSION_FORMAT = "attnscope-session"
LinkProblem = Literal[
    "text_too_long",
    "model_too_long",
    "bad_layer",
    "bad_head",
    "bad_example",
    "bad_packed",
    "text_not_in_link",
]
# How a link carries its text: an example's id, the text itself, compressed, or not at all.
TextCarrier = Literal["example", "text", "packed", "none"]
_INTEGER = re.compile(r"[+-]?[0-9]+")
_BASE64URL = re.compile(r"[A-Za-z0-9_-]*")
_HUGE = 10**9  # what a number with more digits than that reads as: out of range all the same


@dataclass(frozen=True)
class SharedView:
    """What a link asks to show; ``None`` where it says nothing (or said something invalid).
    ``layer`` and ``head`` are the numbers as given, checked against the model once it is known
    (:func:`out_of_range`)."""

    model: str | None = None
    text: str | None = None
    example: str | None = None
    pair: str | None = None
    layer: int | None = None
    head: int | None = None
    average: bool = False  # head=avg: the layer's head average
    lang: Lang | None = None
    text_lost: bool = False  # toolong=1: made from a text too long for a link

    @property
    def wants_analysis(self) -> bool:
        return bool(self.text or self.example)


@dataclass(frozen=True)
class OutOfRange:
    """A layer or head a link asks for that the model does not have, and the one shown instead."""

    what: Literal["layer", "head"]
    value: int
    last: int  # the model's highest index
    shown: int


@dataclass(frozen=True)
class Link:
    """A link's query parameters and how they carry the text."""

    params: dict[str, str]
    carries: TextCarrier


def _first(value: str | Sequence[str] | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        return value
    return value[0] if value else None


def _index(value: str | None) -> int | None:
    """A layer or head number as written (any sign: the model decides what is in range), or None
    when absent or not a whole number in ASCII digits.

    >>> _index("3"), _index("-1"), _index("x"), _index(" 7 "), _index("²"), _index(None)
    (3, -1, None, 7, None, None)
    >>> _index("9" * 5000) == _HUGE  # int() refuses more than 4300 digits; never reached
    True
    """
    if value is None or not _INTEGER.fullmatch(value.strip()):
        return None
    digits = value.strip()
    if len(digits.lstrip("+-")) > 9:
        return -_HUGE if digits.startswith("-") else _HUGE
    return int(digits)


@functools.lru_cache(maxsize=8)  # the address bar is rebuilt on every rerun
def pack_text(text: str, pair: str | None = None) -> str:
    """``text`` (and ``pair``) compressed for a link's ``z=``: zlib over UTF-8 JSON, base64url
    without padding.

    >>> unpack_text(pack_text("吾輩は猫である。" * 50, "B"))[0] == "吾輩は猫である。" * 50
    True
    """
    payload = {"text": text, "pair": pair} if pair else {"text": text}
    raw = json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(zlib.compress(raw, 9)).rstrip(b"=").decode("ascii")


def unpack_text(value: str) -> tuple[str, str | None]:
    """The text and pair of a ``z=``; ValueError for anything damaged, too long, or unpacking
    to more than :data:`MAX_UNPACKED_BYTES` (refused after reading that much, never more).

    >>> bomb = base64.urlsafe_b64encode(zlib.compress(b" " * 10_000_000, 9)).decode()
    >>> len(bomb) < MAX_PACKED_VALUE
    True
    >>> unpack_text(bomb.rstrip("="))
    Traceback (most recent call last):
    ValueError: unpacks to more than 1048576 bytes
    """
    if len(value) > MAX_PACKED_VALUE or not _BASE64URL.fullmatch(value):
        raise ValueError("not a compressed text")
    try:
        data = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        inflater = zlib.decompressobj()
        raw = inflater.decompress(data, MAX_UNPACKED_BYTES)
    except (binascii.Error, zlib.error) as error:
        raise ValueError("not a compressed text") from error
    if inflater.unconsumed_tail:
        raise ValueError(f"unpacks to more than {MAX_UNPACKED_BYTES} bytes")
    if not inflater.eof or inflater.unused_data:
        raise ValueError("a damaged compressed text")
    try:
        payload = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError("not a compressed text") from error
    text = payload.get("text") if isinstance(payload, dict) else None
    pair = payload.get("pair") if isinstance(payload, dict) else None
    if not isinstance(text, str) or not isinstance(pair, str | None):
        raise ValueError("not a compressed text")
    return text, pair or None


def parse_link(
    params: Mapping[str, str | Sequence[str]],
    *,
    examples: Sequence[str],
    max_text: int = MAX_LINK_TEXT,
) -> tuple[SharedView, tuple[LinkProblem, ...]]:
    """The view a link asks for, and what was wrong with it (dropped, never acted on).

    The model name is only length-checked here: it then goes through the same checks as a name
    typed in the sidebar (demo allowlist, no paths, Hub id syntax). ``max_text``: the longest
    plain ``text=`` (a session file allows more).

    >>> view, problems = parse_link({"text": "Hi", "layer": "2", "head": "x"}, examples=[])
    >>> view.text, view.layer, view.head, problems
    ('Hi', 2, None, ('bad_head',))
    """
    problems: list[LinkProblem] = []
    text = _first(params.get("text"))
    pair = _first(params.get("pair"))
    packed = _first(params.get("z"))
    if packed is not None:
        try:
            text, pair = unpack_text(packed)
        except ValueError:
            problems.append("bad_packed")
            text = pair = None
        if text is not None and len(text) + len(pair or "") > MAX_SESSION_TEXT:
            problems.append("text_too_long")
            text = pair = None
    else:
        if text is not None and len(text) > max_text:
            problems.append("text_too_long")
            text = None
        if pair is not None and len(pair) > max_text:
            problems.append("text_too_long")
            pair = None
    model = _first(params.get("model"))
    if model is not None and (len(model) > MAX_MODEL_NAME or not model.strip()):
        problems.append("model_too_long")
        model = None
    example = _first(params.get("example"))
    if example is not None and example not in examples:
        problems.append("bad_example")
        example = None
    layer_text = _first(params.get("layer"))
    layer = _index(layer_text)
    if layer_text is not None and layer is None:
        problems.append("bad_layer")
    head_text = _first(params.get("head"))
    average = head_text == "avg"
    head = None if average else _index(head_text)
    if head_text is not None and head is None and not average:
        problems.append("bad_head")
    text_lost = _first(params.get("toolong")) is not None
    if text_lost:
        problems.append("text_not_in_link")
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
        text_lost=text_lost,
    )
    return view, tuple(dict.fromkeys(problems))


def out_of_range(view: SharedView, n_layers: int, n_heads: int) -> tuple[OutOfRange, ...]:
    """The layer and head of ``view`` that a model with ``n_layers`` x ``n_heads`` does not have,
    each with the one shown instead (the nearest).

    >>> layer, head = out_of_range(SharedView(layer=-1, head=999), 6, 12)
    >>> layer
    OutOfRange(what='layer', value=-1, last=5, shown=0)
    >>> head
    OutOfRange(what='head', value=999, last=11, shown=11)
    >>> out_of_range(SharedView(layer=5, head=0), 6, 12)
    ()
    """
    found = []
    for what, value, count in (("layer", view.layer, n_layers), ("head", view.head, n_heads)):
        if value is not None and not 0 <= value < count:
            found.append(OutOfRange(what, value, count - 1, min(max(value, 0), count - 1)))
    return tuple(found)


def make_link(
    *,
    model: str,
    text: str,
    pair: str | None,
    layer: int,
    head: int | None,
    lang: Lang,
    examples: Mapping[str, tuple[str, str | None]],
) -> Link:
    """The link to a view: an example's id when the text is one (short links), else the text
    itself while it is short, else compressed while that fits :data:`MAX_LINK_VALUE`, else no
    text at all and ``toolong=1`` (only a session file carries such a text).

    >>> make_link(model="minilm", text="Hi", pair=None, layer=1, head=None, lang="en",
    ...           examples={}).params
    {'model': 'minilm', 'layer': '1', 'head': 'avg', 'lang': 'en', 'text': 'Hi'}
    >>> make_link(model="m", text="ab " * 1000, pair=None, layer=0, head=0, lang="en",
    ...           examples={}).carries
    'packed'
    """
    params = {
        "model": model,
        "layer": str(layer),
        "head": "avg" if head is None else str(head),
        "lang": lang,
    }
    example = next((key for key, value in examples.items() if value == (text, pair)), None)
    if example is not None:
        return Link({**params, "example": example}, "example")
    plain = {"text": text, "pair": pair} if pair else {"text": text}
    encoded = sum(len(quote_plus(value)) for value in plain.values())
    if len(text) + len(pair or "") <= MAX_LINK_TEXT and encoded <= MAX_LINK_VALUE:
        return Link({**params, **plain}, "text")
    packed = pack_text(text, pair)
    if len(packed) <= MAX_LINK_VALUE:
        return Link({**params, "z": packed}, "packed")
    return Link({"model": model, "lang": lang, "toolong": "1"}, "none")


def link_params(**view) -> dict[str, str]:
    """The query parameters of :func:`make_link`."""
    return make_link(**view).params


def session_file(
    *,
    model: str,
    text: str,
    pair: str | None,
    layer: int,
    head: int | None,
    lang: Lang,
    max_tokens: int,
) -> bytes:
    """A view as a session file (UTF-8 JSON) that :func:`read_session_file` opens again: what a
    link would carry, whatever the length of the text."""
    view = {
        "format": SESSION_FORMAT,
        "version": 1,
        "model": model,
        "text": text,
        "pair": pair,
        "layer": layer,
        "head": "avg" if head is None else head,
        "lang": lang,
        "max_tokens": max_tokens,
    }
    return json.dumps(view, ensure_ascii=False, indent=1).encode("utf-8")


def read_session_file(
    data: bytes, *, examples: Sequence[str]
) -> tuple[SharedView, tuple[LinkProblem, ...], int | None]:
    """The view a session file describes, its problems (as for a link) and its token limit;
    an :class:`InputError` for a file that is not one, damaged or over
    :data:`MAX_SESSION_BYTES`. Every value is then checked like typed input.

    >>> blob = session_file(model="minilm", text="Hi", pair=None, layer=2, head=None,
    ...                     lang="ja", max_tokens=64)
    >>> view, problems, limit = read_session_file(blob, examples=[])
    >>> view.text, view.layer, view.average, view.lang, problems, limit
    ('Hi', 2, True, 'ja', (), 64)
    """
    refused = InputError("error.session_file", limit=MAX_SESSION_BYTES // 2**20)
    if len(data) > MAX_SESSION_BYTES:
        raise refused
    try:
        found = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise refused from error
    if not isinstance(found, dict) or found.get("format") != SESSION_FORMAT:
        raise refused
    params = {
        key: str(value)
        for key, value in found.items()
        if key in ("model", "text", "pair", "layer", "head", "lang")
        and isinstance(value, str | int)
        and not isinstance(value, bool)
    }
    view, problems = parse_link(params, examples=examples, max_text=MAX_SESSION_TEXT)
    limit = found.get("max_tokens")
    limit = limit if isinstance(limit, int) and not isinstance(limit, bool) and limit > 0 else None
    return view, problems, limit
