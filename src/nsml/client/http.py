"""The plumbing under every API call: one error type carrying the server's one-line
``detail``, so the CLI can print it unchanged and the SDK can raise it in the user's script.

Free of pydantic on purpose: a session's own process imports this (through
``runtime.py``) and should pay only for httpx.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Self

import httpx

API = "/api/v1"
UNBOUNDED = httpx.Timeout(None, connect=5.0)  # uploads, downloads and evaluations take their time


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


_IDEMPOTENT = frozenset({"GET", "HEAD", "OPTIONS"})
_CLOSED_UNDER_US = (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError)


class HttpClient:
    """An authenticated connection to one server's API."""

    def __init__(self, url: str, token: str, timeout: float = 30.0, uds: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=uds) if uds else None,
            base_url=self.url + API,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            try:
                response = self._http.request(method, path, **kwargs)
            except _CLOSED_UNDER_US:
                if method not in _IDEMPOTENT:
                    raise
                # the server closed a kept-alive connection as this request went out on it
                # (its idle timeout): nothing was done, so ask again on a new connection
                response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        raise_for(response)
        return response

    def _open_stream(
        self, path: str, params: dict[str, Any] | None = None, method: str = "GET"
    ) -> httpx.Response:
        """A successful GET whose body is still to read, with no read timeout (downloads
        and followed logs take their time); the caller closes it."""
        request = self._http.build_request(method, path, params=params, timeout=UNBOUNDED)
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        if response.is_error:
            try:
                response.read()
                raise_for(response)
            finally:
                response.close()
        return response

    def _stream_to(
        self, path: str, target: Path, params: dict[str, Any] | None = None, method: str = "GET"
    ) -> httpx.Response:
        response = self._open_stream(path, params, method)
        try:
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
            return response
        finally:
            response.close()


def json_object(response: httpx.Response) -> dict[str, Any]:
    """The body of an answer the caller uses as plain JSON (no schema parsed)."""
    body: dict[str, Any] = response.json()
    return body


def raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text or response.reason_phrase
    if not isinstance(detail, str):
        detail = str(detail)
    raise ApiError(response.status_code, detail)
