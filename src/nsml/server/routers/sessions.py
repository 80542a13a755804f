"""Session routes: what the CLI does (create, list, stop, remove, logs, checkpoints)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import StreamingResponse
from pydantic import TypeAdapter

from nsml.schemas.base import INT32_MAX, INT64_MAX
from nsml.schemas.sessions import (
    CheckpointOut,
    ForkRequest,
    MemoRequest,
    MetricOut,
    SessionCreate,
    SessionOut,
)
from nsml.server.deps import ManagedSession, ReadableSession, Services, ServicesDep, UserDep
from nsml.server.services.submission_queue import states_update
from nsml.store import Session

router = APIRouter(prefix="/sessions", tags=["sessions"])
SESSION = "/{owner}/{dataset}/{number}"
# `nsml logs -f`: a follower looks for new output every FOLLOW_POLL_S, backing off to
# FOLLOW_POLL_MAX_S while the session prints nothing; whether it ended, every follower
# learns from one shared store read a second (``services.session_ends``)
FOLLOW_POLL_S, FOLLOW_POLL_MAX_S = 0.2, 1.0
SESSION_LIST = TypeAdapter(list[SessionOut])


def session_out(svc: Services, session: Session) -> SessionOut:
    """A session as ``ps`` shows it, with since when it is idle (kept in the server's memory)."""
    out = SessionOut.model_validate(session)
    out.idle_since = svc.sessions.idle_since(session)
    return out


@router.post("", response_model=SessionOut, status_code=201)
def create_session(body: SessionCreate, svc: ServicesDep, who: UserDep) -> SessionOut:
    """The session belongs to the caller's team when there is one, as in 2018."""
    owner = svc.sessions.account(who.user.owner_name)
    session = svc.sessions.create(
        owner, body.dataset, body.entry, body.args, body.description, body.gpus, body.code_upload,
        cpus=body.cpus, memory=body.memory, shm_size=body.shm_size,
    )  # fmt: skip
    return _with_queue(session, svc)


def _with_queue(session: Session, svc: Services) -> SessionOut:
    """A queued session says where it stands and why it waits (`run`, `logs -f`)."""
    out = session_out(svc, session)
    position = svc.sessions.queue_position(session)
    if position is None:
        return out
    reason = out.reason or f"all {svc.settings.max_concurrent} session slots are in use"
    state = svc.queue.session_states([session]).get(session.id)
    waiting_for = state.waiting_for if state is not None else None
    return out.model_copy(update={"queue_position": position, "reason": reason, "waiting_for": waiting_for})


@router.get("", response_model=list[SessionOut])
def list_sessions(
    svc: ServicesDep,
    who: UserDep,
    all: bool = False,
    dataset: str | None = None,
    limit: int | None = Query(default=None, ge=1, le=INT32_MAX),
    pattern: str | None = None,
) -> Response:
    """``nsml ps``, which people poll: serialised here, not validated a second time."""
    sessions = svc.sessions.search(sorted(who.namespaces), dataset, all, limit, pattern)
    states = svc.queue.session_states(sessions)  # where each queued one stands, and why
    listed = [session_out(svc, s).model_copy(update=states_update(states.get(s.id))) for s in sessions]
    return Response(SESSION_LIST.dump_json(listed), media_type="application/json")


@router.get(SESSION, response_model=SessionOut)
def get_session(session: ReadableSession, svc: ServicesDep) -> SessionOut:
    return _with_queue(session, svc)


@router.patch(SESSION, response_model=SessionOut)
def set_memo(body: MemoRequest, session: ManagedSession, svc: ServicesDep, who: UserDep) -> SessionOut:
    """``nsml memo``: only the owner (or a teammate), with their own login."""
    return SessionOut.model_validate(svc.files.set_memo(session, body.description))


@router.get(SESSION + "/source")
def download_source(session: ManagedSession, svc: ServicesDep, who: UserDep) -> StreamingResponse:
    """``nsml pull`` and ``nsml diff``: the source archive exactly as it was shipped."""
    return StreamingResponse(svc.files.source(session), media_type="application/gzip")


@router.get(SESSION + "/outputs")
async def download_outputs(
    session: ManagedSession,
    svc: ServicesDep,
    who: UserDep,
    path: str = Query(default="", max_length=4096),
) -> StreamingResponse:
    """``nsml download``: files the session created or changed in its work dir, as tar.gz.

    No link in the work dir is followed and only plain files are read (see
    ``nsml.artifacts.outputs``); the header says how many files came."""
    chunks, files = await asyncio.to_thread(svc.files.outputs, session, path)
    return StreamingResponse(chunks, media_type="application/gzip", headers={"X-NSML-Files": str(files)})


@router.post(SESSION + "/fork", response_model=SessionOut, status_code=201)
def fork_session(body: ForkRequest, session: ReadableSession, svc: ServicesDep, who: UserDep) -> SessionOut:
    """A new session from this one's source and checkpoint (default: the latest)."""
    owner = svc.sessions.account(who.user.owner_name)
    return SessionOut.model_validate(
        svc.sessions.fork(owner, session, body.checkpoint, body.args, body.description)
    )


@router.post(SESSION + "/resume", response_model=SessionOut)
def resume_session(session: ManagedSession, svc: ServicesDep, who: UserDep) -> SessionOut:
    return SessionOut.model_validate(svc.sessions.resume(session))


@router.post(SESSION + "/stop", response_model=SessionOut)
def stop_session(session: ManagedSession, svc: ServicesDep) -> SessionOut:
    return SessionOut.model_validate(svc.sessions.stop(session))


@router.delete(SESSION, status_code=204)
def remove_session(session: ManagedSession, svc: ServicesDep, who: UserDep) -> Response:
    svc.sessions.remove(session)
    return Response(status_code=204)


@router.get(SESSION + "/logs")
async def session_logs(
    session: ManagedSession,
    svc: ServicesDep,
    request: Request,
    offset: int = Query(default=0, ge=0, le=INT64_MAX),
    follow: bool = False,
) -> Response:
    """The log from ``offset``; with ``follow`` the response streams until the session ends."""
    if not follow:
        data = await asyncio.to_thread(svc.sessions.read_log, session, offset)
        return Response(
            data, media_type="text/plain; charset=utf-8", headers={"X-Log-Offset": str(offset + len(data))}
        )

    async def tail() -> AsyncIterator[bytes]:
        position, pause = offset, FOLLOW_POLL_S
        with svc.sessions.ends.following(session.id):
            while not await request.is_disconnected():
                data = await asyncio.to_thread(svc.sessions.read_log, session, position)
                if data:
                    position += len(data)
                    pause = FOLLOW_POLL_S
                    yield data
                    continue
                if await svc.sessions.ends.has_ended(session.id):
                    rest = await asyncio.to_thread(svc.sessions.read_log, session, position)
                    if rest:
                        yield rest
                    return
                await asyncio.sleep(pause)
                pause = min(pause * 2, FOLLOW_POLL_MAX_S)

    return StreamingResponse(tail(), media_type="text/plain; charset=utf-8")


@router.get(SESSION + "/checkpoints", response_model=list[CheckpointOut])
def list_checkpoints(session: ReadableSession, svc: ServicesDep) -> list[CheckpointOut]:
    return [CheckpointOut.model_validate(c) for c in svc.sessions.list_checkpoints(session)]


@router.get(SESSION + "/checkpoints/{name}")
def download_checkpoint(name: str, session: ReadableSession, svc: ServicesDep) -> StreamingResponse:
    return StreamingResponse(svc.sessions.read_checkpoint(session, name), media_type="application/gzip")


@router.delete(SESSION + "/checkpoints/{name}", status_code=204)
def delete_checkpoint(name: str, session: ManagedSession, svc: ServicesDep, who: UserDep) -> Response:
    """``nsml model rm``: the checkpoint and its files, which stop counting against the quota."""
    svc.sessions.delete_checkpoint(session, name)
    return Response(status_code=204)


@router.get(SESSION + "/metrics", response_model=list[MetricOut])
def list_metrics(session: ReadableSession, svc: ServicesDep) -> list[MetricOut]:
    return [MetricOut.model_validate(m) for m in svc.sessions.list_metrics(session)]
