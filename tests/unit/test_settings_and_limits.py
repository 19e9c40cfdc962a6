"""Demo mode and limits, the concurrency gate, the rate limiter and shareable links."""

from __future__ import annotations

import threading
import time

import pytest

from core.policy.errors import InputError
from core.policy.limits import ConcurrencyGate, RateLimiter
from core.policy.links import MAX_LINK_TEXT, link_params, parse_link
from core.policy.settings import DEMO, LOCAL, check_request, load_settings, looks_like_path


def test_demo_mode_from_the_environment_or_the_secrets():
    assert load_settings({}) == LOCAL
    assert load_settings({"ATTNSCOPE_DEMO": "true"}) == DEMO
    assert load_settings({}, {"attnscope": {"demo": True}}).demo
    assert not load_settings({}, {"attnscope": {"demo": False}}).demo
    assert load_settings({"ATTNSCOPE_DEMO": "0"}) == LOCAL


def test_overrides_and_their_validation():
    settings = load_settings(
        {
            "ATTNSCOPE_MAX_TOKENS": "300",
            "ATTNSCOPE_MAX_CONCURRENT": "3",
            "ATTNSCOPE_RATE_LIMIT": "5",
            "ATTNSCOPE_RATE_WINDOW": "30",
            "ATTNSCOPE_ALLOWED_MODELS": "minilm, owner/model",
        }
    )
    assert (settings.max_tokens, settings.max_concurrent, settings.rate_limit) == (300, 3, 5)
    assert settings.rate_window_s == 30.0
    assert settings.allowed_models == ("minilm", "owner/model")
    for variable, value in (
        ("ATTNSCOPE_MAX_TOKENS", "lots"),
        ("ATTNSCOPE_MAX_TOKENS", "0"),
        ("ATTNSCOPE_RATE_WINDOW", "-3"),
    ):
        with pytest.raises(ValueError, match=variable):
            load_settings({variable: value})


def test_demo_mode_can_never_allow_paths_or_remote_code():
    settings = load_settings({"ATTNSCOPE_DEMO": "1", "ATTNSCOPE_ALLOWED_MODELS": "/srv/model"})
    assert not settings.allow_local_paths and not settings.allow_remote_code


@pytest.mark.parametrize(
    ("request_", "message"),
    [
        ({"model": "minilm", "text": "x" * 20_001}, "20001 characters"),
        ({"model": "minilm", "text": "a", "pair": "b" * 20_000}, "characters"),
        ({"model": "bert-base-uncased", "text": "hi"}, "not offered on this server"),
        ({"model": "../../etc", "text": "hi"}, "folders on its disk"),
        ({"model": "/tmp", "text": "hi"}, "folders on its disk"),
        ({"model": "minilm", "text": "hi", "trust_remote_code": True}, "own code"),
    ],
)
def test_each_demo_limit_is_enforced(request_, message):
    with pytest.raises(InputError, match=message):
        check_request(DEMO, **request_)


def test_the_same_requests_pass_outside_demo_mode():
    check_request(LOCAL, model="bert-base-uncased", text="hi")
    check_request(LOCAL, model="/tmp", text="hi", trust_remote_code=True)
    check_request(DEMO, model="SmolLM2", text="hi")  # allowlist matches names case-insensitively
    with pytest.raises(InputError):
        check_request(LOCAL, model="minilm", text="x" * 200_001)


def test_paths_are_recognised(tmp_path):
    assert looks_like_path(str(tmp_path))
    assert looks_like_path("C:\\models\\bert")
    assert not looks_like_path("sentence-transformers/all-MiniLM-L6-v2")


def test_gate_never_holds_more_than_its_capacity_and_serves_in_order():
    gate = ConcurrencyGate(2)
    peak, order, lock = [0], [], threading.Lock()

    def work(i):
        with gate.slot(timeout=10):
            with lock:
                peak[0] = max(peak[0], gate.active)
                order.append(i)
            time.sleep(0.05)

    threads = []
    for i in range(8):
        threads.append(threading.Thread(target=work, args=(i,)))
        threads[-1].start()
        time.sleep(0.005)  # arrival order 0, 1, 2, ...
    for thread in threads:
        thread.join()
    assert peak[0] == 2
    assert order == list(range(8))
    assert gate.active == 0 and gate.waiting == 0


def test_gate_reports_the_queue_and_gives_up_with_a_busy_message():
    gate = ConcurrencyGate(1)
    seen = []
    with (
        gate.slot(timeout=1),
        pytest.raises(InputError, match="busy"),
        gate.slot(timeout=0.3, poll=0.05, on_wait=seen.append),
    ):
        pass
    assert seen and set(seen) == {0}
    assert gate.active == 0 and gate.waiting == 0  # the waiter left the queue


def test_gate_releases_its_slot_when_the_work_fails():
    gate = ConcurrencyGate(1)
    with pytest.raises(RuntimeError), gate.slot(timeout=1):
        raise RuntimeError("boom")
    with gate.slot(timeout=0.1):
        assert gate.active == 1


def test_rate_limiter_window_slides():
    limiter = RateLimiter(3, 10.0)
    assert [limiter.acquire(now=t) for t in (0.0, 1.0, 2.0)] == [0.0, 0.0, 0.0]
    assert limiter.acquire(now=5.0) == pytest.approx(5.0)  # the first frees up at 10 s
    assert limiter.acquire(now=10.0) == 0.0
    with pytest.raises(InputError, match="at most 3 every 10 s"):
        limiter.check(now=10.5)


def test_links_round_trip_and_prefer_example_ids():
    examples = {"neko": ("吾輩は猫である。", None)}
    params = link_params(
        model="smollm2",
        text="吾輩は猫である。",
        pair=None,
        layer=3,
        head=5,
        lang="ja",
        examples=examples,
    )
    assert params == {
        "model": "smollm2",
        "layer": "3",
        "head": "5",
        "lang": "ja",
        "example": "neko",
    }
    view, problems = parse_link(params, examples=["neko"])
    assert (view.model, view.example, view.layer, view.head, view.lang) == (
        "smollm2",
        "neko",
        3,
        5,
        "ja",
    )
    assert problems == ()
    long = link_params(
        model="m",
        text="x" * (MAX_LINK_TEXT + 1),
        pair=None,
        layer=0,
        head=None,
        lang="en",
        examples={},
    )
    assert "text" not in long and long["head"] == "avg"


@pytest.mark.parametrize(
    ("params", "problem"),
    [
        ({"text": "x" * (MAX_LINK_TEXT + 1)}, "text_too_long"),
        ({"model": "m" * 500, "text": "hi"}, "model_too_long"),
        ({"layer": "1.5"}, "bad_layer"),
        ({"layer": "1e9"}, "bad_layer"),
        ({"head": "<script>"}, "bad_head"),
        ({"example": "../../etc/passwd"}, "bad_example"),
    ],
)
def test_bad_link_values_are_dropped_and_named(params, problem):
    view, problems = parse_link(params, examples=["neko"])
    assert problems == (problem,)
    assert view.layer is None and view.head is None
    assert view.text in (None, "hi")
