"""Administration of accounts, invites and teams (admins only)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends
from fastapi.responses import FileResponse
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool

from nsml.schemas.accounts import (
    AccountOut,
    InviteCreate,
    InviteOut,
    RoleChange,
    StorageQuotaChange,
    TeamChange,
    TeamOut,
    UserCreate,
    UserCreated,
)
from nsml.server.auth import Principal
from nsml.server.deps import PrincipalDep, ServicesDep, require_admin
from nsml.server.errors import Forbidden
from nsml.server.services.backup import remove_backup, write_backup

Admin = Annotated[Principal, Depends(require_admin)]
router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/users", response_model=list[AccountOut])
def list_users(svc: ServicesDep, who: Admin) -> list[AccountOut]:
    return [AccountOut.model_validate(u) for u in svc.accounts.list_users()]


@router.post("/users", response_model=UserCreated, status_code=201)
async def add_user(body: UserCreate, svc: ServicesDep, who: Admin) -> UserCreated:
    user, generated = await run_in_threadpool(svc.accounts.add_user, body.name, body.role, body.password)
    return UserCreated(account=AccountOut.model_validate(user), password=generated)


@router.post("/users/{name}/disable", response_model=AccountOut)
def disable_user(name: str, svc: ServicesDep, who: Admin) -> AccountOut:
    """Disable an account and revoke all its tokens."""
    return AccountOut.model_validate(svc.accounts.disable(name))


@router.post("/users/{name}/role", response_model=AccountOut)
def set_role(name: str, body: RoleChange, svc: ServicesDep, who: Admin) -> AccountOut:
    return AccountOut.model_validate(svc.accounts.set_role(name, body.role))


@router.post("/users/{name}/storage-quota", response_model=AccountOut)
def set_storage_quota(name: str, body: StorageQuotaChange, svc: ServicesDep, who: Admin) -> AccountOut:
    """One account's quota in MiB over the server's default (NSML_STORAGE_QUOTA_MB)."""
    return AccountOut.model_validate(svc.accounts.set_storage_quota(name, body.mb))


@router.post("/invites", response_model=InviteOut, status_code=201)
def create_invite(body: InviteCreate, svc: ServicesDep, who: Admin) -> InviteOut:
    code = svc.accounts.create_invite(who.user, body.role, body.uses, body.expires_hours)
    return InviteOut(code=code, role=body.role, uses=body.uses)


@router.post("/teams/{name}", response_model=TeamOut)
def add_to_team(name: str, body: TeamChange, svc: ServicesDep, who: Admin) -> TeamOut:
    """Create team NAME if needed and add the members (at most three in all)."""
    team, members = svc.accounts.add_to_team(name, body.members)
    return TeamOut(team=team.name, members=[m.name for m in members])


@router.post("/backup", response_class=FileResponse)
def backup(svc: ServicesDep, who: PrincipalDep) -> FileResponse:
    """The database and the artifact folders as one archive (``nsml admin backup``)."""
    if not who.is_admin:
        raise Forbidden("only admins may back up the server")
    path = write_backup(svc.settings)
    return FileResponse(
        path,
        media_type="application/x-tar",
        filename=path.name,
        background=BackgroundTask(remove_backup, path),
    )
