"""A small load test: ten sessions at once on one server, each gets its own correct result, the
queued ones see the waiting notice, the model loads once, memory stays bounded, and a failing
model in one session harms no other."""

from __future__ import annotations

from bench.load import run_load


def test_ten_sessions_at_once(browser):
    result = run_load(10, max_concurrent=2, browser=browser)
    assert len(result.correct) == 10 and all(result.correct), result.correct
    # Two slots for eleven requests: some of them queued, and were told so while they waited.
    assert len(result.waited) == 10 and any(result.waited), result.waited
    assert result.weight_loads == 1  # one model in memory for everybody
    assert "Could not load" in result.broken_model_message
    assert result.peak_rss_mb < 3000, result.peak_rss_mb
    assert result.errors == []
