"""``GET /docs``: the OpenAPI document as one self-contained HTML page (no script, no CDN):
each endpoint with its request fields (type, default, range) and its status codes, then every
schema. Swagger UI and ReDoc load their JavaScript from a CDN, and no installed package bundles
them, so a reader without a network would see a blank page there.
"""

from __future__ import annotations

import html
from typing import Any

from core.policy.i18n import t
from core.serve.runtime import request_lang

__all__ = ["docs_html"]

_STYLE = (
    "body{font:15px/1.45 system-ui,sans-serif;max-width:960px;margin:2em auto;padding:0 1em}"
    "table{border-collapse:collapse;margin:.5em 0 1.5em}td,th{border:1px solid #ccc;"
    "padding:3px 8px;text-align:left;vertical-align:top}code{background:#f3f3f3}"
    "h2{border-top:1px solid #ddd;padding-top:.8em}"
)
_RANGES = (("minimum", "≥"), ("exclusiveMinimum", ">"), ("maximum", "≤"), ("exclusiveMaximum", "<"))


def _type(schema: dict[str, Any]) -> str:
    """A field's type in a word or two: ``integer``, ``string | null``, ``array of Step``."""
    if "$ref" in schema:
        return schema["$ref"].rsplit("/", 1)[-1]
    if "anyOf" in schema:
        return " | ".join(_type(s) for s in schema["anyOf"])
    if schema.get("type") == "array":
        return f"array of {_type(schema.get('items', {}))}"
    return str(schema.get("type", "object"))


def _range(schema: dict[str, Any]) -> str:
    parts = [f"{sign} {schema[name]}" for name, sign in _RANGES if name in schema]
    if "minLength" in schema:
        parts.append(f"length ≥ {schema['minLength']}")
    return ", ".join(parts)


def _fields(schema: dict[str, Any], lang: str) -> str:
    """A table of an object schema's fields."""
    required = set(schema.get("required", []))
    head = "".join(
        f"<th>{html.escape(t(k, lang))}</th>"
        for k in ("serve.docs_field", "serve.docs_type", "serve.docs_default", "serve.docs_range")
    )
    rows = []
    for name, field in schema.get("properties", {}).items():
        default = "—" if name in required else repr(field.get("default"))
        description = field.get("description", "")
        rows.append(
            "<tr>"
            + "".join(
                f"<td>{html.escape(str(cell))}</td>"
                for cell in (name, _type(field), default, _range(field) or description)
            )
            + "</tr>"
        )
    return f"<table><tr>{head}</tr>{''.join(rows)}</table>"


def docs_html(spec: dict[str, Any], accept_language: str | None = None) -> str:
    """The page for the OpenAPI document ``spec`` (headings in the reader's language)."""
    lang = request_lang(accept_language)
    info = spec.get("info", {})
    schemas = spec.get("components", {}).get("schemas", {})
    out = [
        f"<!doctype html><html lang='{lang}'><head><meta charset='utf-8'>",
        f"<title>{html.escape(info.get('title', ''))}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(info.get('title', ''))}</h1>",
        f"<p>{html.escape(t('serve.docs_intro', lang))} ",
        "<a href='/openapi.json'>/openapi.json</a></p>",
    ]
    for path, operations in spec.get("paths", {}).items():
        for method, operation in operations.items():
            out.append(f"<h2><code>{html.escape(method.upper())} {html.escape(path)}</code></h2>")
            about = operation.get("description") or operation.get("summary", "")
            out.append(f"<p>{html.escape(about)}</p>")
            body = operation.get("requestBody", {}).get("content", {}).get("application/json")
            if body:
                ref = _type(body["schema"])
                out.append(
                    f"<h3>{html.escape(t('serve.docs_request', lang))}: {html.escape(ref)}</h3>"
                )
                out.append(_fields(schemas.get(ref, {}), lang))
            codes = ", ".join(
                f"{code} {response.get('description', '')}"
                for code, response in operation.get("responses", {}).items()
            )
            heading = html.escape(t("serve.docs_responses", lang))
            out.append(f"<p><b>{heading}</b>: {html.escape(codes)}</p>")
    out.append(f"<h2>{html.escape(t('serve.docs_schemas', lang))}</h2>")
    for name, schema in schemas.items():
        out.append(f"<h3 id='{html.escape(name)}'>{html.escape(name)}</h3>")
        if schema.get("description"):
            out.append(f"<p>{html.escape(schema['description'])}</p>")
        out.append(_fields(schema, lang))
    out.append(f"<p>{html.escape(t('serve.docs_errors', lang))}</p></body></html>")
    return "".join(out)
