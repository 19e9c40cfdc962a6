"""The Analyze action: check a sidebar request, load the model and analyse the text under a
visible status, and make the analysis the session's result; any failure is one message."""

from __future__ import annotations

import streamlit as st

from core import InputError, check_text
from core.engine.models import needs_conversion
from core.policy.errors import AttnScopeError
from core.policy.settings import check_request
from ui.services import analysis_for, app_settings, count_request, get_model, heavy_work
from ui.state import Request, start_result
from ui.text import md, show_error, tr


def _check(request: Request) -> None:
    """Refuse what this server does not run (an InputError and the like), and count the
    request against the session's rate limit."""
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
    count_request()


def run(request: Request) -> None:
    """Load (cached) and analyse, with a visible status; on any failure say what to do, keep the
    previous result, and never show a traceback."""
    try:
        _check(request)
    except AttnScopeError as error:
        show_error(error)
        return
    limit = min(request.max_tokens, app_settings().max_tokens)
    key = "run.converting" if needs_conversion(request.model) else "run.loading"
    failure: Exception | None = None
    with st.status(tr(key, model=md(request.model)), expanded=False) as status:
        try:
            with heavy_work(status):
                status.update(label=tr(key, model=md(request.model)))
                model = get_model(request.model, request.device, request.trust_remote_code)
                status.update(label=tr("run.analysing", model=md(model.title)))
                result = analysis_for(model, request.text, request.pair, limit)
        except Exception as error:
            status.update(label=tr("run.failed"), state="error", expanded=False)
            failure = error
    if failure is not None:  # outside the status box, which stays collapsed
        show_error(failure)
        return
    with status:
        status.update(
            label=tr(
                "run.done",
                tokens=result.seq_len,
                model=md(model.title),
                seconds=f"{result.forward_seconds:.2f}",
            ),
            state="complete",
            expanded=False,
        )
    start_result(result, request)
