"""Health and uploads."""

from __future__ import annotations

from fastapi import APIRouter, Request

from nsml import __version__
from nsml.artifacts import UploadTooLarge
from nsml.runners import cgroups
from nsml.server.deps import PrincipalDep, Services, ServicesDep, UserDep
from nsml.server.errors import TooLarge
from nsml.server.schemas import Health, LimitsOut, UploadOut
from nsml.sizes import format_size

router = APIRouter(tags=["system"])


@router.get("/health", response_model=Health)
def health(who: PrincipalDep) -> Health:
    return Health(
        version=__version__, user=who.user.name, owner=who.user.owner_name, role=who.user.role.value
    )


async def receive(request: Request, svc: Services, max_bytes: int) -> tuple[str, int]:
    """Stream a request body to disk, refusing it as soon as it passes ``max_bytes``."""
    limit_mb = max_bytes // (1024 * 1024)
    length = request.headers.get("content-length", "")
    declared = int(length) if length.isascii() and length.isdigit() else 0  # else: counted below
    if declared > max_bytes:
        raise TooLarge(f"upload of {declared} bytes is over the {limit_mb} MiB limit")
    try:
        return await svc.sessions.artifacts.receive_upload(request.stream(), max_bytes)
    except UploadTooLarge as exc:
        raise TooLarge(str(exc)) from None


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
    )


@router.post("/uploads", response_model=UploadOut, status_code=201)
async def upload(request: Request, svc: ServicesDep, who: UserDep) -> UploadOut:
    """A tar.gz archive (shipped source, dataset folder) used by a later call."""
    upload_id, size = await receive(request, svc, svc.settings.max_upload_bytes)
    return UploadOut(upload_id=upload_id, size_bytes=size)
