"""Shared resources: published by organisers, listed and downloaded by any caller.

Session tokens may read them too, since training sessions reach the API only with theirs.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import BinaryIO

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from nsml.schemas.resources import SharedResourceOut
from nsml.server.deps import ManagedShared, PrincipalDep, PublisherDep, ServicesDep
from nsml.server.errors import NotFoundError
from nsml.server.routers.system import owner_account, used_upload

router = APIRouter(prefix="/shared", tags=["shared"])
_CHUNK = 1 << 20


def _chunks(handle: BinaryIO) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(_CHUNK):
            yield chunk


@router.get("", response_model=list[SharedResourceOut])
def list_shared(svc: ServicesDep, who: PrincipalDep) -> list[SharedResourceOut]:
    return [SharedResourceOut.model_validate(r) for r in svc.shared.list()]


@router.get("/{name}")
def get_shared(name: str, svc: ServicesDep, who: PrincipalDep) -> StreamingResponse:
    """The current version's tar.gz; its version and size travel in headers."""
    resource, handle = svc.shared.open(name)
    return StreamingResponse(
        _chunks(handle),
        media_type="application/gzip",
        headers={
            "X-NSML-Shared-Version": resource.version,
            "X-NSML-Shared-Size": str(resource.size_bytes),
        },
    )


@router.put("/{name}", response_model=SharedResourceOut)
async def put_shared(
    name: str,
    request: Request,
    svc: ServicesDep,
    who: PublisherDep,
    existing: ManagedShared,
    response: Response,
    description: str = Query(default="", max_length=255),
    replace: bool = Query(default=False),
) -> SharedResourceOut:
    """Publish a tar.gz as NAME (201), or a new version of it with ``replace`` (200).

    Name, role and an existing resource are checked before the body is read."""
    service = svc.shared
    service.check_publish(name, replace, existing)
    owner = await run_in_threadpool(owner_account, svc, who)
    async with used_upload(request, svc, svc.settings.max_upload_bytes, owner, "this upload") as upload_id:
        resource, replaced = await run_in_threadpool(
            service.publish, who.user, name, description, upload_id, replace, existing
        )
    response.status_code = 200 if replaced else 201
    return SharedResourceOut.model_validate(resource)


@router.delete("/{name}", status_code=204)
def delete_shared(name: str, svc: ServicesDep, who: PublisherDep, existing: ManagedShared) -> Response:
    if existing is None:
        raise NotFoundError(f"no shared resource {name!r}; `nsml shared ls` lists them")
    svc.shared.remove(name)
    return Response(status_code=204)
