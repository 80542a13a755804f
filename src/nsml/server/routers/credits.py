"""Credit balances: one's own, and an admin's grants."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated

from fastapi import APIRouter, Depends

from nsml.schemas.credits import CreditEventOut, CreditGrant, CreditsOut
from nsml.server.auth import Principal
from nsml.server.deps import PrincipalDep, Services, ServicesDep, require_admin
from nsml.server.errors import NotFoundError
from nsml.store import NotFound, User

router = APIRouter(tags=["credits"])
HISTORY = 50


def _report(svc: Services, account: User) -> CreditsOut:
    return CreditsOut(
        account=account.name,
        balance=account.credits,
        daily=account.daily_credits,
        enforced=svc.credits.enforced,
        history=[CreditEventOut.model_validate(e) for e in svc.store.credit_events(account.id, HISTORY)],
    )


@router.get("/credits", response_model=CreditsOut)
def my_credits(svc: ServicesDep, who: PrincipalDep) -> CreditsOut:
    """The balance that pays for the caller's sessions (the team's, for a team member)."""
    return _report(svc, svc.store.get_user(who.user.owner_name))


@router.post("/admin/credits/{name}", response_model=CreditsOut)
def grant(
    name: str, body: CreditGrant, svc: ServicesDep, who: Annotated[Principal, Depends(require_admin)]
) -> CreditsOut:
    """Grant (or, negative, take) credits once, and/or set a daily allowance."""
    try:
        account = svc.store.get_user(name)
    except NotFound:
        raise NotFoundError(f"account {name!r} not found") from None
    if body.amount:
        svc.store.grant_credits(
            account.id, body.amount, f"granted by {who.user.name}", datetime.now(timezone.utc)
        )
    if body.daily is not None or body.clear_daily:
        svc.store.set_daily_credits(account.id, None if body.clear_daily else body.daily)
        svc.credits.tick() if svc.credits.enforced else None
    return _report(svc, svc.store.get_user(name))
