"""Pages of the web UI. Data comes from the services; access follows the same Principal
rules as the API (the browser's cookie holds an ordinary login token)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Query, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from nsml._version import __version__
from nsml.server.auth import Principal
from nsml.server.deps import WEB_COOKIE, ReadableSession, Services, ServicesDep, readable_session
from nsml.server.errors import ApiError, BadRequest
from nsml.server.routers.sessions import session_out
from nsml.server.routers.system import owner_account
from nsml.server.web.render import HERE, templates
from nsml.server.web.tables import checkpoint_order, columns, differing, parse_args
from nsml.store import Session, SessionStatus

MAX_COMPARED = 12
router = APIRouter(include_in_schema=False)


class LoginRequired(Exception):
    """Raised by pages without a valid cookie; the app turns it into a redirect."""


def web_principal(request: Request, svc: ServicesDep) -> Principal:
    token = request.cookies.get(WEB_COOKIE)
    found = svc.accounts.authenticate(token) if token else None
    if found is None or found.session is not None:
        raise LoginRequired()
    return found


Viewer = Annotated[Principal, Depends(web_principal)]


def render_page(request: Request, name: str, who: Principal, svc: Services, **context: Any) -> HTMLResponse:
    owner = owner_account(svc, who)
    return templates.TemplateResponse(
        request,
        name,
        {
            "me": who.user,
            "credits": owner.credits,
            "credits_enforced": svc.credits.enforced,
            "version": __version__,
            **context,
        },
    )


def _session_row(svc: Services, session: Session, metrics: dict[str, float] | None = None) -> dict[str, Any]:
    """A session for a page: as the API has it, its arguments parsed into columns, its
    latest metrics, and how long it has been idle, if it is."""
    row = session_out(svc, session).model_dump(mode="json")
    row["parsed_args"] = parse_args(session.args)
    row["metrics"] = metrics or {}
    since = svc.sessions.idle_since(session)
    if since is not None:
        minutes = int((datetime.now(timezone.utc) - since).total_seconds() // 60)
        row["idle"] = f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
    return row


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/sessions", status_code=303)


@router.get("/favicon.ico", include_in_schema=False)
def favicon() -> Response:
    return FileResponse(HERE / "static" / "favicon.svg", media_type="image/svg+xml")


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, svc: ServicesDep, who: Viewer, dataset: str = "") -> HTMLResponse:
    sessions = svc.sessions.search(sorted(who.namespaces), None, True, None, None)
    latest = svc.sessions.latest_metrics(sessions)  # one query for the whole page
    rows = [_session_row(svc, s, latest.get(s.id)) for s in sessions]
    return render_page(
        request,
        "sessions.html",
        who,
        svc,
        sessions=rows,
        datasets=sorted({s.dataset for s in sessions}),
        chosen_dataset=dataset,
        statuses=[s.value for s in SessionStatus],
        metric_keys=columns(rows, "metrics"),
        arg_keys=columns(rows, "parsed_args"),
    )


@router.get("/sessions/{owner}/{dataset}/{number}", response_class=HTMLResponse)
def session_page(request: Request, who: Viewer, session: ReadableSession, svc: ServicesDep) -> HTMLResponse:
    checkpoints = svc.sessions.list_checkpoints(session)
    try:
        metric = svc.datasets.get(session.dataset).metric
    except ApiError:  # the dataset was removed since; its sessions stay readable
        metric = ""
    ordered, best_by = checkpoint_order(checkpoints, metric)
    return render_page(
        request,
        "session.html",
        who,
        svc,
        session=_session_row(svc, session),
        failure=svc.sessions.failure_line(session),
        checkpoints=ordered,
        best_by=best_by,
        folded=sum(1 for row in ordered if row["folded"]),
    )


@router.get("/compare", response_class=HTMLResponse)
def compare_page(
    request: Request,
    svc: ServicesDep,
    who: Viewer,
    s: Annotated[list[str], Query()] = [],  # noqa: B006
) -> HTMLResponse:
    """Sessions overlaid on every metric; an unknown or unreadable one is a 404 page."""
    names = list(dict.fromkeys(s))
    if not 1 <= len(names) <= MAX_COMPARED:
        raise BadRequest(f"choose between 1 and {MAX_COMPARED} sessions to compare, as ?s=owner/dataset/N")
    sessions = [_named_session(svc, who, name) for name in names]
    rows = [_session_row(svc, session) for session in sessions]
    shown = differing(rows, "parsed_args") if len(rows) > 1 else columns(rows, "parsed_args")
    return render_page(request, "compare.html", who, svc, sessions=rows, arg_keys=shown)


def _named_session(svc: Services, who: Principal, name: str) -> Session:
    owner, _, rest = name.partition("/")
    dataset, _, number = rest.partition("/")
    if not (owner and dataset and number.isdigit() and len(number) <= 9):
        raise BadRequest(f"{name!r} is not a session name; write it as owner/dataset/N")
    return readable_session(owner, dataset, int(number), svc, who)


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    return render_page(request, "datasets.html", who, svc, datasets=svc.datasets.search(None))


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, error: str = "") -> HTMLResponse:
    return templates.TemplateResponse(request, "login.html", {"error": error, "version": __version__})


@router.post("/login")
def login_submit(
    request: Request, svc: ServicesDep, name: Annotated[str, Form()], password: Annotated[str, Form()]
) -> Response:
    address = request.client.host if request.client else "unknown"
    try:
        _, token, _ = svc.accounts.login(name, password, address)
    except ApiError as exc:
        return RedirectResponse(f"/login?error={exc.detail}", status_code=303)
    return _signed_in(token)


@router.get("/web/login/{code}")
def login_link(code: str, svc: ServicesDep) -> Response:
    user = svc.web_links.redeem(code)
    if user is None:
        return RedirectResponse("/login?error=this login link is unknown, used or expired", status_code=303)
    token, _ = svc.accounts.issue_token(svc.accounts.get(user))
    return _signed_in(token)


@router.post("/logout")
def logout(request: Request, svc: ServicesDep) -> Response:
    token = request.cookies.get(WEB_COOKIE)
    if token:
        svc.accounts.logout(token)
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(WEB_COOKIE)
    return response


def _signed_in(token: str) -> Response:
    response = RedirectResponse("/sessions", status_code=303)
    response.set_cookie(WEB_COOKIE, token, httponly=True, samesite="strict", max_age=160 * 3600)
    return response
