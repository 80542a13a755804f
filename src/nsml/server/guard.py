"""The last line of defence: URLs no handler should see, and errors no handler expected.

* A NUL character in the path or the query (``%00``) is refused with a one-line 400: no
  name holds one, and PostgreSQL refuses it even as a query parameter.
* A database that does not answer, or a full disk, becomes a one-line 503 (with
  ``Retry-After``) or 507 (``outages``).
* Any other exception that escapes a handler becomes a one-line 500 JSON, never a traceback.
  The traceback goes to the server's log, with the method and path but without the
  request's body or the exception's message (which may quote the input).

No input should reach the second: requests are validated (``schemas``) and services
raise ``ApiError``s. This only makes sure that a bug shows the client one clear line.
"""

from __future__ import annotations

import json
import logging
import traceback

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from nsml.server.outages import outage_answer

log = logging.getLogger("nsml.server")
INTERNAL_ERROR = "internal server error; the server's log has the details"


class RequestGuard:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if "\x00" in scope.get("path", "") or b"%00" in scope.get("query_string", b""):
            await answer(send, 400, "the URL holds a NUL character (%00)")
            return
        started = False

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # noqa: BLE001 - the point: nothing escapes as a traceback
            outage = outage_answer(exc)
            if outage is not None:
                if not started:
                    await answer(send, *outage)
                return
            frames = "".join(traceback.format_tb(exc.__traceback__))
            log.error(
                "unexpected %s in %s %s\n%s",
                type(exc).__name__,
                scope.get("method", ""),
                scope.get("path", ""),
                frames.rstrip(),
            )
            if not started:  # else the client sees the response cut short
                await answer(send, 500, INTERNAL_ERROR)


async def answer(send: Send, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
    body = json.dumps({"detail": detail}).encode()
    extra = [(key.lower().encode(), value.encode()) for key, value in (headers or {}).items()]
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *extra,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
