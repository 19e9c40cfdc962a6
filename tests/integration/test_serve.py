"""``python -m core serve`` against real uvicorn servers on 127.0.0.1, driven with httpx: the
answers equal core's own generation and the CLI's JSON, and every refusal has its status, its
catalogue key in both languages and no traceback. One server per module (uvicorn in a thread of
this process, so the test can hold its gate), one in demo mode, one for the rate limit, and one
started as ``python -m core serve`` in a subprocess."""

from __future__ import annotations

import contextlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import torch

from core.cli import main as cli_main
from core.engine.models import BUILTIN_MODELS
from core.methods.generate import generate
from core.methods.sampling import GenerationConfig
from core.policy.i18n import t
from core.policy.settings import load_settings
from core.serve.cli import ServerThread, free_port
from core.serve.runtime import cached_model

ROOT = Path(__file__).resolve().parents[2]
PROMPT = "The capital of France is"
SAMPLED = {"temperature": 0.8, "top_k": 50, "top_p": 0.95, "seed": 7, "max_new_tokens": 5}


def _wait_for(condition, what: str, limit: float = 120.0) -> None:
    """Poll ``condition`` until it holds (a readiness wait, not a timed assertion)."""
    deadline = time.monotonic() + limit
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


@pytest.fixture(scope="module")
def server():
    with ServerThread(load_settings({"ATTNSCOPE_MAX_CONCURRENT": "2"})) as running:
        yield running


@pytest.fixture(scope="module")
def client(server):
    with httpx.Client(base_url=server.url, timeout=300) as session:
        yield session


@pytest.fixture(scope="module")
def smollm2_model():
    return cached_model("smollm2")  # the server's own cache: one copy in this process


def _error(response: httpx.Response, status: int, key: str) -> dict:
    assert response.status_code == status, response.text
    assert "Traceback" not in response.text
    body = response.json()["error"]
    assert body["key"] == key
    assert body["message_ja"] != body["message_en"]
    return body


def test_generate_with_a_seed_repeats_and_equals_core(client, smollm2_model):
    first = client.post("/generate", json={"prompt": PROMPT, **SAMPLED})
    second = client.post("/generate", json={"prompt": PROMPT, **SAMPLED})
    assert first.status_code == 200, first.text
    assert first.json()["text"] == second.json()["text"]
    assert first.json()["token_ids"] == second.json()["token_ids"]
    ours = generate(smollm2_model, PROMPT, GenerationConfig(**SAMPLED))
    data = first.json()
    assert data["token_ids"] == list(ours.generated_ids)
    assert data["text"] == ours.output_text
    assert data["greedy"] is False and data["seed"] == 7 and len(data["steps"]) == 5
    # step 0 against the model's logits, computed here: p = softmax(l), H = logsumexp(l) - p . l
    ids = torch.tensor([ours.prompt_ids])
    with torch.inference_mode():
        logits = smollm2_model.model(input_ids=ids).logits[0, -1].double()  # (vocab,)
    p = logits.softmax(-1)
    step = data["steps"][0]
    assert step["raw_entropy"] == pytest.approx(float(logits.logsumexp(-1) - p @ logits), abs=1e-4)
    assert step["raw_prob"] == pytest.approx(float(p[step["token_id"]]), abs=1e-5)
    assert step["entropy"] < step["raw_entropy"]  # T < 1, top-k and top-p sharpen it
    assert [a["token_id"] for a in step["alternatives"]] == p.topk(5).indices.tolist()


def test_greedy_equals_core_and_transformers(client, smollm2_model):
    response = client.post(
        "/generate", json={"prompt": PROMPT, "temperature": 0, "max_new_tokens": 5}
    )
    data = response.json()
    assert response.status_code == 200 and data["greedy"] is True
    ours = generate(smollm2_model, PROMPT, GenerationConfig(greedy=True, max_new_tokens=5))
    assert data["token_ids"] == list(ours.generated_ids)
    assert data["text"] == ours.output_text and data["text"].startswith(" Paris.")
    assert data["full_text"] == ours.text
    ids = torch.tensor([ours.prompt_ids])
    with torch.inference_mode():
        hf = smollm2_model.model.generate(input_ids=ids, max_new_tokens=5, do_sample=False)
    assert data["token_ids"] == hf[0, ids.shape[1] :].tolist()
    for step, core_step in zip(data["steps"], ours.steps, strict=True):
        assert step["rank"] == 1 and step["entropy"] == step["raw_entropy"]
        summary = step["attention"]
        top = core_step.mean_attention.max(-1)  # (L,)
        assert summary["top_position"] == top.indices.tolist()
        assert summary["top_share"] == pytest.approx(top.values.tolist(), abs=1e-6)
        assert len(summary["layer_entropy"]) == smollm2_model.n_layers == 30


@pytest.mark.parametrize("model", ["minilm", "smollm2"])
def test_analyze_equals_the_cli(client, model):
    text = "The cat sat on the mat."
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        assert cli_main(["analyze", text, "--model", model, "--top-k", "3", "--json"]) == 0
    response = client.post("/analyze", json={"model": model, "text": text, "top_k": 3})
    assert response.status_code == 200, response.text
    assert response.json() == json.loads(printed.getvalue())
    assert response.json()["seq_len"] == len(response.json()["tokens"]) > 5


@pytest.mark.parametrize(
    "body", [b"{not json", b'["a", "list"]', b'"a string"'], ids=["broken", "list", "string"]
)
def test_bad_json_is_400(client, body):
    response = client.post("/generate", content=body, headers={"content-type": "application/json"})
    _error(response, 400, "serve.bad_json")


@pytest.mark.parametrize(
    ("change", "field", "key"),
    [
        ({"temperature": -0.1}, "temperature", "serve.field_range"),
        ({"top_p": 0}, "top_p", "serve.field_range"),
        ({"top_p": 1.5}, "top_p", "serve.field_range"),
        ({"top_k": -1}, "top_k", "serve.field_range"),
        ({"top_k": "3"}, "top_k", "serve.field_type"),
        ({"max_new_tokens": 0}, "max_new_tokens", "serve.field_range"),
        ({"max_new_tokens": 513}, "max_new_tokens", "serve.field_range"),
        ({"seed": -1}, "seed", "serve.field_range"),
        ({"prompt": ""}, "prompt", "serve.field_empty"),
        ({"prompt": None}, "prompt", "serve.field_missing"),
        ({"temprature": 1}, "temprature", "serve.field_unknown"),
    ],
)
def test_bad_fields_are_422_naming_the_field(client, change, field, key):
    body = {k: v for k, v in {"prompt": PROMPT, **change}.items() if v is not None}
    response = client.post("/generate", json=body, headers={"Accept-Language": "ja"})
    error = _error(response, 422, key)
    assert error["fields"] == [field]
    assert error["message"] == error["message_ja"] and f"「{field}」" in error["message"]
    assert f"'{field}'" in error["message_en"]


def test_max_new_tokens_over_the_limit_says_the_limit(client):
    error = _error(
        client.post("/generate", json={"prompt": PROMPT, "max_new_tokens": 600}),
        422,
        "serve.field_range",
    )
    assert error["message_en"] == "The field 'max_new_tokens' must be at most 512 (got 600)."


def test_too_long_is_413_and_unknown_model_404(client):
    long = "a" * 200_001
    error = _error(client.post("/generate", json={"prompt": long}), 413, "error.text_too_long")
    assert error["message_en"] == t("error.text_too_long", "en", chars=200_001, limit=200_000)
    _error(client.post("/analyze", json={"text": long}), 413, "error.text_too_long")
    _error(
        client.post("/analyze", json={"model": "/nonexistent/m", "text": "Hi."}),
        404,
        "error.bad_model_name",
    )
    _error(
        client.post("/generate", json={"model": "minilm", "prompt": "Hi."}),
        422,
        "error.generation_needs_decoder",
    )
    _error(client.get("/nowhere"), 404, "serve.not_found")
    _error(client.get("/generate"), 405, "serve.method_not_allowed")


def test_six_requests_queue_behind_a_gate_of_two(server, client, smollm2_model):
    gate = server.app.state.serve.gate
    body = {"prompt": PROMPT, "temperature": 0, "max_new_tokens": 3}
    expected = list(
        generate(
            smollm2_model, PROMPT, GenerationConfig(greedy=True, max_new_tokens=3)
        ).generated_ids
    )
    answers: list[httpx.Response] = []

    def ask() -> None:
        with httpx.Client(base_url=server.url, timeout=300) as session:
            answers.append(session.post("/generate", json=body))

    threads = [threading.Thread(target=ask) for _ in range(6)]
    with gate.slot(timeout=5), gate.slot(timeout=5):  # this test holds both slots
        for thread in threads:
            thread.start()
        _wait_for(lambda: client.get("/status").json()["waiting"] == 6, "6 requests queued")
        status = client.get("/status").json()
        assert (status["capacity"], status["active"], status["waiting"]) == (2, 2, 6)
    for thread in threads:
        thread.join()
    assert [a.status_code for a in answers] == [200] * 6
    assert all(a.json()["token_ids"] == expected for a in answers)
    assert all(a.headers["X-Queued"] == "1" for a in answers)
    assert sorted(int(a.headers["X-Queue-Ahead"]) for a in answers)[0] == 0
    status = client.get("/status").json()
    assert (status["active"], status["waiting"], status["max_active"]) == (0, 0, 2)


def test_demo_mode_refuses_paths_and_applies_its_limits(smollm2_model):
    settings = load_settings({"ATTNSCOPE_DEMO": "1", "ATTNSCOPE_QUEUE_TIMEOUT": "0.5"})
    with ServerThread(settings) as demo, httpx.Client(base_url=demo.url, timeout=300) as session:
        status = session.get("/status").json()
        assert status["demo"] is True
        assert (status["max_text_chars"], status["max_tokens"]) == (20_000, 512)
        assert status["allowed_models"] == list(BUILTIN_MODELS)
        for name in ("/srv/models/bert", "./my-model", "../m"):
            _error(
                session.post("/generate", json={"model": name, "prompt": "Hi"}),
                403,
                "error.local_path_forbidden",
            )
        _error(
            session.post("/analyze", json={"model": "gpt2", "text": "Hi"}),
            403,
            "error.model_not_allowed",
        )
        _error(session.post("/generate", json={"prompt": "a" * 20_001}), 413, "error.text_too_long")
        words = "word " * 600  # 3000 characters, 600 tokens: over the demo's 512
        error = _error(
            session.post("/generate", json={"prompt": words, "max_new_tokens": 4}),
            413,
            "error.prompt_over_server_limit",
        )
        assert "512" in error["message_en"]
        with demo.app.state.serve.gate.slot(timeout=5), demo.app.state.serve.gate.slot(timeout=5):
            busy = session.post("/generate", json={"prompt": "Hi", "max_new_tokens": 1})
        _error(busy, 503, "error.busy")
        assert busy.headers["Retry-After"] == "1"


def test_rate_limit_is_429_with_retry_after():
    settings = load_settings({"ATTNSCOPE_RATE_LIMIT": "2", "ATTNSCOPE_RATE_WINDOW": "3600"})
    with ServerThread(settings) as limited, httpx.Client(base_url=limited.url, timeout=300) as s:
        body = {"model": "minilm", "text": "One two."}
        assert s.post("/analyze", json={**body, "top_k": 0}).status_code == 422  # not counted
        assert [s.post("/analyze", json=body).status_code for _ in range(2)] == [200, 200]
        refused = s.post("/analyze", json=body, headers={"Accept-Language": "ja,en;q=0.5"})
    error = _error(refused, 429, "error.rate_limited")
    assert 3500 < int(refused.headers["Retry-After"]) <= 3600
    assert error["message"] == error["message_ja"] and "3600" in error["message_ja"]


def test_python_m_core_serve_in_demo_mode_and_its_offline_docs():
    port = free_port()
    env = {**os.environ, "ATTNSCOPE_DEMO": "1", "ATTNSCOPE_THREADS": "1"}
    process = subprocess.Popen(
        [sys.executable, "-m", "core", "serve", "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        url = f"http://127.0.0.1:{port}"

        def ready() -> bool:
            assert process.poll() is None, process.stderr.read().decode()
            try:
                return httpx.get(f"{url}/status", timeout=5).status_code == 200
            except httpx.TransportError:
                return False

        _wait_for(ready, "python -m core serve answers")
        status = httpx.get(f"{url}/status").json()
        assert (status["demo"], status["default_model"], status["capacity"]) == (True, "smollm2", 2)
        _error(
            httpx.post(f"{url}/analyze", json={"model": "/tmp/m", "text": "Hi"}),
            403,
            "error.local_path_forbidden",
        )
        spec = httpx.get(f"{url}/openapi.json").json()
        assert {"/generate", "/analyze", "/status"} <= set(spec["paths"])
        page = httpx.get(f"{url}/docs", headers={"Accept-Language": "ja"}).text
        assert "<script" not in page and "cdn" not in page.lower()
        assert "<code>POST /generate</code>" in page and "temperature" in page
        assert t("serve.docs_request", "ja") in page
    finally:
        process.terminate()
        process.wait(timeout=30)
