"""``nsml.cache`` results, content-addressed and shared by all sessions of an owner."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from nsml.schemas.resources import CacheEntryOut
from nsml.server.deps import PrincipalDep, ServicesDep, UserDep
from nsml.server.routers.system import owner_account, used_upload
from nsml.server.services.cache import check_key

router = APIRouter(prefix="/cache", tags=["cache"])


@router.get("", response_model=list[CacheEntryOut])
def list_cache(svc: ServicesDep, who: PrincipalDep) -> list[CacheEntryOut]:
    return [CacheEntryOut.model_validate(e) for e in svc.cache.list(owner_account(svc, who))]


@router.get("/{key}")
def get_cache(key: str, svc: ServicesDep, who: PrincipalDep) -> FileResponse:
    """The stored archive, streamed as it was uploaded."""
    archive = svc.cache.archive(owner_account(svc, who), key)
    return FileResponse(archive, media_type="application/x-tar")


@router.post("/{key}/hits", response_model=CacheEntryOut)
def record_hit(key: str, svc: ServicesDep, who: PrincipalDep) -> CacheEntryOut:
    """Count a hit that a session served itself from its read-only view of the entries
    (a runner on this host mounts them), so that ``nsml cache ls`` stays right."""
    return CacheEntryOut.model_validate(svc.cache.hit(owner_account(svc, who), key))


@router.put("/{key}", response_model=CacheEntryOut)
async def put_cache(
    key: str,
    request: Request,
    svc: ServicesDep,
    who: PrincipalDep,
    response: Response,
    function: str = Query(default="", max_length=255),
    dataset: str | None = Query(default=None, max_length=64),
) -> CacheEntryOut:
    """Store a result; when the key is already stored, the first copy stays (200, not 201).

    The key and the caller are checked before the body is read."""
    check_key(key)
    owner = await run_in_threadpool(owner_account, svc, who)
    async with used_upload(
        request, svc, svc.settings.max_checkpoint_bytes, owner, "this cache entry"
    ) as upload_id:
        entry, stored = await run_in_threadpool(svc.cache.put, owner, key, function, dataset, upload_id)
    response.status_code = 201 if stored else 200
    return CacheEntryOut.model_validate(entry)


@router.delete("/{key}", status_code=204)
def delete_cache(key: str, svc: ServicesDep, who: UserDep) -> Response:
    svc.cache.delete(owner_account(svc, who), key)
    return Response(status_code=204)
