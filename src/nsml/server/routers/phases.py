"""Competition phases, final selections and re-runs."""

from __future__ import annotations

from fastapi import APIRouter

from nsml.schemas.competition import SubmissionOut
from nsml.schemas.phases import PhaseCreate, PhaseOut, RerunOut, RerunRequest, SelectionRequest
from nsml.server.deps import PrincipalDep, ServicesDep, UserDep
from nsml.server.services.phases import PhaseView

router = APIRouter(prefix="/datasets/{name}", tags=["phases"])


def _out(view: PhaseView) -> PhaseOut:
    return PhaseOut.model_validate({**view.phase.__dict__, "state": view.state})


@router.get("/phases", response_model=list[PhaseOut])
def list_phases(name: str, svc: ServicesDep, who: PrincipalDep) -> list[PhaseOut]:
    return [_out(v) for v in svc.phases.views(svc.datasets.get(name))]


@router.post("/phases", response_model=PhaseOut, status_code=201)
def add_phase(name: str, body: PhaseCreate, svc: ServicesDep, who: PrincipalDep) -> PhaseOut:
    """Append a phase with its own hidden test set (organiser)."""
    options = body.model_dump(exclude={"name", "upload_id"})
    return _out(svc.phases.add(who, svc.datasets.get(name), body.name, body.upload_id, options))


@router.post("/phases/{phase}/start", response_model=PhaseOut)
def start_phase(name: str, phase: str, svc: ServicesDep, who: PrincipalDep) -> PhaseOut:
    """Make a later phase current now; selected submissions are re-scored into it (organiser)."""
    return _out(svc.phases.start(who, svc.datasets.get(name), phase))


@router.post("/selection", response_model=list[SubmissionOut])
def select(name: str, body: SelectionRequest, svc: ServicesDep, who: UserDep) -> list[SubmissionOut]:
    """Replace the caller's final selection; answers their submissions in the current phase."""
    chosen = svc.phases.select(who, svc.datasets.get(name), body.ids)
    return [SubmissionOut.model_validate(s) for s in chosen]


@router.post("/rerun", response_model=RerunOut, status_code=202)
def rerun(name: str, body: RerunRequest, svc: ServicesDep, who: PrincipalDep) -> RerunOut:
    """Re-score submissions after a fix to a test set or metric (organiser)."""
    return RerunOut(queued=svc.phases.rerun(who, svc.datasets.get(name), body.ids, body.all))
