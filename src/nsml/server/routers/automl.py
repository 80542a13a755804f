"""AutoML routes: ``nsml automl run / ls / show / stop``, only ever on the caller's own studies."""

from __future__ import annotations

from fastapi import APIRouter, Path

from nsml.schemas.automl import ImportanceOut, StudyCreate, StudyDetail, StudyOut
from nsml.server.deps import ServicesDep, UserDep

router = APIRouter(prefix="/automl", tags=["automl"])
StudyName = Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$")


@router.post("", response_model=StudyDetail, status_code=201)
def create_study(body: StudyCreate, svc: ServicesDep, who: UserDep) -> StudyDetail:
    """The study belongs to the caller's team when there is one, like its sessions."""
    owner = svc.sessions.account(who.user.owner_name)
    return svc.automl.create(owner, body)


@router.get("", response_model=list[StudyOut])
def list_studies(svc: ServicesDep, who: UserDep) -> list[StudyOut]:
    return svc.automl.visible(sorted(who.namespaces))


@router.get("/{study}", response_model=StudyDetail)
def show_study(svc: ServicesDep, who: UserDep, study: str = StudyName) -> StudyDetail:
    return svc.automl.detail(svc.automl.get(study, sorted(who.namespaces)))


@router.get("/{study}/importances", response_model=ImportanceOut)
def study_importances(svc: ServicesDep, who: UserDep, study: str = StudyName) -> ImportanceOut:
    found = svc.automl.get(study, sorted(who.namespaces))
    return ImportanceOut(importances=svc.automl.importances(found))


@router.post("/{study}/stop", response_model=StudyDetail)
def stop_study(svc: ServicesDep, who: UserDep, study: str = StudyName) -> StudyDetail:
    return svc.automl.stop(svc.automl.get(study, sorted(who.namespaces)))
