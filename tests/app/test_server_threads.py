"""The server's torch threads. Measured by ``python -m bench app`` on this 2-core machine: once the
file watcher was quiet, SmolLM2's 256-token analysis took 48 s in the app with 2 torch threads and
6.6 s with 1, while other work was running. An OpenMP parallel region waits for its slowest
thread, so a thread per core stalls whenever anything else needs a core, and the server is never
alone: Streamlit's own threads, the browser on a local machine, other sessions. So the server
leaves one core free (one thread on 2 cores: no parallel region to stall at all);
``$ATTNSCOPE_THREADS`` still overrides."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
import torch
from streamlit.testing.v1 import AppTest

from core.engine import devices
from core.engine.devices import server_threads, usable_cores
from ui import services

APP = str(Path(__file__).resolve().parents[2] / "app.py")


def threads_of_a_new_thread() -> int:
    """What a new script thread runs on. With OpenMP the count is per thread: a thread takes the
    count last set anywhere at its first parallel op (the main thread keeps its own)."""
    seen: list[int] = []

    def probe() -> None:
        torch.ones(1 << 16).add_(1)  # a parallel op: this thread takes the current count
        seen.append(torch.get_num_threads())

    thread = threading.Thread(target=probe)
    thread.start()
    thread.join()
    return seen[0]


@pytest.fixture
def fresh_server(monkeypatch):
    """No model loaded yet, no thread count chosen; torch's count put back afterwards."""
    before = torch.get_num_threads()
    services.get_model.clear()
    monkeypatch.setattr(devices, "_preferred", None)
    yield
    services.get_model.clear()
    torch.set_num_threads(before)


def test_the_server_leaves_a_core_free(fresh_server, monkeypatch):
    monkeypatch.delenv("ATTNSCOPE_THREADS", raising=False)
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()  # the start page's first run loads MiniLM
    assert not at.exception, at.exception
    assert threads_of_a_new_thread() == server_threads(usable_cores())
    if usable_cores() == 2:  # this project's machine: the count that was measured
        assert threads_of_a_new_thread() == 1


def test_attnscope_threads_still_decides(fresh_server, monkeypatch):
    monkeypatch.setenv("ATTNSCOPE_THREADS", "3")
    at = AppTest.from_file(APP, default_timeout=180)
    at.run()
    assert not at.exception, at.exception
    assert threads_of_a_new_thread() == 3
