"""The organiser's submission routes: baselines, the whole queue, the results export."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Response

from nsml.schemas.competition import SubmissionOut
from nsml.schemas.submission_admin import (
    BaselineRequest,
    ExportBoardRowOut,
    ExportOut,
    QueueEntryOut,
    QueueOut,
    SlotUseOut,
)
from nsml.server.deps import ServicesDep, UserDep

router = APIRouter(tags=["competition"])


@router.post("/datasets/{name}/baselines", response_model=list[SubmissionOut])
def set_baselines(name: str, body: BaselineRequest, svc: ServicesDep, who: UserDep) -> list[SubmissionOut]:
    """Mark submissions as the organiser's baselines: on the board, never ranked."""
    dataset = svc.datasets.get(name)
    marked = svc.competition_admin.set_baselines(who, dataset, body.ids, body.baseline)
    return [SubmissionOut.model_validate(s) for s in marked]


@router.get("/queue", response_model=QueueOut)
def queue(svc: ServicesDep, who: UserDep) -> QueueOut:
    """Every queued and running session and submission the caller organises, and who
    holds the slots (an admin: everything)."""
    overview = svc.queue.overview(who)
    return QueueOut(
        slots=[SlotUseOut.model_validate(s) for s in overview.slots],
        entries=[QueueEntryOut.model_validate(e) for e in overview.entries],
    )


@router.get("/datasets/{name}/export", response_model=ExportOut)
def export(
    name: str, svc: ServicesDep, who: UserDep, format: Literal["json", "csv"] = Query(default="json")
) -> object:
    """The final private board and every submission, as JSON or one CSV table."""
    results = svc.competition_admin.export(who, svc.datasets.get(name))
    if format == "csv":
        return Response(
            results.csv(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": f'attachment; filename="{results.dataset.name}-results.csv"'},
        )
    return ExportOut(
        dataset=results.dataset.name,
        metric=results.dataset.metric,
        higher_is_better=results.higher_is_better,
        closed=results.dataset.closed,
        exported_at=results.exported_at,
        board=[
            ExportBoardRowOut(
                rank=row.rank,
                owner=row.owner,
                private_score=results.private_of(row.submission_id),
                public_score=results.public_of(row.submission_id),
                submission_id=row.submission_id,
                session=row.session,
                checkpoint=row.checkpoint,
                submitted_at=row.submitted_at,
                submissions=row.submissions,
                baseline=row.baseline,
            )
            for row in results.board
        ],
        submissions=[SubmissionOut.model_validate(s) for s in results.submissions],
    )
