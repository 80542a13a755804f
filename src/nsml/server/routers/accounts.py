"""Login, logout, self-registration with an invite, and who the caller is."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from starlette.concurrency import run_in_threadpool

from nsml.schemas.accounts import AccountOut, LoginRequest, MeOut, RegisterRequest, TokenOut
from nsml.server.deps import PrincipalDep, ServicesDep, UserDep, bearer_token
from nsml.server.passwords import login_slot
from nsml.server.routers.system import owner_account

router = APIRouter(prefix="/auth", tags=["accounts"])


def _address(request: Request) -> str:
    return request.client.host if request.client else "unknown"


@router.post("/login", response_model=TokenOut)
async def login(body: LoginRequest, request: Request, svc: ServicesDep) -> TokenOut:
    async with login_slot():  # a burst of logins waits here, not in the worker threads
        user, token, expires = await run_in_threadpool(
            svc.accounts.login, body.name, body.password, _address(request)
        )
    return TokenOut(token=token, user=user.name, expires_at=expires)


@router.post("/register", response_model=TokenOut, status_code=201)
async def register(body: RegisterRequest, request: Request, svc: ServicesDep) -> TokenOut:
    async with login_slot():
        user = await run_in_threadpool(svc.accounts.register, body.name, body.password, body.invite)
    token, expires = await run_in_threadpool(svc.accounts.issue_token, user)
    return TokenOut(token=token, user=user.name, expires_at=expires)


@router.post("/logout", status_code=204)
def logout(request: Request, svc: ServicesDep, who: UserDep) -> Response:
    """Revoke the token this request carries."""
    svc.accounts.logout(bearer_token(request))
    return Response(status_code=204)


@router.post("/web-link")
def web_link(request: Request, svc: ServicesDep, who: UserDep) -> dict[str, str]:
    """A one-time link that signs a browser in as the caller (``nsml web``)."""
    code = svc.web_links.create(who.user.name)
    base = (
        svc.settings.public_url
        if request.url.hostname in ("127.0.0.1", "localhost")
        else str(request.base_url).rstrip("/")
    )
    return {"url": f"{base}/web/login/{code}"}


@router.get("/me", response_model=MeOut)
def me(who: PrincipalDep, svc: ServicesDep) -> MeOut:
    owner = owner_account(svc, who)
    usage = svc.storage.usage(owner)
    account = AccountOut.model_validate(who.user).model_dump()
    return MeOut(
        **account,
        storage_owner=owner.name,
        storage_used_bytes=usage.used_bytes,
        storage_quota_bytes=usage.quota_bytes,
    )
