"""What the whole server process shares: its settings, the concurrency queue every heavy step
waits in, each session's rate limit, and the caches of loaded models and analyses.

No Streamlit element may be called inside a cached function: a cached function replays its
elements on every cache hit, into blocks that no longer exist.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st

from core import Analysis, LoadedModel, analyze, load_model
from core.engine.devices import prefer_threads, server_threads, usable_cores
from core.engine.model_kinds import require_kind
from core.policy.limits import ConcurrencyGate, RateLimiter
from core.policy.progress import ProgressFn
from core.policy.settings import Settings, load_settings
from ui.state import RATE_KEY, REQUEST_KEY, Request
from ui.text import tr

_log = logging.getLogger("attnscope")


@st.cache_resource(show_spinner=False)
def app_settings() -> Settings:
    """This server's limits (demo mode from ``ATTNSCOPE_DEMO`` or the app's secrets): one
    object for the process, read once (``app_settings.clear()`` reads them again)."""
    try:
        secrets = st.secrets.to_dict()
    except Exception:  # no secrets file: the usual case outside Streamlit Community Cloud
        secrets = {}
    return load_settings(os.environ, secrets)


@st.cache_resource(show_spinner=False)
def concurrency_gate(capacity: int) -> ConcurrencyGate:
    """One gate for the whole server process (one per capacity, so a single one in practice):
    every session's heavy work passes through it."""
    return ConcurrencyGate(capacity)


@contextmanager
def heavy_work(status: object | None = None) -> Iterator[None]:
    """Hold one of the server's analysis slots for the block; while waiting, say so (in
    ``status`` if given, else in a placeholder that disappears)."""
    settings = app_settings()
    notice = None if status is not None else st.empty()

    def waiting(ahead: int) -> None:
        label = tr("run.waiting", ahead=ahead, running=settings.max_concurrent)
        if status is not None:
            status.update(label=label, state="running")
        else:
            notice.info(label)

    try:
        with concurrency_gate(settings.max_concurrent).slot(
            timeout=settings.queue_timeout_s, on_wait=waiting
        ):
            if notice is not None:
                notice.empty()
            yield
    finally:
        if notice is not None:
            notice.empty()


def count_request() -> None:
    """Count one user request against this session's rate limit (an InputError past it)."""
    settings = app_settings()
    limiter = st.session_state.get(RATE_KEY)
    wanted = (settings.rate_limit, settings.rate_window_s)
    if limiter is None or (limiter.limit, limiter.window) != wanted:
        limiter = RateLimiter(*wanted)
        st.session_state[RATE_KEY] = limiter
    limiter.check()


@st.cache_resource(show_spinner=False, max_entries=3)
def get_model(
    name: str,
    device: str | None,
    trust_remote_code: bool = False,
    _progress: ProgressFn | None = None,
) -> LoadedModel:
    """Load a model once per process, keyed by (name, device, remote code); at most 3 models
    (their weights: MiniLM 90 MB, SmolLM2 270 MB, an allowed Hub model its own size). Never
    mutated afterwards: ablation hooks are always removed. ``_progress`` (not part of the key)
    hears each loading stage as it starts; it may update a status label (a message of its own,
    never an element the cache would replay) but must not draw elements."""

    def report(stage: str) -> None:
        _log.info(stage)
        if _progress is not None:
            _progress(stage)

    # A server leaves a core to Streamlit, other sessions and the browser (see server_threads);
    # load_model applies it, and every script thread takes it at its first parallel op.
    prefer_threads(server_threads(usable_cores()))
    return load_model(name, device=device, progress=report, trust_remote_code=trust_remote_code)


def model_named(name: str) -> LoadedModel:
    """The cached model ``name``, loaded as the last Analyze request loaded it: its device, and
    remote code only where that request turned it on for this very model. Any other choice
    would miss the cache and load a second copy (or fail, for a model that needs remote code)."""
    request: Request | None = st.session_state.get(REQUEST_KEY)
    device = request.device if request else None
    trust = bool(request and request.trust_remote_code and request.model == name)
    return get_model(name, device, trust)


def model_of(result: Analysis) -> LoadedModel:
    """The model behind ``result`` (see :func:`model_named`)."""
    return model_named(result.model_name)


def analysis_for(model: LoadedModel, text: str, pair: str | None, max_tokens: int) -> Analysis:
    """``model``'s analysis of ``text``, from the process-wide cache when it was made before."""
    require_kind(model, "text")  # an image or encoder-decoder model: a message, not a crash
    model_key = f"{model.name}|{model.source}|{model.device}"
    return get_analysis(model, model_key, text, pair, max_tokens)


@st.cache_resource(show_spinner=False, max_entries=4)
def get_analysis(
    _model: LoadedModel, model_key: str, text: str, pair: str | None, max_tokens: int
) -> Analysis:
    """Analyse once per content: model identity (``model_key``: name, source, device; ``_model``
    is not hashed) and the input (text and pair, which fix the token ids under that model's
    tokenizer, and the token limit). At most 4 analyses, each holding at most the attention
    budget (512 MiB) of weights plus its statistics: about 2 GiB at worst, shared by every
    session.

    A resource, not data: ``st.cache_data`` would pickle every result (up to 512 MB of held
    weights) and hand each caller an unpickled copy. An :class:`Analysis` is frozen, and what a
    session derives from it is a new object, so one instance can serve every session."""
    return analyze(_model, text, pair, max_tokens=max_tokens)


@st.cache_resource(show_spinner=False)
def stop_flags() -> dict[str, threading.Event]:
    """Run folder -> its stop flag, for the whole server process (corpus runs, lab training): a
    Stop click starts a new script run while the old one is still inside its loop; the flag
    ends that one at its next check."""
    return {}
