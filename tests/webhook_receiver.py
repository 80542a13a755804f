"""A webhook endpoint for tests: an HTTP server on 127.0.0.1 that records the POSTs."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Receiver:
    """A webhook endpoint: records every POST; answers ``fail_first`` of them with a 500,
    POSTs to ``/redirect`` with a 307 to ``/landed`` and to ``/hang`` after 3 s."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.fail_first = 0
        self._changed = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                with receiver._changed:
                    failing = receiver.fail_first > 0
                    receiver.fail_first -= 1 if failing else 0
                    receiver.posts.append((self.path, json.loads(body)))
                    receiver._changed.notify_all()
                if self.path.startswith("/hang"):
                    time.sleep(3)
                if self.path.startswith("/redirect"):
                    self.send_response(307)
                    self.send_header("Location", "/landed")
                else:
                    self.send_response(500 if failing else 204)
                self.end_headers()
                if failing:
                    self.wfile.write(b"ENDPOINT-SECRET-BODY")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def events(self, predicate: Callable[[dict[str, Any]], bool]) -> list[dict[str, Any]]:
        with self._changed:
            return [body for _, body in self.posts if predicate(body)]

    def wait_for(
        self, predicate: Callable[[dict[str, Any]], bool], count: int = 1, timeout: float = 60
    ) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                found = [body for _, body in self.posts if predicate(body)]
                if len(found) >= count:
                    return found
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(f"{count} matching POSTs not received in {timeout}s: {self.posts}")
                self._changed.wait(remaining)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
