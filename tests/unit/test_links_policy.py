"""Links, session files and unknown addresses without Streamlit: what a link carries for every
length of text, the compressed ``z=`` and its bomb, layer and head ranges, the session file, the
redirect of an address that is no page, and example titles in every language."""

from __future__ import annotations

import asyncio
import base64
import json
import random
import re
import time
import tracemalloc
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from core.policy.errors import InputError
from core.policy.examples import load_examples
from core.policy.i18n import LANGUAGES
from core.policy.links import (
    MAX_LINK_VALUE,
    MAX_UNPACKED_BYTES,
    SharedView,
    make_link,
    out_of_range,
    pack_text,
    parse_link,
    read_session_file,
    session_file,
    unpack_text,
)
from ui.routes import START_PAGE, UnknownPageRedirect, page_paths, redirect_for

ROOT = Path(__file__).resolve().parents[2]
VIEW = {"model": "minilm", "pair": None, "layer": 2, "head": 3, "lang": "ja", "examples": {}}


def random_letters(n: int) -> str:
    rng = random.Random(0)
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz ") for _ in range(n))


@pytest.mark.parametrize(
    ("text", "carries"),
    [
        ("short", "text"),
        ("word " * 500, "packed"),  # 2 500 characters: more than a plain text= holds
        ("The quick brown fox. " * 200, "packed"),
        ("猫" * 1500, "packed"),  # 1 500 characters, but 13 500 once URL-encoded
        (random_letters(30_000), "none"),
    ],
)
def test_a_link_carries_its_text_or_says_it_cannot(text, carries):
    link = make_link(text=text, **VIEW)
    assert link.carries == carries
    assert all(len(value) <= MAX_LINK_VALUE for value in link.params.values())
    view, problems = parse_link(link.params, examples=[])
    if carries == "none":  # no text, and no layer or head of a view it cannot open
        assert view.text is None and view.text_lost and problems == ("text_not_in_link",)
        assert "layer" not in link.params and "example" not in link.params
    else:
        assert (view.text, view.layer, view.head, view.lang, problems) == (text, 2, 3, "ja", ())


def test_a_pair_travels_with_its_text():
    link = make_link(**{**VIEW, "pair": "B " * 1500}, text="A " * 1500)
    view, _ = parse_link(link.params, examples=[])
    assert (view.text, view.pair) == ("A " * 1500, "B " * 1500)


def test_an_example_is_linked_by_its_id():
    examples = {"neko": ("吾輩は猫である。", None)}
    link = make_link(**{**VIEW, "examples": examples}, text="吾輩は猫である。")
    assert (link.carries, link.params["example"]) == ("example", "neko")


def test_a_decompression_bomb_is_refused_without_unpacking_it():
    bomb = base64.urlsafe_b64encode(zlib.compress(b"a" * 12_000_000, 9)).decode().rstrip("=")
    assert len(bomb) < 16_000  # short enough to be a link
    tracemalloc.start()
    started = time.perf_counter()
    view, problems = parse_link({"z": bomb}, examples=[])
    seconds = time.perf_counter() - started
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert view.text is None and problems == ("bad_packed",)
    assert peak < 4 * MAX_UNPACKED_BYTES and seconds < 1  # it stopped at the limit


@pytest.mark.parametrize(
    "value",
    [
        "!!!",
        "eJzLSM3JyQcABiwCFQ",  # "hello": zlib, but not our JSON
        pack_text("fine")[:-4],  # cut short
        base64.urlsafe_b64encode(zlib.compress(b'{"text": 5}')).decode(),
        base64.urlsafe_b64encode(zlib.compress(b"\xff\xfe")).decode(),
        "A" * 20_000,
    ],
)
def test_a_damaged_packed_text_is_refused(value):
    with pytest.raises(ValueError):
        unpack_text(value.rstrip("="))
    assert parse_link({"z": value}, examples=[])[1] == ("bad_packed",)


def test_numbers_out_of_range_are_named_with_the_model_range():
    view, problems = parse_link({"layer": "-1", "head": "999"}, examples=[])
    assert problems == () and (view.layer, view.head) == (-1, 999)
    issues = out_of_range(view, 6, 12)
    assert [(i.what, i.value, i.last, i.shown) for i in issues] == [
        ("layer", -1, 5, 0),
        ("head", 999, 11, 11),
    ]
    assert parse_link({"layer": "9" * 5000}, examples=[])[0].layer == 10**9  # no int() crash
    assert parse_link({"layer": "1e3"}, examples=[])[1] == ("bad_layer",)


def test_a_session_file_round_trips_any_length_of_text():
    text = random_letters(50_000)
    blob = session_file(
        model="smollm2", text=text, pair=None, layer=7, head=None, lang="ja", max_tokens=300
    )
    view, problems, limit = read_session_file(blob, examples=[])
    assert (view.model, view.text, view.layer, view.average, view.lang) == (
        "smollm2",
        text,
        7,
        True,
        "ja",
    )
    assert (problems, limit) == ((), 300)


@pytest.mark.parametrize(
    "data",
    [
        b"not json",
        b'{"text": "no format marker"}',
        json.dumps({"format": "attnscope-session", "text": "x" * (5 << 20)}).encode(),
        "\udcff".encode("utf-8", "surrogatepass"),
    ],
)
def test_a_bad_session_file_is_a_message(data):
    with pytest.raises(InputError, match="not an AttnScope session file"):
        read_session_file(data, examples=[])


def test_bad_values_in_a_session_file_are_dropped_like_a_link():
    blob = json.dumps(
        {"format": "attnscope-session", "text": "hi", "layer": "x", "head": True, "model": 5}
    ).encode()
    view, problems, limit = read_session_file(blob, examples=[])
    assert (view.text, view.layer, view.head, view.model, problems, limit) == (
        "hi",
        None,
        None,
        "5",
        ("bad_layer",),
        None,
    )


# --- Addresses that are no page ---------------------------------------------------------------


def test_every_page_address_is_its_script_name():
    """ui.routes knows the pages by their file names: app.py must give each page that address."""
    source = (ROOT / "app.py").read_text(encoding="utf-8")
    pages = re.findall(r'"pages/(\w+)\.py",\s*"[\w.]+",\s*"[^"]+",\s*"(\w+)"', source)
    assert len(pages) >= 8
    assert all(stem == url for stem, url in pages), pages
    assert {stem for stem, _ in pages} <= page_paths()
    default = re.search(r'"pages/(\w+)\.py",[^)]*default=True', source, re.S)
    assert default and default.group(1) == START_PAGE  # the page Streamlit serves at /


@pytest.mark.parametrize(
    ("path", "query", "target"),
    [
        ("/pages/common", "", "/?missing=pages/common"),
        ("/heatmaps/extra", "lang=ja", "/?lang=ja&missing=heatmaps/extra"),
        ("/nosuch", "", "/?missing=nosuch"),
        ("/a&b=c", "", "/?missing=a%26b%3Dc"),
        ("/heatmaps", "", "/"),  # the start page's own address: Streamlit serves it at /
        ("/heatmaps", "layer=2&lang=ja", "/?layer=2&lang=ja"),
        ("/views", "lang=ja", None),
        ("/", "lang=ja", None),
        ("/_stcore/health", "", None),
        ("/static/js/index.js", "", None),
        ("/favicon.png", "", None),
        ("/media/abc.json", "", None),
    ],
)
def test_redirect_for(path, query, target):
    assert redirect_for(path, query) == target


def asgi_get(path: str, headers: dict[str, str]) -> tuple[int, dict[bytes, bytes], bool]:
    """Call the middleware around an app that records whether it was reached."""
    reached = []

    async def inner(scope, receive, send):
        reached.append(scope["path"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"index"})

    sent = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "http.request"}

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": b"lang=ja",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
    }
    # In a thread of its own: Playwright's sync API (the browser tests, same process) leaves an
    # event loop running in the main thread, and asyncio.run refuses to start under it.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, UnknownPageRedirect(inner)(scope, receive, send)).result()
    return sent[0]["status"], dict(sent[0]["headers"]), bool(reached)


def test_the_middleware_redirects_only_a_browser_opening_a_page():
    status, headers, reached = asgi_get("/pages/common", {"Sec-Fetch-Dest": "document"})
    assert (status, headers[b"location"], reached) == (
        302,
        b"/?lang=ja&missing=pages/common",
        False,
    )
    # The same address asked by a script, a frame or a client without the header passes.
    for headers in ({"Sec-Fetch-Dest": "script"}, {"Sec-Fetch-Dest": "iframe"}, {}):
        assert asgi_get("/pages/common", headers)[::2] == (200, True)
    assert asgi_get("/views", {"Sec-Fetch-Dest": "document"})[::2] == (200, True)
    status, headers, reached = asgi_get("/heatmaps", {"Sec-Fetch-Dest": "document"})
    assert (status, headers[b"location"], reached) == (302, b"/?lang=ja", False)  # the start page
    # The base-path probe the front end makes from a page address is never redirected.
    assert asgi_get("/heatmaps/_stcore/health", {"Sec-Fetch-Dest": "empty"})[::2] == (200, True)


# --- Examples ---------------------------------------------------------------------------------


def test_every_example_has_a_title_in_every_language():
    for example in load_examples():
        assert set(example.titles) == set(LANGUAGES), example.id
    japanese = [example.title("ja") for example in load_examples()]
    assert not any(re.search(r"[A-Za-z]{4,}", t.replace("Python", "")) for t in japanese), japanese
    assert SharedView().wants_analysis is False
