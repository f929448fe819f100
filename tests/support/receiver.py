"""``PostReceiver``: a local HTTP server, in a thread, handing each POSTed JSON body to a callback.

For what jobpulse (or a handler under test) calls out to: alert webhooks, job handlers reporting
when they enter and leave. The callback runs under one lock, so it may count without its own;
every POST is answered 204.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

import orjson

__all__ = ["PostReceiver"]

#: ``on_post(path, body)``: the request's path and its JSON body
OnPost = Callable[[str, Any], None]


class PostReceiver:
    """Started by ``start`` (or ``with``), stopped by ``close``; ``url`` is its address plus ``path``."""

    def __init__(self, on_post: OnPost, path: str = "") -> None:
        self.path = path
        lock = threading.Lock()

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = orjson.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with lock:
                    on_post(self.path, body)
                self.send_response(204)
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}{self.path}"

    def start(self) -> Self:
        self._thread.start()
        return self

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()
