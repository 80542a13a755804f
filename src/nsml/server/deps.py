"""FastAPI dependencies: the one place that authenticates callers and authorises access.

Every route takes the caller as a :class:`Principal` and its session through one of
``ManagedSession`` / ``RuntimeSession`` / ``ReadableSession``, which apply the rules of
``auth.Principal``. Another owner's session answers 404, exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from starlette.concurrency import run_in_threadpool

from nsml.names import InvalidName, validate_name
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, Forbidden, NotFoundError, Unauthorized
from nsml.server.path_params import SessionNumber
from nsml.server.services.accounts import AccountService
from nsml.server.services.automl import AutoMLService
from nsml.server.services.cache import CacheService
from nsml.server.services.competition_admin import CompetitionAdmin
from nsml.server.services.credits import CreditService
from nsml.server.services.datasets import DatasetService
from nsml.server.services.live_exec import ExecBroker
from nsml.server.services.notifications import NotificationService
from nsml.server.services.phases import PhaseService
from nsml.server.services.server_leases import ServerLeases
from nsml.server.services.session_files import SessionFiles
from nsml.server.services.sessions import SessionService
from nsml.server.services.shared import SharedService
from nsml.server.services.storage import StorageService
from nsml.server.services.submission_queue import SubmissionQueue
from nsml.server.services.submissions import SubmissionService
from nsml.server.settings import ServerSettings
from nsml.server.web.links import LoginLinks
from nsml.store import AbstractStore, Session, SharedResource


@dataclass
class Services:
    """What routes and pages call, built once at start-up: they reach data through the
    services, and only the services touch ``store``."""

    settings: ServerSettings
    store: AbstractStore
    datasets: DatasetService
    sessions: SessionService
    submissions: SubmissionService
    accounts: AccountService
    credits: CreditService
    web_links: LoginLinks
    storage: StorageService
    files: SessionFiles
    exec_broker: ExecBroker
    notifications: NotificationService
    cache: CacheService
    shared: SharedService
    queue: SubmissionQueue  # where queued sessions and submissions stand
    competition_admin: CompetitionAdmin  # baselines, results export
    phases: PhaseService
    automl: AutoMLService
    leases: ServerLeases | None = None  # this server's lease; the servers on the database


# Dependencies that only read memory are ``async``: FastAPI runs a plain ``def`` on a worker
# thread, and a hop there and back per dependency was a large share of a busy server's CPU.
async def services(request: Request) -> Services:
    services: Services = request.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(services)]


def bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>' (nsml login)")
    return token.strip()


WEB_COOKIE = "nsml_token"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def request_token(request: Request) -> str:
    """The bearer token, or the web UI's cookie. A cookie alone never authorises a change
    unless the page's own script sent it (X-NSML-Web), so other sites cannot forge one."""
    if request.headers.get("authorization"):
        return bearer_token(request)
    cookie = request.cookies.get(WEB_COOKIE)
    if cookie:
        if request.method not in SAFE_METHODS and request.headers.get("x-nsml-web") != "1":
            raise Forbidden("changes from the web UI must come from its own pages")
        return cookie
    return bearer_token(request)


async def principal(request: Request, svc: ServicesDep) -> Principal:
    """A token this server checked a moment ago is answered from memory, without a thread."""
    token = request_token(request)
    found = svc.accounts.remembered(token)
    if found is None:
        found = await run_in_threadpool(svc.accounts.authenticate, token)
    if found is None:
        raise Unauthorized("invalid, expired or revoked token; log in again (nsml login)")
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


async def user_principal(who: PrincipalDep) -> Principal:
    """A person's token: a session's own token may report, save and cache, nothing more."""
    if who.session is not None:
        raise Forbidden("a session's token cannot do this; use your own login")
    return who


UserDep = Annotated[Principal, Depends(user_principal)]


async def require_admin(who: PrincipalDep) -> Principal:
    if not who.is_admin:
        raise Forbidden("only admins may manage accounts")
    return who


async def require_organiser(who: PrincipalDep) -> Principal:
    if not who.is_organiser:
        raise Forbidden("only organisers and admins may create datasets")
    return who


OrganiserDep = Annotated[Principal, Depends(require_organiser)]


async def require_publisher(who: PrincipalDep) -> Principal:
    if not who.can_publish:
        raise Forbidden("only organisers and admins may publish or remove shared resources")
    return who


PublisherDep = Annotated[Principal, Depends(require_publisher)]


def managed_shared(name: str, svc: ServicesDep, who: PublisherDep) -> SharedResource | None:
    """The resource NAME if it exists and the caller may replace or remove it; None if free."""
    try:
        validate_name("shared resource", name)
    except InvalidName as exc:
        raise BadRequest(str(exc)) from None
    existing = svc.shared.find(name)
    if existing is None:
        return None
    if not who.can_manage_shared(existing.owner):
        raise Forbidden(
            f"shared resource {name!r} was published by {existing.owner}; only they or an admin may change it"
        )
    return existing


ManagedShared = Annotated[SharedResource | None, Depends(managed_shared)]


def _lookup(svc: Services, who: Principal, owner: str, dataset: str, number: int) -> Session:
    try:
        validate_name("owner", owner)
        validate_name("dataset", dataset)
    except InvalidName as exc:
        raise BadRequest(str(exc)) from None
    session = svc.sessions.get(owner, dataset, number)
    if not who.can_read(session) and not who.can_manage(session):
        raise NotFoundError(f"session {owner}/{dataset}/{number} not found; `nsml ps -a` lists your sessions")
    return session


def managed_session(
    owner: str, dataset: str, number: SessionNumber, svc: ServicesDep, who: PrincipalDep
) -> Session:
    session = _lookup(svc, who, owner, dataset, number)
    if not who.can_manage(session):
        raise NotFoundError(f"session {session.name} not found")
    return session


def runtime_session(
    owner: str, dataset: str, number: SessionNumber, svc: ServicesDep, who: PrincipalDep
) -> Session:
    session = _lookup(svc, who, owner, dataset, number)
    if not who.can_write_runtime(session):
        raise Unauthorized(
            f"only the process of session {session.name} may report to it or save its checkpoints"
        )
    return session


def readable_session(
    owner: str, dataset: str, number: SessionNumber, svc: ServicesDep, who: PrincipalDep
) -> Session:
    return _lookup(svc, who, owner, dataset, number)


ManagedSession = Annotated[Session, Depends(managed_session)]
RuntimeSession = Annotated[Session, Depends(runtime_session)]
ReadableSession = Annotated[Session, Depends(readable_session)]
