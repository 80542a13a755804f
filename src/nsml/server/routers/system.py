"""Health and uploads."""

from __future__ import annotations

from collections.abc import AsyncIterable, AsyncIterator
from contextlib import asynccontextmanager

from fastapi import APIRouter, Request
from starlette.concurrency import run_in_threadpool

from nsml._version import __version__
from nsml.runners import cgroups
from nsml.schemas.system import Health, LimitsOut, UploadOut
from nsml.server.auth import Principal
from nsml.server.deps import PrincipalDep, Services, ServicesDep, UserDep
from nsml.server.errors import TooLarge
from nsml.sizes import format_size
from nsml.store import User

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(who: PrincipalDep) -> Health:
    return Health(
        version=__version__, user=who.user.name, owner=who.user.owner_name, role=who.user.role.value
    )


async def receive(
    request: Request, svc: Services, max_bytes: int, owner: User | None, what: str, credit: int = 0
) -> tuple[str, int]:
    """Stream a request body to disk, refusing it as soon as it passes ``max_bytes`` or
    the storage ``owner``'s quota.

    Callers authenticate, authorise and check every name and key before this: a body is
    only read for a request that would be accepted. Whatever ends the upload early
    (a limit, the quota, a client that went away) leaves no file behind.
    """
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isascii() and length.isdigit() else 0  # else: counted below
    if declared > max_bytes:
        raise TooLarge(f"upload of {declared} bytes is over the {max_bytes // (1024 * 1024)} MiB limit")
    chunks: AsyncIterable[bytes] = request.stream()
    storage = svc.storage
    if owner is not None:
        usage = await run_in_threadpool(storage.usage, owner, None, credit)
        max_bytes = storage.upload_limit(owner, usage, max_bytes, declared, what)
        chunks = storage.metered(owner, usage, chunks, what)
    return await storage.receive(chunks, max_bytes, owner)


@router.get("/limits", response_model=LimitsOut)
def limits(svc: ServicesDep, who: UserDep) -> LimitsOut:
    """How sessions are confined here (``nsml server status``); for Ray, on each worker."""
    settings = svc.settings
    enforcer = cgroups.enforcer()
    return LimitsOut(
        sandbox="bubblewrap" if settings.sandboxed else settings.sandbox_problem,
        enforcer=enforcer.name,
        enforced_by=enforcer.describe(),
        defaults=svc.sessions.resources.defaults().describe(),
        maxima={
            "--memory": format_size(settings.max_memory_bytes) if settings.max_memory_bytes else "none",
            "--shm-size": format_size(settings.max_shm_bytes) if settings.max_shm_bytes else "none",
            "evaluation memory": format_size(settings.eval_memory_bytes)
            if settings.eval_memory_bytes
            else "none",
        },
        fair_share={
            "max_concurrent": settings.max_concurrent,
            "max_sessions_per_user": settings.max_sessions_per_user,
            "max_evaluations_per_user": settings.max_evaluations_per_user,
            "default_daily_limit": settings.default_daily_limit,
        },
    )


@asynccontextmanager
async def used_upload(
    request: Request, svc: Services, max_bytes: int, owner: User | None, what: str, credit: int = 0
) -> AsyncIterator[str]:
    """An upload that the handler uses at once: discarded afterwards however it ends."""
    upload_id, _ = await receive(request, svc, max_bytes, owner, what, credit)
    try:
        yield upload_id
    finally:
        svc.storage.discard(upload_id)


def owner_account(svc: Services, who: Principal) -> User:
    """The account whose sessions and quota the caller acts for: the team, if any."""
    return svc.accounts.get(who.user.owner_name)


@router.post("/uploads", response_model=UploadOut, status_code=201)
async def upload(request: Request, svc: ServicesDep, who: UserDep) -> UploadOut:
    """A tar.gz archive (shipped source, dataset folder) used by a later call."""
    owner = await run_in_threadpool(owner_account, svc, who)
    upload_id, size = await receive(request, svc, svc.settings.max_upload_bytes, owner, "this upload")
    return UploadOut(upload_id=upload_id, size_bytes=size)
