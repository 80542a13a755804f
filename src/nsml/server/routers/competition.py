"""Competition routes: submit, infer, boards, and the dataset owner's settings."""

from __future__ import annotations

import asyncio

from fastapi import APIRouter, Query, Response
from pydantic_core import to_json
from starlette.concurrency import run_in_threadpool

from nsml.names import InvalidName, parse_session
from nsml.schemas.base import INT64_MAX
from nsml.schemas.competition import (
    BoardOut,
    BoardRowOut,
    InferRequest,
    Limits,
    MySubmissions,
    PreviewRow,
    SubmissionCreate,
    SubmissionOut,
)
from nsml.schemas.datasets import DatasetOptions, DatasetOut
from nsml.server.deps import ManagedSession, PrincipalDep, Services, ServicesDep, UserDep
from nsml.server.errors import BadRequest, NotFoundError
from nsml.server.path_params import SubmissionId
from nsml.server.services.submission_changes import is_final, wait_for_change
from nsml.server.services.submission_queue import states_update
from nsml.store import Session

router = APIRouter(tags=["competition"])
BOARD_ROW_FIELDS = tuple(BoardRowOut.model_fields)  # what a row shows; never its submission id


def _own_session(svc: Services, who: PrincipalDep, name: str) -> Session:
    try:
        ref = parse_session(name, default_owner=who.user.owner_name)
    except InvalidName as exc:
        raise BadRequest(str(exc)) from None
    session = svc.sessions.get(ref.owner, ref.dataset, ref.number)
    if not who.can_manage(session):
        raise NotFoundError(f"session {name} not found; `nsml ps -a` lists your sessions")
    return session


@router.post("/submissions", response_model=SubmissionOut | list[PreviewRow], status_code=201)
async def submit(body: SubmissionCreate, svc: ServicesDep, who: UserDep) -> object:
    """Score a checkpoint on the hidden test set; ``test_mode`` previews 10 predictions."""
    session = await run_in_threadpool(_own_session, svc, who, body.session)
    if body.test_mode:
        rows = await run_in_threadpool(svc.submissions.preview, session, body.checkpoint, body.batch_size)
        return [PreviewRow(**row) for row in rows]
    submission = await run_in_threadpool(svc.submissions.submit, session, body.checkpoint, body.batch_size)
    return SubmissionOut.model_validate(submission)


@router.get("/submissions/{submission_id}", response_model=SubmissionOut)
async def get_submission(
    submission_id: SubmissionId,
    svc: ServicesDep,
    who: PrincipalDep,
    wait: float = Query(default=0, ge=0, le=30),
) -> SubmissionOut:
    """With ``wait``, answer as soon as the status or progress changes (a long poll), and
    at once when the submission is already final."""
    first = await run_in_threadpool(svc.submissions.get, who, submission_id)
    current = first
    deadline = asyncio.get_running_loop().time() + wait
    with svc.submissions.changes.listening(submission_id) as changed:
        while not is_final(current) and (current.status, current.progress) == (first.status, first.progress):
            left = deadline - asyncio.get_running_loop().time()
            if left <= 0:
                break
            await wait_for_change(changed, left)
            current = await run_in_threadpool(svc.submissions.get, who, submission_id)
    out = SubmissionOut.model_validate(await run_in_threadpool(svc.submissions.visible, current))
    if out.status == "queued":  # where it stands in the evaluation line, and why
        states = await run_in_threadpool(svc.queue.submission_states)
        out = out.model_copy(update=states_update(states.get(out.id)))
    return out


@router.post("/submissions/{submission_id}/cancel", response_model=SubmissionOut)
def cancel_submission(submission_id: SubmissionId, svc: ServicesDep, who: UserDep) -> SubmissionOut:
    """Stop a queued or running submission of the caller (``nsml submit`` on Ctrl-C), or,
    for the dataset's organiser, anyone's."""
    return SubmissionOut.model_validate(svc.submissions.visible(svc.submissions.cancel(who, submission_id)))


@router.get("/submissions/{submission_id}/logs")
async def submission_logs(
    submission_id: SubmissionId,
    svc: ServicesDep,
    who: PrincipalDep,
    offset: int = Query(default=0, ge=0, le=INT64_MAX),
) -> Response:
    """The evaluation's log as far as the caller may read it (see nsml/evaluation/log.py)."""
    data = await run_in_threadpool(svc.submissions.read_log, who, submission_id, offset)
    return Response(
        data, media_type="text/plain; charset=utf-8", headers={"X-Log-Offset": str(offset + len(data))}
    )


@router.post("/sessions/{owner}/{dataset}/{number}/infer")
def infer(body: InferRequest, session: ManagedSession, svc: ServicesDep, who: UserDep) -> list[object]:
    """Run the bound infer of a checkpoint on the given inputs (never the test set)."""
    return svc.submissions.predict(session, body.checkpoint, body.inputs, body.batch_size)


@router.get("/datasets/{name}/board", response_model=BoardOut)
def board(name: str, svc: ServicesDep, who: PrincipalDep, phase: str | None = None) -> Response:
    """The public board (of the current phase, or ``phase``): rank, owner, score, time and
    submission count for everybody; the session and checkpoint behind a row only for its owner.

    Serialised here and not validated again: every participant reads a board of hundreds
    of rows every few seconds, and validating rows the server itself ranked twice over cost
    more than all the rest of the request."""
    dataset = svc.datasets.get(name)
    svc.phases.advance(dataset)  # a phase whose start time passed begins before it is shown
    board = svc.submissions.board_for(who, dataset, phase)
    rows = [{name: getattr(row, name) for name in BOARD_ROW_FIELDS} for row in board.rows]
    out = {
        "dataset": board.dataset.name,
        "metric": board.dataset.metric,
        "higher_is_better": board.higher_is_better,
        "closed": board.dataset.closed,
        "ranked_by": board.ranked_by,
        "rows": rows,
        "phase": board.phase.name if board.phase else None,
        "blind": board.blind,
        "blind_until": board.blind_until,
    }
    return Response(to_json(out), media_type="application/json")  # BoardOut, as documented


@router.get("/datasets/{name}/submissions", response_model=MySubmissions)
def my_submissions(name: str, svc: ServicesDep, who: PrincipalDep, all: bool = False) -> MySubmissions:
    """Every submission of the caller (or team) on this dataset, newest first, with the
    limits left; with ``all``, the dataset's organiser sees everybody's."""
    dataset = svc.datasets.get(name)
    listing = svc.submissions.listing(who, dataset, everyone=all)
    return MySubmissions(
        dataset=dataset.name,
        metric=dataset.metric,
        closed=dataset.closed,
        limits=Limits(**listing.limits),
        submissions=[
            SubmissionOut.model_validate(s).model_copy(update=states_update(state))
            for s, state in svc.queue.with_states(listing.submissions)
        ],
    )


@router.post("/datasets/{name}/close", response_model=DatasetOut)
def close(name: str, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    """End the competition: no more submissions, and the board ranks by private score."""
    return DatasetOut.model_validate(svc.submissions.close_competition(who, svc.datasets.get(name)))


@router.patch("/datasets/{name}", response_model=DatasetOut)
def configure(name: str, body: DatasetOptions, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    options = body.model_dump(exclude_none=True, exclude={"clear_limits", "full_precision", "clear_deadline"})
    if body.clear_limits:
        options.update(daily_limit=None, total_limit=None)
    if body.full_precision:
        options.update(round_public=None)
    if body.clear_deadline:
        options.update(deadline=None)
    dataset = svc.datasets.get(name)
    svc.datasets.check_settings(who, dataset, options)
    return DatasetOut.model_validate(svc.submissions.configure_competition(who, dataset, options))
