"""Routes a running session's own process calls through the SDK (session token only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from nsml.schemas.sessions import CheckpointOut, ReportBatch
from nsml.server.deps import RuntimeSession, ServicesDep
from nsml.server.routers.system import used_upload

router = APIRouter(prefix="/sessions", tags=["runtime"])
SESSION = "/{owner}/{dataset}/{number}"


@router.post(SESSION + "/reports", status_code=204)
def add_reports(body: ReportBatch, session: RuntimeSession, svc: ServicesDep) -> None:
    svc.sessions.add_reports(session, [r.model_dump() for r in body.reports], body.batch_id)


@router.get(SESSION + "/dataset")
def download_train_split(session: RuntimeSession, svc: ServicesDep) -> StreamingResponse:
    """The session's train split as tar.gz, for runners whose nodes do not share the server's disk."""
    return StreamingResponse(svc.sessions.train_split(session), media_type="application/gzip")


@router.put(SESSION + "/checkpoints/{name}", response_model=CheckpointOut, status_code=201)
async def save_checkpoint(
    name: str, request: Request, session: RuntimeSession, svc: ServicesDep
) -> CheckpointOut:
    """Body: the checkpoint folder as tar.gz; it is listed only once fully stored.

    The name, the session's token and the owner's quota are checked before the body is
    read; a checkpoint saved again under its name may reuse the space of the one it replaces."""
    sessions = svc.sessions
    owner, replaced = await run_in_threadpool(sessions.checkpoint_target, session, name)
    limit = svc.settings.max_checkpoint_bytes
    async with used_upload(request, svc, limit, owner, "this checkpoint", replaced) as upload_id:
        checkpoint = await run_in_threadpool(
            sessions.save_checkpoint, session, name, upload_id, owner, replaced
        )
    return CheckpointOut.model_validate(checkpoint)
