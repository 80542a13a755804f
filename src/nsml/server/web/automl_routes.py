"""The AutoML pages: the list of one's studies (``/automl``), and a study's page
(``/automl/{study}``): trials, history, parallel coordinates, parameter importances and
a stop button, for the study's owner only."""

from __future__ import annotations

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse

from nsml.server.deps import ServicesDep
from nsml.server.web.routes import Viewer, render_page

router = APIRouter(include_in_schema=False)


@router.get("/automl", response_class=HTMLResponse)
def studies_page(request: Request, svc: ServicesDep, who: Viewer) -> HTMLResponse:
    """Studies of the signed-in user and their teams, newest first, as `nsml automl ls` has them."""
    studies = svc.automl.visible(sorted(who.namespaces))
    return render_page(
        request, "automl_list.html", who, svc, studies=[s.model_dump(mode="json") for s in studies]
    )


@router.get("/automl/{study}", response_class=HTMLResponse)
def study_page(
    request: Request,
    svc: ServicesDep,
    who: Viewer,
    study: str = Path(max_length=200, pattern=r"^[A-Za-z0-9_.-]+$"),
) -> HTMLResponse:
    found = svc.automl.get(study, sorted(who.namespaces))
    detail = svc.automl.detail(found)
    names = [str(name) for name in detail.spec.get("params", {})]
    return render_page(
        request,
        "automl.html",
        who,
        svc,
        study=detail.model_dump(mode="json"),
        params=names,
        importances=svc.automl.importances(found),
    )
