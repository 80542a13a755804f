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
    dataset = svc.datasets.register_upload(who.user, body.name, body.metric, body.description, body.upload_id)
    return DatasetOut.model_validate(dataset)


@router.get("/{name}", response_model=DatasetOut)
def get_dataset(name: str, svc: ServicesDep, who: PrincipalDep) -> DatasetOut:
    return DatasetOut.model_validate(svc.datasets.get(name))
