"""What a deployment allows: limits on models, input and load, and the demo mode that tightens
them for a public server.

Outside demo mode the same limits exist with generous defaults. Demo mode is turned on by
``ATTNSCOPE_DEMO=1`` or, on Streamlit Community Cloud, ``[attnscope] demo = true`` in the app's
secrets; single limits can be changed with ``ATTNSCOPE_*`` variables (see :func:`load_settings`),
but demo mode never allows local paths or a model's own code.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path

from core.engine.models import BUILTIN_MODELS
from core.policy.errors import InputError
from core.policy.parsing import whole_number

__all__ = ["DEMO", "LOCAL", "Settings", "check_request", "load_settings", "looks_like_path"]


@dataclass(frozen=True)
class Settings:
    """Every limit the app enforces."""

    demo: bool
    allowed_models: tuple[str, ...] | None  # None: any model the machine can load
    max_tokens: int  # the most tokens one analysis may have
    max_text_chars: int  # longer texts are refused before tokenizing
    allow_local_paths: bool  # model folders on the server's disk
    allow_remote_code: bool  # may a user turn on trust_remote_code at all
    max_concurrent: int  # analyses running at once, all sessions together
    queue_timeout_s: float  # how long a request waits for a free slot
    rate_limit: int  # analyses per session ...
    rate_window_s: float  # ... per this many seconds
    max_corpus_texts: int | None = None  # corpus mode: texts per run (None: any number)
    allow_ray: bool = True  # corpus mode's Ray engine (its services listen on every interface)
    # The lab (core.lab): the most of each LabShape field and of training steps; () no limit.
    lab_limits: tuple[tuple[str, int], ...] = ()


# Generous defaults for a laptop or a GPU box: the same limits exist, they rarely bite.
LOCAL = Settings(
    demo=False,
    allowed_models=None,
    max_tokens=8192,
    max_text_chars=200_000,
    allow_local_paths=True,
    allow_remote_code=True,
    max_concurrent=4,
    queue_timeout_s=600.0,
    rate_limit=120,
    rate_window_s=60.0,
)
# A public demo: the bundled models only, short inputs, a queue and a per-session rate limit.
DEMO = Settings(
    demo=True,
    allowed_models=tuple(BUILTIN_MODELS),
    max_tokens=512,
    max_text_chars=20_000,
    allow_local_paths=False,
    allow_remote_code=False,
    max_concurrent=2,
    queue_timeout_s=120.0,
    rate_limit=10,
    rate_window_s=60.0,
    max_corpus_texts=200,
    allow_ray=False,
    lab_limits=(
        ("n_layers", 4),
        ("n_heads", 8),
        ("d_model", 128),
        ("context", 256),
        ("vocab_size", 4000),
        ("steps", 3000),
    ),
)
_TRUE = {"1", "true", "yes", "on"}
_INT_VARIABLES = {
    "ATTNSCOPE_MAX_TOKENS": "max_tokens",
    "ATTNSCOPE_MAX_TEXT_CHARS": "max_text_chars",
    "ATTNSCOPE_MAX_CONCURRENT": "max_concurrent",
    "ATTNSCOPE_RATE_LIMIT": "rate_limit",
}
_FLOAT_VARIABLES = {
    "ATTNSCOPE_QUEUE_TIMEOUT": "queue_timeout_s",
    "ATTNSCOPE_RATE_WINDOW": "rate_window_s",
}


def _is_true(value: object) -> bool:
    return str(value).strip().lower() in _TRUE


def load_settings(
    environ: Mapping[str, str] | None = None, secrets: Mapping[str, object] | None = None
) -> Settings:
    """The settings of this process: demo mode from ``ATTNSCOPE_DEMO`` (or ``secrets``'
    ``attnscope.demo``), then ``ATTNSCOPE_MAX_TOKENS``, ``_MAX_TEXT_CHARS``,
    ``_MAX_CONCURRENT``, ``_RATE_LIMIT``, ``_RATE_WINDOW``, ``_QUEUE_TIMEOUT`` and
    ``ATTNSCOPE_ALLOWED_MODELS`` (comma-separated). A malformed value raises ``ValueError``
    naming it, so a misconfigured server fails at start, not later.

    >>> load_settings({}).demo, load_settings({"ATTNSCOPE_DEMO": "1"}).max_tokens
    (False, 512)
    >>> load_settings({"ATTNSCOPE_DEMO": "1", "ATTNSCOPE_MAX_TOKENS": "256"}).max_tokens
    256
    """
    env = os.environ if environ is None else environ
    section = (secrets or {}).get("attnscope", {})
    secret_demo = section.get("demo", False) if isinstance(section, Mapping) else False
    settings = DEMO if _is_true(env.get("ATTNSCOPE_DEMO", "")) or _is_true(secret_demo) else LOCAL
    changes: dict[str, object] = {}
    for variable, field in _INT_VARIABLES.items():
        if env.get(variable):
            number = whole_number(env[variable])
            if number is None or number < 1:
                raise ValueError(
                    f"{variable} must be a whole number of at least 1, got {env[variable]!r}"
                )
            changes[field] = number
    for variable, field in _FLOAT_VARIABLES.items():
        if env.get(variable):
            try:
                number = float(env[variable])
            except ValueError:
                number = -1.0
            if not number > 0:
                raise ValueError(f"{variable} must be a positive number, got {env[variable]!r}")
            changes[field] = number
    if env.get("ATTNSCOPE_ALLOWED_MODELS"):
        names = tuple(n.strip() for n in env["ATTNSCOPE_ALLOWED_MODELS"].split(",") if n.strip())
        changes["allowed_models"] = names or None
    settings = replace(settings, **changes)
    if settings.demo:  # never loosened by a variable
        settings = replace(
            settings, allow_local_paths=False, allow_remote_code=False, allow_ray=False
        )
    return settings


_PATHLIKE = re.compile(r"^(?:[/~.\\]|[A-Za-z]:[\\/])|/.*/|\.\.")


def looks_like_path(name: str) -> bool:
    """Whether a model name points at the disk rather than a built-in or a Hub id.

    >>> [looks_like_path(n) for n in ("minilm", "owner/model", "/srv/m", "../m", "a/b/c", "~x")]
    [False, False, True, True, True, True]
    """
    name = name.strip()
    if _PATHLIKE.search(name):
        return True
    try:
        return name not in BUILTIN_MODELS and Path(name).is_dir()
    except (OSError, ValueError):  # too long or with NUL bytes: no such folder
        return False


def check_request(
    settings: Settings,
    *,
    model: str,
    text: str,
    pair: str | None = None,
    trust_remote_code: bool = False,
) -> None:
    """Refuse, with a message, what these settings do not allow; checked before any work."""
    length = len(text or "") + len(pair or "")
    if length > settings.max_text_chars:
        raise InputError("error.text_too_long", chars=length, limit=settings.max_text_chars)
    name = model.strip()
    if trust_remote_code and not settings.allow_remote_code:
        raise InputError("error.remote_code_forbidden")
    if looks_like_path(name) and not settings.allow_local_paths:
        raise InputError("error.local_path_forbidden")
    allowed = settings.allowed_models
    if allowed is not None and name.lower() not in {a.lower() for a in allowed}:
        raise InputError("error.model_not_allowed", model=name, allowed=", ".join(allowed))
