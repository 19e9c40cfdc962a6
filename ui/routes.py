"""What the web server does with an address that is no page of the app: it sends the browser to
the start page, which says so.

Streamlit answers any unknown path with its index page. Under a path of two segments
(``/pages/common``) that page's relative script addresses resolve to more index pages, and the
browser shows a blank page with dozens of console errors; under one segment (``/nosuch``) the
page loads, logs two failed requests and an error, and shows the start page without a word. The
redirect here happens before either.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

__all__ = ["MISSING_PARAM", "UnknownPageRedirect", "page_paths", "redirect_for"]


# Every page's address is its script's name (``pages/heatmaps.py`` is ``/heatmaps``; a test holds
# app.py's navigation to that).
PAGES_DIR = Path(__file__).resolve().parents[1] / "pages"
# The start page (app.py's default): Streamlit serves it at "/" only and answers its own name
# with a "Page not found" dialog, so its name is sent to "/" with the query kept.
START_PAGE = "heatmaps"
MISSING_PARAM = "missing"  # the start page's notice: the address that was no page
MAX_MISSING = 200  # characters of that address kept
# First path segments that belong to Streamlit itself (its API, assets, media, components, auth).
_STREAMLIT_ROUTES = frozenset(
    {"_stcore", "static", "media", "component", "app", "auth", "oauth2callback", "healthz"}
)


def page_paths() -> frozenset[str]:
    """The addresses of the app's pages (without the leading slash)."""
    return frozenset(path.stem for path in PAGES_DIR.glob("*.py") if path.stem != "__init__")


def _static_dir() -> str:
    from streamlit import file_util

    return file_util.get_static_dir()


def redirect_for(path: str, query: str = "", *, static_dir: str | None = None) -> str | None:
    """Where a browser asking for the page at ``path`` (relative to the app's base) is sent
    instead, with its query ``query`` kept; None for a page, Streamlit's own routes and files.

    >>> redirect_for("/pages/common", "lang=ja", static_dir="/nonexistent")
    '/?lang=ja&missing=pages/common'
    >>> [redirect_for(p, static_dir="/nonexistent") for p in ("/", "/views", "/_stcore/health")]
    [None, None, None]
    >>> redirect_for("/heatmaps", "layer=2&lang=ja", static_dir="/nonexistent")
    '/?layer=2&lang=ja'
    >>> redirect_for("/heatmaps/x<y", static_dir="/nonexistent")
    '/?missing=heatmaps/x%3Cy'
    """
    relative = path.strip("/")
    if relative == START_PAGE:
        return "/" + (f"?{query}" if query else "")
    if not relative or relative in page_paths():
        return None
    if relative.split("/", 1)[0] in _STREAMLIT_ROUTES:
        return None
    folder = static_dir if static_dir is not None else _static_dir()
    if os.path.isfile(os.path.join(folder, relative)) and ".." not in relative.split("/"):
        return None  # favicon.png, manifest.json and the like
    missing = f"{MISSING_PARAM}={quote(relative[:MAX_MISSING], safe='/')}"
    return "/?" + (f"{query}&{missing}" if query else missing)


class UnknownPageRedirect:
    """ASGI middleware: a browser opening an address that is no page (a ``GET`` whose
    ``Sec-Fetch-Dest`` is ``document``) gets a redirect to the start page with
    ``?missing=<address>``. Scripts, frames, fetches and the rest pass through untouched, and so
    does every request from a client that sends no ``Sec-Fetch-Dest`` (curl, health checks)."""

    def __init__(self, app) -> None:
        from streamlit import config

        self.app = app
        base = (config.get_option("server.baseUrlPath") or "").strip("/")
        self.base = f"/{base}" if base else ""

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope["method"] in ("GET", "HEAD"):
            headers = dict(scope.get("headers") or [])
            path = scope.get("path", "")
            if headers.get(b"sec-fetch-dest") == b"document" and path.startswith(self.base):
                query = scope.get("query_string", b"").decode("latin-1")
                target = redirect_for(path[len(self.base) :], query)
                if target is not None:
                    await send(
                        {
                            "type": "http.response.start",
                            "status": 302,
                            "headers": [
                                (b"location", (self.base + target).encode("latin-1")),
                                (b"cache-control", b"no-cache"),
                                (b"content-length", b"0"),
                            ],
                        }
                    )
                    await send({"type": "http.response.body", "body": b""})
                    return
        await self.app(scope, receive, send)
