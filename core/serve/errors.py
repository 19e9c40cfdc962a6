"""The API's error bodies: ``{"error": {"key", "message", "message_ja", "message_en",
"fields"}}`` from catalogue keys, ``message`` in the language ``Accept-Language`` prefers; and
pydantic's validation errors as catalogue messages naming the field (422), bad JSON as 400.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import Request
from fastapi.responses import JSONResponse

from core.policy.errors import AttnScopeError, InputError
from core.policy.i18n import t
from core.serve.runtime import request_lang, status_of

__all__ = ["FieldError", "error_body", "error_response", "field_error", "validation_response"]

# pydantic's error types -> the catalogue's words for what a field must be
_TYPES = {
    "int_type": "serve.type_int",
    "int_from_float": "serve.type_int",
    "float_type": "serve.type_float",
    "string_type": "serve.type_str",
    "bool_type": "serve.type_bool",
}
_BOUNDS = {
    "ge": "serve.bound_ge",
    "gt": "serve.bound_gt",
    "le": "serve.bound_le",
    "lt": "serve.bound_lt",
}
_BOUND_OF_TYPE = {
    "greater_than_equal": "ge",
    "greater_than": "gt",
    "less_than_equal": "le",
    "less_than": "lt",
}


class FieldError(InputError):
    """An unusable request field (422), with the fields at fault."""

    def __init__(self, key: str, /, *, fields: Sequence[str], **params: object) -> None:
        super().__init__(key, **params)
        self.fields = list(fields)


def field_error(name: str, bound: str, limit: object, value: object) -> FieldError:
    """``name`` must be ``bound`` (``ge``, ``gt``, ``le``, ``lt``) ``limit``; it was ``value``."""
    return FieldError(
        "serve.field_range",
        fields=[name],
        field=name,
        bound=_BOUNDS[bound],
        limit=limit,
        value=value,
    )


def _text(error: AttnScopeError, lang: str) -> str:
    params = dict(error.params)
    for name in ("bound", "expected"):  # a nested catalogue key, in the same language
        if name in params:
            params[name] = t(str(params[name]), lang, limit=params.get("limit"))  # type: ignore[arg-type]
    return t(error.key, lang, **params)  # type: ignore[arg-type]


def error_body(error: AttnScopeError, lang: str) -> dict[str, Any]:
    """The JSON of ``error`` (both languages; ``message`` in ``lang``)."""
    english, japanese = _text(error, "en"), _text(error, "ja")
    return {
        "error": {
            "key": error.key,
            "message": japanese if lang == "ja" else english,
            "message_ja": japanese,
            "message_en": english,
            "fields": list(getattr(error, "fields", [])),
        }
    }


def error_response(
    error: AttnScopeError,
    request: Request,
    retry_after: str | None = None,
    *,
    status: int | None = None,
) -> JSONResponse:
    """``error`` as a response: its status (:func:`core.serve.runtime.status_of`) unless given,
    and ``Retry-After`` for 429 and 503."""
    lang = request_lang(request.headers.get("accept-language"))
    headers = {"Retry-After": retry_after} if retry_after else None
    code = status or status_of(error)
    return JSONResponse(error_body(error, lang), status_code=code, headers=headers)


def _field(location: Sequence[object]) -> str:
    parts = [str(p) for p in location if p != "body"]
    return ".".join(parts)


def _as_error(problem: Mapping[str, Any], fields: list[str]) -> AttnScopeError:
    """One pydantic error as a catalogue error."""
    kind = str(problem.get("type", ""))
    field = _field(problem.get("loc", ()))
    context = problem.get("ctx") or {}
    value = problem.get("input")
    if kind == "json_invalid" or not field:  # not JSON, or not an object
        detail = str(context.get("error") or problem.get("msg", ""))
        return InputError("serve.bad_json", detail=detail)
    if kind == "missing":
        return FieldError("serve.field_missing", fields=fields, field=field)
    if kind == "extra_forbidden":
        return FieldError("serve.field_unknown", fields=fields, field=field)
    if kind in _TYPES:
        return FieldError(
            "serve.field_type", fields=fields, field=field, expected=_TYPES[kind], value=repr(value)
        )
    if kind in _BOUND_OF_TYPE:
        bound = _BOUND_OF_TYPE[kind]
        return FieldError(
            "serve.field_range",
            fields=fields,
            field=field,
            bound=_BOUNDS[bound],
            limit=context.get(bound),
            value=value,
        )
    if kind == "string_too_short":
        return FieldError("serve.field_empty", fields=fields, field=field)
    return FieldError("serve.field_invalid", fields=fields, field=field, problem=problem["msg"])


def validation_response(problems: Sequence[Mapping[str, Any]], request: Request) -> JSONResponse:
    """pydantic's errors as one response: 400 when the body is not a JSON object, else 422
    naming every field at fault (the message says what is wrong with the first)."""
    fields = list(dict.fromkeys(_field(p.get("loc", ())) for p in problems))
    error = _as_error(problems[0], [f for f in fields if f])
    status = 400 if error.key == "serve.bad_json" else 422
    return error_response(error, request, status=status)
