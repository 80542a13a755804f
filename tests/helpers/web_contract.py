"""Stand-ins for the competition API the web pages call (phases, selection, baselines,
re-runs, queue), answering as the shared contract says, so the pages are tested
against it on any server."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

Handler = Callable[[Any], None]

PHASES = [
    {"name": "public", "index": 0, "starts_at": "2026-01-01T00:00:00Z", "ends_at": "2026-02-01T00:00:00Z",
     "blind": False, "daily_limit": 5, "total_limit": None, "test_size": 60, "state": "running"},
    {"name": "final", "index": 1, "starts_at": "2026-02-01T00:00:00Z", "ends_at": None,
     "blind": True, "daily_limit": 2, "total_limit": 2, "test_size": 60, "state": "upcoming"},
]  # fmt: skip


def answering(sent: list[tuple[str, str, Any]]) -> Callable[[Any], Handler]:
    """A route handler factory: answer ``body``; note every change asked (method, path, JSON)."""

    def answer(body: Any) -> Handler:
        def handle(route: Any) -> None:
            request = route.request
            if request.method != "GET":
                sent.append((request.method, request.url.split("/api/v1")[1], request.post_data_json))
            route.fulfill(status=200, content_type="application/json", body=json.dumps(body))

        return handle

    return answer


def amended(change: Callable[[Any], None]) -> Handler:
    """The server's real answer, with the fields a newer server adds."""

    def handle(route: Any) -> None:
        data = route.fetch().json()
        change(data)
        route.fulfill(status=200, content_type="application/json", body=json.dumps(data))

    return handle
