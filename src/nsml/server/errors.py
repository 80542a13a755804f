"""Errors services raise, mapped to HTTP statuses in one place (app.py).

Every error body is ``{"detail": "<one clear line>"}`` so clients can print it as is.
"""

from __future__ import annotations


class ApiError(Exception):
    status_code = 400
    headers: dict[str, str] = {}

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


class BadRequest(ApiError):
    status_code = 400


class Unauthorized(ApiError):
    status_code = 401


class Forbidden(ApiError):
    status_code = 403


class NotFoundError(ApiError):
    status_code = 404


class ConflictError(ApiError):
    status_code = 409


class TooLarge(ApiError):
    status_code = 413


class TooManyRequests(ApiError):
    status_code = 429

    def __init__(self, detail: str, retry_after: int | None = None) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)} if retry_after is not None else {}


class ServiceUnavailable(ApiError):
    """Busy for a moment (not broken): the client should retry after ``Retry-After`` s."""

    status_code = 503

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.headers = {"Retry-After": str(retry_after)}


class PaymentRequired(ApiError):
    status_code = 402
