"""Dataset registry routes."""

from __future__ import annotations

from fastapi import APIRouter

from nsml.schemas.datasets import DatasetCreate, DatasetOut
from nsml.server.deps import OrganiserDep, PrincipalDep, ServicesDep

router = APIRouter(prefix="/datasets", tags=["datasets"])


@router.get("", response_model=list[DatasetOut])
def list_datasets(svc: ServicesDep, who: PrincipalDep, pattern: str | None = None) -> list[DatasetOut]:
    return [DatasetOut.model_validate(d) for d in svc.datasets.search(pattern)]


@router.post("", response_model=DatasetOut, status_code=201)
def create_dataset(body: DatasetCreate, svc: ServicesDep, who: OrganiserDep) -> DatasetOut:
    """Register an uploaded folder; with ``replace``, as a new version of the caller's dataset."""
    if body.replace:
        dataset = svc.datasets.replace_upload(who, body.name, body.metric, body.description, body.upload_id)
    else:
        dataset = svc.datasets.register_upload(
            who.user, body.name, body.metric, body.description, body.upload_id
        )
    return DatasetOut.model_validate(dataset)


@router.delete("/{name}", response_model=DatasetOut)
def remove_dataset(name: str, svc: ServicesDep, who: PrincipalDep, force: bool = False) -> DatasetOut:
    """Remove a dataset (its organiser or an admin); ``force`` stops its sessions first."""
    return DatasetOut.model_validate(svc.datasets.remove(who, name, force, svc.sessions))


@router.get("/{name}", response_model=DatasetOut)
def get_dataset(name: str, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    return DatasetOut.model_validate(svc.datasets.get(name))
