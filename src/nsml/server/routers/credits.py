"""Credit balances: one's own, and an admin's grants."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from nsml.schemas.credits import CreditEventOut, CreditGrant, CreditsOut
from nsml.server.auth import Principal
from nsml.server.deps import PrincipalDep, Services, ServicesDep, require_admin
from nsml.server.routers.system import owner_account
from nsml.store import User

router = APIRouter(tags=["credits"])
HISTORY = 50


def _report(svc: Services, account: User) -> CreditsOut:
    return CreditsOut(
        account=account.name,
        balance=account.credits,
        daily=account.daily_credits,
        enforced=svc.credits.enforced,
        history=[CreditEventOut.model_validate(e) for e in svc.credits.history(account, HISTORY)],
    )


@router.get("/credits", response_model=CreditsOut)
def my_credits(svc: ServicesDep, who: PrincipalDep) -> CreditsOut:
    """The balance that pays for the caller's sessions (the team's, for a team member)."""
    return _report(svc, owner_account(svc, who))


@router.post("/admin/credits/{name}", response_model=CreditsOut)
def grant(
    name: str, body: CreditGrant, svc: ServicesDep, who: Annotated[Principal, Depends(require_admin)]
) -> CreditsOut:
    """Grant (or, negative, take) credits once, and/or set a daily allowance."""
    account = svc.accounts.get(name)
    if body.amount:
        svc.credits.grant(account, body.amount, who.user.name)
    if body.daily is not None or body.clear_daily:
        svc.credits.set_daily(account, None if body.clear_daily else body.daily)
    return _report(svc, svc.accounts.get(name))
