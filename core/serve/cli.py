"""``python -m core serve [--host 127.0.0.1] [--port 8000] [--model smollm2]``: the HTTP API on
uvicorn, and :class:`ServerThread`, the same server in a thread of this process.

The server listens on 127.0.0.1 unless ``--host`` says otherwise. Limits, queue and demo mode come
from the same ``ATTNSCOPE_*`` variables as the web app (:func:`core.policy.settings.load_settings`).
"""

from __future__ import annotations

import argparse
import socket
import sys
import threading
import time

from core.engine.devices import prefer_threads, server_threads, usable_cores
from core.policy.settings import Settings, load_settings

__all__ = ["ServerThread", "add_parser", "main"]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8000
DEFAULT_SERVE_MODEL = "smollm2"


def add_parser(commands: argparse._SubParsersAction) -> None:
    """Register ``serve`` on the command line's subcommands."""
    serve = commands.add_parser("serve", help="serve the HTTP API (POST /generate, /analyze)")
    serve.add_argument("--host", default=DEFAULT_HOST, help="address to listen on (127.0.0.1)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT, help="port (8000; 0: any free)")
    serve.add_argument(
        "--model", default=DEFAULT_SERVE_MODEL, help="model of requests that name none (smollm2)"
    )


def main(args: argparse.Namespace) -> int:
    """Run the server until interrupted; a malformed ``ATTNSCOPE_*`` variable is one line and
    status 2."""
    import uvicorn

    from core.serve.app import create_app

    try:
        settings = load_settings()
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    prefer_threads(server_threads(usable_cores()))  # a core left to the event loop, as the app
    app = create_app(settings, default_model=args.model)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    return 0


def free_port(host: str = DEFAULT_HOST) -> int:
    """A port nobody listens on now."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        return probe.getsockname()[1]


class ServerThread:
    """The API served by uvicorn in a daemon thread of this process: ``url``, ``app``, and
    :meth:`stop` (also on leaving a ``with`` block)."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        default_model: str = DEFAULT_SERVE_MODEL,
        host: str = DEFAULT_HOST,
        port: int | None = None,
        ready_timeout: float = 60.0,
    ) -> None:
        import uvicorn

        from core.serve.app import create_app

        self.app = create_app(settings, default_model=default_model)
        self.port = port or free_port(host)
        self.url = f"http://{host}:{self.port}"
        config = uvicorn.Config(self.app, host=host, port=self.port, log_level="warning")
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, name="attnscope-serve", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + ready_timeout
        while not self._server.started:  # uvicorn sets it once the socket listens
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the API server did not start on {self.url}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=30)

    def __enter__(self) -> ServerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
