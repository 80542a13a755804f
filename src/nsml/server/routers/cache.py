"""``nsml.cache`` results, content-addressed and shared by all sessions of an owner."""

from __future__ import annotations

import re

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import FileResponse
from starlette.concurrency import run_in_threadpool

from nsml.artifacts import BadArchive
from nsml.schemas.resources import CacheEntryOut
from nsml.server.deps import PrincipalDep, Services, ServicesDep, UserDep
from nsml.server.errors import BadRequest, NotFoundError
from nsml.server.routers.system import used_upload
from nsml.store import User

router = APIRouter(prefix="/cache", tags=["cache"])
_KEY = re.compile(r"[0-9a-f]{64}")  # matched in full: `$` would pass a trailing newline


def _owner(svc: Services, who: PrincipalDep) -> User:
    return svc.store.get_user(who.user.owner_name)


def _check(key: str) -> str:
    if not _KEY.fullmatch(key):
        raise BadRequest(f"invalid cache key {key!r}: expected 64 hexadecimal characters")
    return key


@router.get("", response_model=list[CacheEntryOut])
def list_cache(svc: ServicesDep, who: PrincipalDep) -> list[CacheEntryOut]:
    return [CacheEntryOut.model_validate(e) for e in svc.store.list_cache(_owner(svc, who).id)]


@router.get("/{key}")
def get_cache(key: str, svc: ServicesDep, who: PrincipalDep) -> FileResponse:
    """The stored archive, streamed as it was uploaded."""
    owner = _owner(svc, who)
    entry = svc.store.get_cache(owner.id, _check(key), hit=True)
    archive = svc.sessions.artifacts.cache_archive(owner.name, key)
    if entry is None or not archive.is_file():
        raise NotFoundError(f"no cache entry {key}")
    return FileResponse(archive, media_type="application/x-tar")


@router.post("/{key}/hits", response_model=CacheEntryOut)
def record_hit(key: str, svc: ServicesDep, who: PrincipalDep) -> CacheEntryOut:
    """Count a hit that a session served itself from its read-only view of the entries
    (a runner on this host mounts them), so that ``nsml cache ls`` stays right."""
    owner = _owner(svc, who)
    entry = svc.store.get_cache(owner.id, _check(key), hit=True)
    if entry is None:
        raise NotFoundError(f"no cache entry {key}")
    return CacheEntryOut.model_validate(entry)


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
    _check(key)
    owner = await run_in_threadpool(_owner, svc, who)
    artifacts = svc.sessions.artifacts
    async with used_upload(
        request, svc, svc.settings.max_checkpoint_bytes, owner, "this cache entry"
    ) as upload_id:
        try:
            size, stored = await run_in_threadpool(artifacts.put_cache, owner.name, key, upload_id)
        except BadArchive as exc:
            raise BadRequest(str(exc)) from None
    entry, created = await run_in_threadpool(svc.store.add_cache, owner.id, key, function, dataset, size)
    response.status_code = 201 if stored and created else 200
    return CacheEntryOut.model_validate(entry)


@router.delete("/{key}", status_code=204)
def delete_cache(key: str, svc: ServicesDep, who: UserDep) -> Response:
    owner = _owner(svc, who)
    if not svc.store.delete_cache(owner.id, _check(key)):
        raise NotFoundError(f"no cache entry {key}")
    svc.sessions.artifacts.delete_cache(owner.name, key)
    return Response(status_code=204)
