"""The API servers sharing this database, with their leases (admins only)."""

from __future__ import annotations

from datetime import datetime, timezone

from fastapi import APIRouter

from nsml.schemas.servers import ServerOut
from nsml.server.deps import PrincipalDep, ServicesDep
from nsml.server.errors import Forbidden

router = APIRouter(prefix="/admin", tags=["admin"])


@router.get("/servers", response_model=list[ServerOut])
def list_servers(svc: ServicesDep, who: PrincipalDep) -> list[ServerOut]:
    """Every server that registered on this database, the most recently started first."""
    if not who.is_admin:
        raise Forbidden("only admins may list the servers")
    if svc.leases is None:
        return []
    now = datetime.now(timezone.utc)
    driving = svc.leases.active_sessions_by_driver()
    return [
        ServerOut(
            **{k: v for k, v in vars(server).items()},
            state=server.state(now),
            this=server.id == svc.leases.server_id,
            sessions=driving.get(server.id, 0),
        )
        for server in svc.leases.servers()
    ]
