"""What one API server holds: its settings, its one concurrency gate (with counters that
``GET /status`` reports), a rate limiter per client address, and the process's bounded cache of
loaded models; and how an :class:`~core.policy.errors.AttnScopeError` becomes an HTTP status.

The limits are the web app's (:mod:`core.policy.settings`, :mod:`core.policy.limits`): the same
variables, the same demo mode, the same gate capacity.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from core.engine.models import LoadedModel, load_model
from core.methods.sampling import MAX_NEW_TOKENS
from core.policy.errors import AttnScopeError, InputError, ModelNotFoundError
from core.policy.i18n import DEFAULT_LANG, Lang, parse_lang
from core.policy.limits import ConcurrencyGate, RateLimiter
from core.policy.settings import Settings

__all__ = [
    "MAX_CLIENTS",
    "MAX_MODELS",
    "ServeState",
    "cached_model",
    "loaded_models",
    "max_new_tokens",
    "request_lang",
    "retry_after",
    "status_of",
]

MAX_MODELS = 3  # as the app's get_model: MiniLM 90 MB, SmolLM2 270 MB, one more
MAX_CLIENTS = 1024  # rate limiters kept (the least recently seen address is forgotten first)

_STATUS_BY_KEY = {
    "error.text_too_long": 413,
    "error.prompt_too_long": 413,
    "error.prompt_over_server_limit": 413,
    "error.local_path_forbidden": 403,
    "error.remote_code_forbidden": 403,
    "error.model_not_allowed": 403,
    "error.rate_limited": 429,
    "error.busy": 503,
}

_models: OrderedDict[str, LoadedModel] = OrderedDict()
_models_lock = threading.Lock()


def cached_model(name: str) -> LoadedModel:
    """``load_model(name)``, once per process; at most :data:`MAX_MODELS` stay loaded (the least
    recently used is dropped). Loads are serialised: two requests for a new model load it once."""
    key = name.strip()
    with _models_lock:
        if key in _models:
            _models.move_to_end(key)
            return _models[key]
        loaded = load_model(key)
        _models[key] = loaded
        while len(_models) > MAX_MODELS:
            _models.popitem(last=False)
        return loaded


def loaded_models() -> list[str]:
    with _models_lock:
        return list(_models)


def status_of(error: AttnScopeError) -> int:
    """The HTTP status of an error people see: 413 too long, 403 not allowed here, 404 no such
    model, 429 rate limit, 503 queue full, 422 any other unusable input, 500 the server's fault.

    >>> status_of(InputError("error.text_too_long", chars=9, limit=5)), status_of(
    ...     InputError("error.empty_text")), status_of(ModelNotFoundError("error.no_model"))
    (413, 422, 404)
    """
    if error.key in _STATUS_BY_KEY:
        return _STATUS_BY_KEY[error.key]
    if isinstance(error, ModelNotFoundError):
        return 404
    if isinstance(error, InputError | TypeError):  # UnsupportedModelError is a TypeError
        return 422
    return 500


def request_lang(accept_language: str | None) -> Lang:
    """The catalogue language an ``Accept-Language`` header prefers (by its q-values), else
    English.

    >>> request_lang("ja-JP,ja;q=0.9,en;q=0.8"), request_lang("fr, en;q=0.5, ja;q=0.7")
    ('ja', 'ja')
    >>> request_lang(None), request_lang("de"), request_lang("en-GB")
    ('en', 'en', 'en')
    """
    best: tuple[float, Lang] = (0.0, DEFAULT_LANG)
    for part in (accept_language or "").split(","):
        tag, _, params = part.strip().partition(";")
        lang = tag.split("-")[0].strip().lower()
        if parse_lang(lang) != lang:
            continue
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                continue
        if quality > best[0]:
            best = (quality, parse_lang(lang))
    return best[1]


def max_new_tokens(settings: Settings) -> int:
    """The most new tokens one request may ask for: the generation limit, and room for at least
    one prompt token within the server's token limit.

    >>> from core.policy.settings import DEMO, LOCAL
    >>> max_new_tokens(LOCAL), max_new_tokens(DEMO)
    (512, 511)
    """
    return min(MAX_NEW_TOKENS, settings.max_tokens - 1)


@dataclass
class ServeState:
    """One server's settings, gate, counters and rate limiters."""

    settings: Settings
    default_model: str
    gate: ConcurrencyGate = field(init=False)
    max_active: int = 0
    served: int = 0
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _limiters: OrderedDict[str, RateLimiter] = field(default_factory=OrderedDict)

    def __post_init__(self) -> None:
        self.gate = ConcurrencyGate(self.settings.max_concurrent)  # the app's capacity

    def count(self, client: str) -> None:
        """Count one request from ``client`` (an address) against its rate limit: an
        :class:`InputError` (429) past it."""
        with self._lock:
            limiter = self._limiters.pop(client, None) or RateLimiter(
                self.settings.rate_limit, self.settings.rate_window_s
            )
            self._limiters[client] = limiter  # most recently seen last
            while len(self._limiters) > MAX_CLIENTS:
                self._limiters.popitem(last=False)
        limiter.check()

    @contextmanager
    def slot(self) -> Iterator[dict[str, int]]:
        """Hold one of the gate's slots; yields ``{"queued": 0 or 1, "ahead": n}``: whether the
        request waited and how many were ahead of it when it first did. A wait past the queue
        timeout raises ``error.busy`` (503)."""
        seen: dict[str, int] = {"queued": 0, "ahead": 0}

        def waiting(ahead: int) -> None:
            if not seen["queued"]:
                seen.update(queued=1, ahead=ahead)

        with self.gate.slot(timeout=self.settings.queue_timeout_s, on_wait=waiting):
            with self._lock:
                self._active += 1
                self.served += 1
                self.max_active = max(self.max_active, self._active)
            try:
                yield seen
            finally:
                with self._lock:
                    self._active -= 1

    def status(self) -> dict[str, object]:
        settings = self.settings
        return {
            "demo": settings.demo,
            "capacity": self.gate.capacity,
            "active": self.gate.active,
            "waiting": self.gate.waiting,
            "max_active": self.max_active,
            "served": self.served,
            "max_tokens": settings.max_tokens,
            "max_text_chars": settings.max_text_chars,
            "max_new_tokens": max_new_tokens(settings),
            "allowed_models": list(settings.allowed_models) if settings.allowed_models else None,
            "rate_limit": settings.rate_limit,
            "rate_window_s": settings.rate_window_s,
            "queue_timeout_s": settings.queue_timeout_s,
            "default_model": self.default_model,
            "models_loaded": loaded_models(),
        }


def retry_after(error: AttnScopeError, settings: Settings) -> str | None:
    """The ``Retry-After`` seconds of a 429 (the limiter's wait) or a 503 (a few seconds)."""
    if error.key == "error.rate_limited":
        return str(max(1, math.ceil(float(error.params.get("seconds", 1)))))
    if error.key == "error.busy":
        return str(max(1, math.ceil(min(settings.queue_timeout_s, 30.0))))
    return None
