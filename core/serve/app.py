"""The HTTP API (FastAPI): ``POST /generate``, ``POST /analyze``, ``GET /status``,
``GET /openapi.json`` and ``GET /docs`` (:mod:`core.serve.docs_page`, offline).

Every request passes the web app's checks in its order: the fields (422; bad JSON 400), the
deployment's limits (:func:`core.policy.settings.check_request`: 413, 403), the client's rate
limit (429), then the one gate (a queue; 503 past its timeout), inside which the model loads
(cached per process) and runs. Every failure is ``{"error": {"key", "message", "message_ja",
...}}`` from the catalogue, never a traceback.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.exceptions import HTTPException

from core.engine.model_kinds import require_kind
from core.engine.models import DEFAULT_MODEL, LoadedModel
from core.engine.run import analyze
from core.engine.tokenize import check_text
from core.methods.generate import generate_steps
from core.methods.generation import Generation
from core.methods.sampling import GenerationConfig
from core.policy.errors import AttnScopeError, InputError
from core.policy.settings import Settings, check_request, load_settings
from core.serve import runtime
from core.serve.docs_page import docs_html
from core.serve.errors import error_response, field_error, validation_response
from core.serve.schemas import (
    AnalyzeRequest,
    ErrorResponse,
    GenerateRequest,
    GenerateResponse,
    ServerStatus,
    StepOut,
)

__all__ = ["analysis_json", "create_app", "generation_json"]

_log = logging.getLogger("attnscope.serve")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorResponse} for code in (400, 403, 404, 413, 422, 429, 500, 503)
}


def generation_json(generation: Generation) -> GenerateResponse:
    """A generation as ``POST /generate`` answers it: per step the chosen token, its
    probability, the entropy of the distribution it was drawn from, the top alternatives and
    the attention summary (per layer: entropy, most attended position and its share)."""
    steps = []
    for step in generation.steps:
        top = step.mean_attention.max(dim=-1)  # (L,) values and positions
        steps.append(
            StepOut(
                step=step.index,
                position=step.position,
                token_id=step.token_id,
                token=step.token,
                text=step.text,
                prob=step.prob,
                raw_prob=step.raw_prob,
                rank=step.rank,
                entropy=step.dist_entropy,
                raw_entropy=step.raw_dist_entropy,
                alternatives=[c.to_dict() for c in step.candidates],
                attention={
                    "layer_entropy": step.layer_entropy.tolist(),
                    "top_position": top.indices.tolist(),
                    "top_share": top.values.tolist(),
                },
                finish_reason=step.finish_reason,
            )
        )
    return GenerateResponse(
        model=generation.model_name,
        prompt=generation.prompt,
        text=generation.output_text,
        full_text=generation.text,
        tokens=list(generation.generated_tokens),
        token_ids=list(generation.generated_ids),
        n_prompt_tokens=generation.n_prompt_tokens,
        stop_reason=generation.stop_reason,
        greedy=generation.config.greedy,
        seed=generation.config.seed,
        n_layers=generation.n_layers,
        n_heads=generation.n_heads,
        steps=steps,
    )


def analysis_json(
    loaded: LoadedModel, text: str, pair: str | None, top_k: int, max_tokens: int
) -> str:
    """``POST /analyze``'s body: what ``python -m core analyze TEXT --json`` prints (the same
    calls: check the text, refuse a non-text model, analyse, ``Analysis.to_dict``), as JSON."""
    check_text(text)
    require_kind(loaded, "text")
    result = analyze(loaded, text, pair, max_tokens=max_tokens)
    return json.dumps(result.to_dict(top_k), ensure_ascii=False)


def _config(body: GenerateRequest, settings: Settings) -> GenerationConfig:
    limit = runtime.max_new_tokens(settings)
    if body.max_new_tokens > limit:  # the server's limit, lower than the schema's
        raise field_error("max_new_tokens", "le", limit, body.max_new_tokens)
    greedy = body.temperature == 0
    return GenerationConfig(
        max_new_tokens=body.max_new_tokens,
        temperature=1.0 if greedy else body.temperature,
        top_p=body.top_p,
        top_k=body.top_k,
        seed=body.seed,
        greedy=greedy,
        use_chat_template=body.chat,
        top_k_shown=body.alternatives,
    )


def create_app(settings: Settings | None = None, *, default_model: str = DEFAULT_MODEL) -> FastAPI:
    """The API with ``settings`` (default: :func:`load_settings` of the environment, as the app
    reads them) and its own gate; ``default_model`` answers requests that name none."""
    state = runtime.ServeState(settings or load_settings(), default_model)
    app = FastAPI(
        title="AttnScope API",
        version="1",
        summary="Generation with per-step statistics, and attention analyses, over HTTP.",
        docs_url=None,  # Swagger UI and ReDoc load their JS from a CDN: /docs is ours
        redoc_url=None,
    )
    app.state.serve = state

    def run(request: Request, work: Callable[[], Response | GenerateResponse]) -> Any:
        settings = state.settings
        try:
            return work()
        except AttnScopeError as error:
            return error_response(error, request, runtime.retry_after(error, settings))
        except Exception:  # a bug or a broken model: logged here, a message there
            _log.exception("request failed: %s %s", request.method, request.url.path)
            return error_response(InputError("serve.internal"), request, status=500)

    def admit(request: Request, model: str, text: str, pair: str | None = None) -> None:
        check_request(state.settings, model=model, text=text, pair=pair)  # 413, 403
        state.count(request.client.host if request.client else "?")  # 429

    @app.post("/generate", response_model=GenerateResponse, responses=_ERRORS)
    def generate(body: GenerateRequest, request: Request) -> Any:
        """Generate from a prompt; per step the token, its probability, the entropy of the
        distribution it was drawn from, the top alternatives and an attention summary."""

        def work() -> Response | GenerateResponse:
            name = body.model or state.default_model
            config = _config(body, state.settings)
            admit(request, name, body.prompt)
            with state.slot() as queue:
                loaded = runtime.cached_model(name)
                steps = list(
                    generate_steps(
                        loaded, body.prompt, config, max_tokens=state.settings.max_tokens
                    )
                )
                generation = Generation.from_steps(loaded, body.prompt, config, steps)
            answer = JSONResponse(generation_json(generation).model_dump(mode="json"))
            answer.headers.update(_queue_headers(queue))
            return answer

        return run(request, work)

    @app.post("/analyze", responses={200: {"description": "the CLI's JSON"}, **_ERRORS})
    def analyze_text(body: AnalyzeRequest, request: Request) -> Any:
        """Analyse a text: exactly what ``python -m core analyze TEXT --json`` prints."""

        def work() -> Response:
            name = body.model or state.default_model
            admit(request, name, body.text, body.pair)
            limit = min(body.max_tokens or state.settings.max_tokens, state.settings.max_tokens)
            with state.slot() as queue:
                loaded = runtime.cached_model(name)
                content = analysis_json(loaded, body.text, body.pair, body.top_k, limit)
            return Response(content, media_type="application/json", headers=_queue_headers(queue))

        return run(request, work)

    @app.get("/status", response_model=ServerStatus)
    def status() -> dict[str, object]:
        """The limits, the queue (running, waiting, the most that ran at once) and the models
        loaded."""
        return state.status()

    @app.get("/docs", response_class=HTMLResponse, include_in_schema=False)
    def docs(request: Request) -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi(), request.headers.get("accept-language")))

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, error: RequestValidationError) -> JSONResponse:
        return validation_response(error.errors(), request)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, error: HTTPException) -> JSONResponse:
        key = "serve.method_not_allowed" if error.status_code == 405 else "serve.not_found"
        failure = InputError(key, method=request.method, path=request.url.path)
        return error_response(failure, request, status=error.status_code)

    return app


def _queue_headers(queue: dict[str, int]) -> dict[str, str]:
    """``X-Queued: 1`` when the request waited for a slot, ``X-Queue-Ahead``: how many were
    ahead of it then."""
    return {"X-Queued": str(queue["queued"]), "X-Queue-Ahead": str(queue["ahead"])}
