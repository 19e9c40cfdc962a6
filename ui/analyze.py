"""The Analyze action: check a sidebar request, load the model and analyse the text under a
visible status, and make the analysis the session's result; any failure is one message. A run
that a click interrupts (another page, another model) is finished by the next run, never
dropped."""

from __future__ import annotations

import time
from dataclasses import replace

import streamlit as st

from core import InputError, check_text
from core.engine.models import needs_conversion
from core.policy.errors import AttnScopeError
from core.policy.progress import Stage
from core.policy.settings import check_request
from ui.services import analysis_for, app_settings, count_request, get_model, heavy_work
from ui.state import PENDING_KEY, Request, start_result
from ui.text import lang, md, show_error, tr

# The status line once the analysis is done, by who asked for it. The start page's default
# example and a finished interrupted run say so (and do not read "Analysed", which tests and
# people wait for after pressing Analyze).
DONE_LABELS = {"start": "run.done_default", "resumed": "run.done_resumed"}


class _Stages:
    """A model's loading stages as they start: the status label names the one under way (the
    first analysis after a server start waits seconds for them), and each finished one is kept
    with its seconds, to be listed in the status once the analysis is done."""

    def __init__(self, status) -> None:
        self.status = status
        self.lines: list[str] = []
        self._current: tuple[str, float] | None = None

    def __call__(self, stage: str) -> None:
        self.finish()
        text = stage.localized(lang(), escape=md) if isinstance(stage, Stage) else md(stage)
        self._current = (text, time.perf_counter())
        self.status.update(label=tr("run.stage_running", stage=text))

    def finish(self) -> None:
        """The stage under way is over."""
        if self._current is not None:
            self.took(*self._current)
            self._current = None

    def took(self, text: str, started: float) -> None:
        """Keep ``text`` as a stage that ran from ``started`` (``time.perf_counter()``) to now."""
        seconds = f"{time.perf_counter() - started:.1f}"
        self.lines.append(tr("run.stage_line", stage=text, seconds=seconds))


def _check(request: Request) -> None:
    """Refuse what this server does not run (an InputError and the like), and count the
    request against the session's rate limit (the default example on the start page, served
    from the shared cache, and a run that was already counted, are not counted)."""
    check_text(request.text)
    if not request.model:
        raise InputError("error.no_model")
    check_request(
        app_settings(),
        model=request.model,
        text=request.text,
        pair=request.pair,
        trust_remote_code=request.trust_remote_code,
    )
    if request.origin not in ("start", "resumed"):
        count_request()


def ask(request: Request) -> None:
    """Ask for an analysis: :func:`resume` runs it later in this run (or the next). Analyze's
    button asks from its callback, which runs before the script: a click right after it (another
    page) stops the script, maybe before it reaches the button, and would otherwise lose it."""
    st.session_state[PENDING_KEY] = (request, False)


def resume() -> None:
    """Run the analysis asked for, or finish one a click interrupted: Streamlit stops a script
    at its next call once the browser asks for a rerun (another page, a widget), so a started
    request is still pending."""
    pending: tuple[Request, bool] | None = st.session_state.get(PENDING_KEY)
    if pending is not None:
        request, started = pending
        run(replace(request, origin="resumed") if started else request)


def run(request: Request) -> None:
    """Load (cached) and analyse, with a visible status; on any failure say what to do, keep the
    previous result, and never show a traceback. Until it is done the request stays pending
    (:func:`resume`)."""
    try:
        _check(request)
    except AttnScopeError as error:
        st.session_state.pop(PENDING_KEY, None)
        show_error(error)
        return
    st.session_state[PENDING_KEY] = (request, True)
    limit = min(request.max_tokens, app_settings().max_tokens)
    key = "run.converting" if needs_conversion(request.model) else "run.loading"
    failure: Exception | None = None
    with st.status(tr(key, model=md(request.model)), expanded=False) as status:
        stages = _Stages(status)
        try:
            with heavy_work(status):
                status.update(label=tr(key, model=md(request.model)))
                model = get_model(
                    request.model, request.device, request.trust_remote_code, _progress=stages
                )
                stages.finish()
                status.update(label=tr("run.analysing", model=md(model.title)))
                started = time.perf_counter()
                result = analysis_for(model, request.text, request.pair, limit)
                if stages.lines:  # the model was loaded for this run: the first pass too
                    stages.took(tr("run.stage_pass", tokens=result.seq_len), started)
        except Exception as error:
            st.session_state.pop(PENDING_KEY, None)
            status.update(label=tr("run.failed"), state="error", expanded=False)
            failure = error
    if failure is not None:  # outside the status box, which stays collapsed
        show_error(failure)
        return
    with status:
        if stages.lines:
            st.markdown("\n".join(f"- {line}" for line in stages.lines))
        status.update(
            label=tr(
                DONE_LABELS.get(request.origin, "run.done"),
                tokens=result.seq_len,
                model=md(model.title),
                seconds=f"{result.forward_seconds:.2f}",
            ),
            state="complete",
            expanded=False,
        )
    start_result(result, request)
    st.session_state.pop(PENDING_KEY, None)
