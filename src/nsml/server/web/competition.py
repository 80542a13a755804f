"""A competition's pages: what participants read and where they stand (description,
rules, deadline, phases, limits, the board), and the organiser's desk (queue, phases,
re-runs, baselines). Fields that newer servers add are shown when present."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from nsml.evaluation.metrics import metric_info
from nsml.schemas.datasets import DatasetOut
from nsml.server.deps import ServicesDep
from nsml.server.web.errors import page_error
from nsml.server.web.routes import Viewer, render_page

router = APIRouter(include_in_schema=False)


def _dataset(svc: ServicesDep, name: str) -> tuple[Any, dict[str, Any]]:
    dataset = svc.datasets.get(name)  # an unknown name is a 404 page
    return dataset, DatasetOut.model_validate(dataset).model_dump(mode="json")


@router.get("/boards/{name}")
def board_page(name: str) -> Response:
    """The old address of a board, kept for links people saved."""
    return RedirectResponse(f"/competitions/{name}", status_code=307)


@router.get("/competitions/{name}", response_class=HTMLResponse)
def competition_page(name: str, request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    dataset, shown = _dataset(svc, name)
    return render_page(
        request,
        "competition.html",
        who,
        svc,
        dataset=shown,
        higher_is_better=metric_info(dataset.metric).higher_is_better,
        my_owner=who.user.owner_name,
        organiser=who.can_organise(dataset),
    )


@router.get("/competitions/{name}/organise", response_class=HTMLResponse)
def organiser_page(name: str, request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    dataset, shown = _dataset(svc, name)
    if not who.can_organise(dataset):
        return page_error(request, 403, f"only the organiser of {name} ({dataset.owner}) or an admin runs it")
    return render_page(request, "organise.html", who, svc, dataset=shown)
