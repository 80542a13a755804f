"""Competition routes: submit, infer, boards, and the dataset owner's settings."""

from __future__ import annotations

import asyncio
from datetime import datetime, timezone

from fastapi import APIRouter, Query, Response
from starlette.concurrency import run_in_threadpool

from nsml.artifacts.filesystem import read_log_page
from nsml.evaluation.metrics import metric_info
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
from nsml.server.errors import BadRequest, Forbidden, NotFoundError
from nsml.server.path_params import SubmissionId
from nsml.server.services.evaluation_log import EvaluationLog
from nsml.store import Dataset, Session, Submission

router = APIRouter(tags=["competition"])
LONG_POLL_S = 0.05


def _own_session(svc: Services, who: PrincipalDep, name: str) -> Session:
    try:
        ref = parse_session(name, default_owner=who.user.owner_name)
    except InvalidName as exc:
        raise BadRequest(str(exc)) from None
    session = svc.sessions.get(ref.owner, ref.dataset, ref.number)
    if not who.can_manage(session):
        raise NotFoundError(f"session {name} not found; `nsml ps -a` lists your sessions")
    return session


def _owned_dataset(svc: Services, who: PrincipalDep, name: str) -> Dataset:
    dataset = svc.datasets.get(name)
    if not who.can_organise(dataset):
        raise Forbidden(f"only the organiser of {name} ({dataset.owner}) or an admin may change it")
    return dataset


@router.post("/submissions", response_model=SubmissionOut | list[PreviewRow], status_code=201)
async def submit(body: SubmissionCreate, svc: ServicesDep, who: UserDep) -> object:
    """Score a checkpoint on the hidden test set; ``test_mode`` previews 10 predictions."""
    session = await run_in_threadpool(_own_session, svc, who, body.session)
    if body.test_mode:
        rows = await run_in_threadpool(svc.submissions.preview, session, body.checkpoint, body.batch_size)
        return [PreviewRow(**row) for row in rows]
    owner = await run_in_threadpool(svc.store.get_user, session.owner)
    submission = await run_in_threadpool(
        svc.submissions.submit, owner, session, body.checkpoint, body.batch_size
    )
    return SubmissionOut.model_validate(submission)


@router.get("/submissions/{submission_id}", response_model=SubmissionOut)
async def get_submission(
    submission_id: SubmissionId,
    svc: ServicesDep,
    who: PrincipalDep,
    wait: float = Query(default=0, ge=0, le=30),
) -> SubmissionOut:
    """With ``wait``, answer as soon as the status or progress changes (a long poll)."""
    first = await run_in_threadpool(svc.submissions.get, who, submission_id)
    current = first
    deadline = asyncio.get_running_loop().time() + wait
    while (
        current.status == first.status
        and current.progress == first.progress
        and asyncio.get_running_loop().time() < deadline
    ):
        await asyncio.sleep(LONG_POLL_S)
        current = await run_in_threadpool(svc.submissions.get, who, submission_id)
    return SubmissionOut.model_validate(_visible(current, svc))


@router.post("/submissions/{submission_id}/cancel", response_model=SubmissionOut)
def cancel_submission(submission_id: SubmissionId, svc: ServicesDep, who: UserDep) -> SubmissionOut:
    """Stop a queued or running submission of the caller (``nsml submit`` on Ctrl-C)."""
    return SubmissionOut.model_validate(_visible(svc.submissions.cancel(who, submission_id), svc))


def _visible(submission: Submission, svc: Services) -> Submission:
    """Private scores stay hidden until the dataset's competition is closed; public ones
    are rounded as its organiser chose."""
    return svc.submissions.participant_view(svc.store.get_dataset(submission.dataset), submission)


@router.get("/submissions/{submission_id}/logs")
async def submission_logs(
    submission_id: SubmissionId,
    svc: ServicesDep,
    who: PrincipalDep,
    offset: int = Query(default=0, ge=0, le=INT64_MAX),
) -> Response:
    """The participant reads what the evaluation printed before the test inputs went out,
    and the platform's lines (see services/evaluation_log.py); the dataset's organiser
    and admins read everything."""
    submission = await run_in_threadpool(svc.submissions.get, who, submission_id, True)
    dataset = await run_in_threadpool(svc.datasets.get, submission.dataset)
    log = EvaluationLog(svc.submissions.log_path(submission_id).parent)
    path = log.full if who.can_organise(dataset) else log.shown
    data = await asyncio.to_thread(read_log_page, path, offset)
    return Response(
        data, media_type="text/plain; charset=utf-8", headers={"X-Log-Offset": str(offset + len(data))}
    )


@router.post("/sessions/{owner}/{dataset}/{number}/infer")
def infer(body: InferRequest, session: ManagedSession, svc: ServicesDep, who: UserDep) -> list[object]:
    """Run the bound infer of a checkpoint on the given inputs (never the test set)."""
    return svc.submissions.predict(session, body.checkpoint, body.inputs, body.batch_size)


@router.get("/datasets/{name}/board", response_model=BoardOut)
def board(name: str, svc: ServicesDep, who: PrincipalDep) -> BoardOut:
    """The public board: rank, owner, score, time and submission count for everybody;
    the session and checkpoint behind a row only for its owner."""
    dataset = svc.datasets.get(name)
    info = metric_info(dataset.metric)
    rows = [
        BoardRowOut.model_validate(row)
        if who.owns(row.owner)
        else BoardRowOut(
            rank=row.rank,
            owner=row.owner,
            score=row.score,
            submitted_at=row.submitted_at,
            submissions=row.submissions,
            last_submitted_at=row.last_submitted_at,
        )
        for row in svc.submissions.board(dataset)
    ]
    return BoardOut(
        dataset=dataset.name,
        metric=dataset.metric,
        higher_is_better=info.higher_is_better,
        closed=dataset.closed,
        ranked_by="private" if dataset.closed else "public",
        rows=rows,
    )


@router.get("/datasets/{name}/submissions", response_model=MySubmissions)
def my_submissions(name: str, svc: ServicesDep, who: PrincipalDep, all: bool = False) -> MySubmissions:
    """Every submission of the caller (or team) on this dataset, newest first, with the
    limits left; with ``all``, the dataset's organiser sees everybody's."""
    dataset = svc.datasets.get(name)
    if all and not who.can_organise(dataset):
        raise Forbidden(f"only the organiser of {name} or an admin sees all its submissions")
    owner = svc.store.get_user(who.user.owner_name)
    chosen = reversed(svc.store.list_submissions(dataset.name, owner=None if all else owner.name))
    return MySubmissions(
        dataset=dataset.name,
        metric=dataset.metric,
        closed=dataset.closed,
        limits=Limits(**svc.submissions.limits(dataset, owner)),
        submissions=[SubmissionOut.model_validate(s if all else _visible(s, svc)) for s in chosen],
    )


@router.post("/datasets/{name}/close", response_model=DatasetOut)
def close(name: str, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    """End the competition: no more submissions, and the board ranks by private score."""
    dataset = _owned_dataset(svc, who, name)
    if dataset.closed:
        return DatasetOut.model_validate(dataset)
    return DatasetOut.model_validate(svc.store.update_dataset(name, closed_at=datetime.now(timezone.utc)))


@router.patch("/datasets/{name}", response_model=DatasetOut)
def configure(name: str, body: DatasetOptions, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    dataset = _owned_dataset(svc, who, name)
    options = body.model_dump(exclude_none=True, exclude={"clear_limits", "full_precision"})
    if body.clear_limits:
        options.update(daily_limit=None, total_limit=None)
    if body.full_precision:
        options.update(round_public=None)
    if "public_fraction" in options and svc.store.list_submissions(dataset.name):
        raise BadRequest("the public/private split cannot change once submissions were scored on it")
    return DatasetOut.model_validate(svc.store.update_dataset(name, **options))
