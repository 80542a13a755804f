"""Errors as a person in a browser should see them: a page that says what went wrong and
where to go, while API clients (and the pages' own scripts) keep the one-line JSON."""

from __future__ import annotations

from collections.abc import Mapping

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response

from nsml._version import __version__
from nsml.server.web.render import templates

API_PREFIX = "/api/"
TITLES = {
    400: "That request was not right",
    401: "Please sign in",
    403: "Not allowed",
    404: "Not found",
    405: "Not allowed here",
    409: "Conflict",
    413: "Too large",
    422: "That address is not right",
    429: "Too many requests",
}


def wants_page(request: Request) -> bool:
    """A browser navigating to a page, not a script or client asking the API."""
    if request.url.path.startswith(API_PREFIX) or request.headers.get("x-nsml-web"):
        return False
    return "text/html" in request.headers.get("accept", "")


def error_response(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    """The error page for a browser, ``{"detail": ...}`` for everyone else."""
    if not wants_page(request):
        return JSONResponse({"detail": detail}, status_code=status, headers=headers)
    if status == 404 and detail == "Not Found":  # the router's own words for an unknown address
        detail = f"There is no page at {request.url.path}."
    return page_error(request, status, detail, headers)


def page_error(
    request: Request, status: int, detail: str, headers: Mapping[str, str] | None = None
) -> HTMLResponse:
    """An error page whatever the request asked for (a page's own refusal)."""
    title = TITLES.get(status, "Something went wrong")
    context = {"status": status, "title": title, "detail": detail, "version": __version__}
    return templates.TemplateResponse(request, "error.html", context, status_code=status, headers=headers)
