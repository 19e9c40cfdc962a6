"""The app served on a loopback port and the Chromium that drives it, in one place for the
browser tests (``tests/browser``) and the benchmarks (``bench/views.py``, ``bench/load.py``).

Chromium is Debian's (``/usr/bin/chromium`` or ``$ATTNSCOPE_CHROMIUM``), never one that
``playwright install`` would download: that needs the internet.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = os.environ.get("ATTNSCOPE_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


class ServerFailed(RuntimeError):
    """``streamlit run`` exited or never answered its health check."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class AppServer:
    """A ``streamlit run app.py`` process on a loopback port, with its log."""

    url: str
    process: subprocess.Popen
    log: Path

    @property
    def pid(self) -> int:
        return self.process.pid

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=15)


def start_app(
    log_path: Path, *, timeout: float = 90, watcher: str | None = "none", **env: str
) -> AppServer:
    """Start the app with ``env`` added to the environment; return once its health
    check answers. Raises :class:`ServerFailed` (the log says why) if it exits or times out.

    ``watcher``: the server's ``fileWatcherType``; ``None`` keeps the one in
    ``.streamlit/config.toml``, as ``make run`` does (the tests pass none: nothing reruns when
    a file in the tree changes under them)."""
    port = free_port()
    watching = [] if watcher is None else ["--server.fileWatcherType", watcher]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "streamlit",
                "run",
                "app.py",
                "--server.port",
                str(port),
                "--server.address",
                "127.0.0.1",
                "--server.headless",
                "true",
                *watching,
                "--browser.gatherUsageStats",
                "false",
            ],
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    server = AppServer(f"http://127.0.0.1:{port}", process, log_path)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return server
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            raise ServerFailed(f"streamlit did not start; see {log_path}")
        time.sleep(0.3)


def launch_chromium(playwright):
    """Debian's Chromium, headless, through a running ``sync_playwright()``."""
    if not Path(CHROMIUM).exists():
        raise FileNotFoundError(
            f"{CHROMIUM} is missing: `make test` installs Debian's chromium package"
        )
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


def choose_option(
    page, combobox: str, option: str, *, exact: bool | None = None, attempts: int = 5
) -> None:
    """Open the ``combobox`` dropdown and click ``option``, opening it again if a rerun closed it
    before the option showed (a rerun redraws the select box; on a busy machine one can land
    between the two clicks). Raises Playwright's TimeoutError after ``attempts`` tries."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(attempts):
        page.get_by_role("combobox", name=combobox).click()
        choice = page.get_by_role("option", name=option, exact=exact)
        try:
            choice.wait_for(timeout=10_000)
            choice.click(timeout=10_000)
            return
        except PlaywrightTimeout:
            if attempt == attempts - 1:
                raise
            page.keyboard.press("Escape")
