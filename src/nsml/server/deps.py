"""FastAPI dependencies: the one place that authenticates callers and authorises access."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from nsml.server.auth import Principal, authenticate
from nsml.server.errors import NotFoundError, Unauthorized
from nsml.server.services.datasets import DatasetService
from nsml.server.services.sessions import SessionService
from nsml.server.services.submissions import SubmissionService
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Session


@dataclass
class Services:
    settings: ServerSettings
    store: AbstractStore
    datasets: DatasetService
    sessions: SessionService
    submissions: SubmissionService


def services(request: Request) -> Services:
    return request.app.state.services  # type: ignore[no-any-return]


ServicesDep = Annotated[Services, Depends(services)]


def principal(request: Request, svc: ServicesDep) -> Principal:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("missing bearer token: send 'Authorization: Bearer <token>'")
    found = authenticate(svc.store, token.strip())
    if found is None:
        raise Unauthorized("invalid or expired token")
    return found


PrincipalDep = Annotated[Principal, Depends(principal)]


def _lookup(svc: Services, who: Principal, owner: str, dataset: str, number: int) -> Session:
    session = svc.sessions.get(owner, dataset, number)
    if not who.can_read(session) and not who.can_manage(session):
        # another user's session answers exactly like a missing one
        raise NotFoundError(f"session {owner}/{dataset}/{number} not found; `nsml ps -a` lists your sessions")
    return session


def managed_session(owner: str, dataset: str, number: int, svc: ServicesDep, who: PrincipalDep) -> Session:
    session = _lookup(svc, who, owner, dataset, number)
    if not who.can_manage(session):
        raise NotFoundError(f"session {session.name} not found")
    return session


def runtime_session(owner: str, dataset: str, number: int, svc: ServicesDep, who: PrincipalDep) -> Session:
    session = _lookup(svc, who, owner, dataset, number)
    if not who.can_write_runtime(session):
        raise Unauthorized(
            f"only the process of session {session.name} may report to it or save its checkpoints"
        )
    return session


def readable_session(owner: str, dataset: str, number: int, svc: ServicesDep, who: PrincipalDep) -> Session:
    return _lookup(svc, who, owner, dataset, number)


ManagedSession = Annotated[Session, Depends(managed_session)]
RuntimeSession = Annotated[Session, Depends(runtime_session)]
ReadableSession = Annotated[Session, Depends(readable_session)]
