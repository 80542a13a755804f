"""``nsml exec`` routes: the owner posts Python, the session's own process evaluates it.

* ``POST .../exec`` (the owner, with a person's token): queue the code for the running
  session and wait for its answer (bounded; see ``services/live_exec.py``);
* ``GET .../exec/next`` (the session's token only): a long poll for the next command;
* ``POST .../exec/{id}/result`` (the session's token only): the answer.

The server relays text and never evaluates it; the server's log records who ran how much
code in which session, never the code nor the answer.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from nsml.schemas.live_exec import ExecAnswer, ExecCommandOut, ExecOut, ExecRequest
from nsml.server.deps import ManagedSession, RuntimeSession, ServicesDep, UserDep
from nsml.server.errors import ConflictError
from nsml.server.services.live_exec import MAX_POLL_WAIT_S, session_refusal

router = APIRouter(prefix="/sessions", tags=["exec"])
SESSION = "/{owner}/{dataset}/{number}"
COMMAND_ID_CHARS = 32
log = logging.getLogger("nsml.server")


@router.post(SESSION + "/exec", response_model=ExecOut)
async def exec_in_session(
    body: ExecRequest, session: ManagedSession, who: UserDep, svc: ServicesDep
) -> ExecOut:
    """Evaluate ``code`` in the scope the running session shared; only its owner may."""
    refusal = session_refusal(session)
    if refusal:
        raise ConflictError(refusal)
    broker = svc.exec_broker
    command = broker.submit(session, body.code)
    log.info("exec: %s sent %d characters to session %s", who.user.name, len(body.code), session.name)

    async def still_running() -> bool:
        current = await run_in_threadpool(svc.sessions.get, session.owner, session.dataset, session.number)
        return not current.status.is_terminal

    ok, output = await broker.answer(session, command, still_running)
    return ExecOut(ok=ok, output=output)


@router.get(
    SESSION + "/exec/next",
    response_model=ExecCommandOut,
    responses={204: {"description": "no command came within `wait` seconds"}},
)
async def next_exec_command(
    session: RuntimeSession,
    svc: ServicesDep,
    wait: float = Query(default=0, ge=0, le=MAX_POLL_WAIT_S, allow_inf_nan=False),
) -> ExecCommandOut | Response:
    """The session's process asks for the next command, waiting up to ``wait`` seconds."""
    command = await svc.exec_broker.next_command(session.id, wait)
    if command is None:
        return Response(status_code=204)
    return ExecCommandOut(id=command.id, code=command.code)


@router.post(SESSION + "/exec/{command_id}/result", status_code=204)
async def answer_exec_command(
    body: ExecAnswer, session: RuntimeSession, svc: ServicesDep, command_id: str
) -> Response:
    """The answer to a command; one nobody waits for any more (it timed out) is dropped."""
    if len(command_id) <= COMMAND_ID_CHARS:
        svc.exec_broker.resolve(session.id, command_id, body.ok, body.output)
    return Response(status_code=204)
