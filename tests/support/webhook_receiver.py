"""A real HTTP server on 127.0.0.1 that receives webhooks, for the tests.

It runs in a thread of the test process (``http.server``), records every request it
answers 2xx, can answer errors (``failing``), and can be taken down and brought back on
the same port (``down()`` / ``up()``): a receiver that is gone refuses connections.
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from infrastructure.webhooks.signing import SIGNATURE_HEADER, verify
from tests.support.processes import free_port


@dataclass(frozen=True)
class Received:
    body: bytes
    headers: dict[str, str]

    @property
    def json(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.body)
        return data

    def verify(self, secret: str) -> int:
        return verify(secret, self.body, self.headers[SIGNATURE_HEADER.lower()])


class WebhookReceiver:
    def __init__(self, path: str = "/hook") -> None:
        self.port = free_port()
        self.path = path
        self.received: list[Received] = []
        #: Requests answered with an error (while ``failing``).
        self.refused = 0
        #: While set, every request is answered with this status.
        self.failing: int | None = None
        self._lock = threading.Lock()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}{self.path}"

    def up(self) -> WebhookReceiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                with receiver._lock:
                    status = receiver.failing
                    if status is None:
                        headers = {k.lower(): v for k, v in self.headers.items()}
                        receiver.received.append(Received(body, headers))
                    else:
                        receiver.refused += 1
                self.send_response(status or 204)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                return None

        ThreadingHTTPServer.allow_reuse_address = True
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def down(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def bodies(self) -> list[dict[str, Any]]:
        with self._lock:
            return [r.json for r in self.received]

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)
