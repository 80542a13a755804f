"""Pages of the web UI. Data comes from the services; access follows the same Principal
rules as the API (the browser's cookie holds an ordinary login token)."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates

from nsml._version import __version__
from nsml.evaluation.metrics import metric_info
from nsml.server.auth import Principal
from nsml.server.deps import WEB_COOKIE, ReadableSession, Services, ServicesDep
from nsml.server.errors import ApiError
from nsml.server.routers.sessions import session_out
from nsml.server.routers.system import owner_account
from nsml.store import Session, SessionStatus

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
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


def _page(request: Request, name: str, who: Principal, svc: Services, **context: Any) -> HTMLResponse:
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


def _session_row(svc: Services, session: Session) -> dict[str, Any]:
    """A session for a page: as the API has it, and how long it has been idle, if it is."""
    row = session_out(svc, session).model_dump(mode="json")
    since = svc.sessions.idle_since(session)
    if since is not None:
        minutes = int((datetime.now(timezone.utc) - since).total_seconds() // 60)
        row["idle"] = f"{minutes // 60}h {minutes % 60:02d}m" if minutes >= 60 else f"{minutes}m"
    return row


@router.get("/", response_class=HTMLResponse)
def home() -> Response:
    return RedirectResponse("/sessions", status_code=303)


@router.get("/sessions", response_class=HTMLResponse)
def sessions_page(request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    sessions = svc.sessions.search(sorted(who.namespaces), None, True, None, None)
    rows = [_session_row(svc, s) for s in sessions]
    datasets = sorted({s.dataset for s in sessions})
    statuses = [s.value for s in SessionStatus]
    return _page(request, "sessions.html", who, svc, sessions=rows, datasets=datasets, statuses=statuses)


@router.get("/sessions/{owner}/{dataset}/{number}", response_class=HTMLResponse)
def session_page(request: Request, who: Viewer, session: ReadableSession, svc: ServicesDep) -> HTMLResponse:
    others = [s.name for s in svc.sessions.search(sorted(who.namespaces), None, True, None, None)]
    return _page(
        request,
        "session.html",
        who,
        svc,
        session=_session_row(svc, session),
        others=[name for name in others if name != session.name],
        checkpoints=svc.sessions.list_checkpoints(session),
    )


@router.get("/datasets", response_class=HTMLResponse)
def datasets_page(request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    return _page(request, "datasets.html", who, svc, datasets=svc.datasets.search(None))


@router.get("/boards/{name}", response_class=HTMLResponse)
def board_page(name: str, request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    dataset = svc.datasets.get(name)
    info = metric_info(dataset.metric)
    return _page(request, "board.html", who, svc, dataset=dataset, higher_is_better=info.higher_is_better)


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
