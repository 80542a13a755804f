"""``nsml notify``: the caller's webhook, which hears when their sessions and submissions
end and when a session goes idle. A session's own token cannot read or change it."""

from __future__ import annotations

from fastapi import APIRouter

from nsml.schemas.accounts import NotifyOut, NotifyRequest
from nsml.server.deps import ServicesDep, UserDep
from nsml.server.services.notifications import EVENTS

router = APIRouter(prefix="/notify", tags=["notifications"])


def _out(webhook: str | None) -> NotifyOut:
    return NotifyOut(webhook=webhook, events=list(EVENTS))


@router.get("", response_model=NotifyOut)
def get_webhook(svc: ServicesDep, who: UserDep) -> NotifyOut:
    return _out(svc.notifications.webhook_of(who.user))


@router.put("", response_model=NotifyOut)
def set_webhook(body: NotifyRequest, svc: ServicesDep, who: UserDep) -> NotifyOut:
    return _out(svc.notifications.set_webhook(who.user, body.webhook).webhook_url)


@router.delete("", response_model=NotifyOut)
def remove_webhook(svc: ServicesDep, who: UserDep) -> NotifyOut:
    return _out(svc.notifications.set_webhook(who.user, None).webhook_url)
