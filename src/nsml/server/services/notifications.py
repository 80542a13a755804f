"""What the platform tells a user's webhook, and who gets told.

Events: ``session_exited``, ``session_failed``, ``session_stopped`` (a session ended),
``session_idle`` (it runs but neither reports nor uses the CPU), ``submission_scored`` and
``submission_failed``. A session of a team notifies every member who set a webhook. A
submission's score is the one its owner may see (the public part, rounded as the board
shows it), never the private part of an open competition.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from nsml.server.errors import BadRequest
from nsml.server.webhooks import InvalidWebhook, WebhookSender, validate_webhook
from nsml.store import AbstractStore, NotFound, Session, Submission, User

EVENTS = (
    "session_exited",
    "session_failed",
    "session_stopped",
    "session_idle",
    "submission_scored",
    "submission_failed",
)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None


class NotificationService:
    def __init__(self, store: AbstractStore, sender: WebhookSender | None = None) -> None:
        self.store = store
        self.sender = sender or WebhookSender(self.webhooks_of)

    def start(self) -> None:
        self.sender.start()

    def stop(self) -> None:
        self.sender.stop()

    # settings ------------------------------------------------------------------------
    def set_webhook(self, user: User, url: str | None) -> User:
        """Store (or with None remove) the caller's webhook, validated first."""
        if url is not None:
            try:
                url = validate_webhook(url)
            except InvalidWebhook as exc:
                raise BadRequest(str(exc)) from None
        return self.store.update_user(user.name, webhook_url=url)

    def webhook_of(self, user: User) -> str | None:
        """The webhook ``user`` set, as stored now."""
        return self.store.get_user(user.name).webhook_url

    def webhooks_of(self, account: str) -> list[str]:
        """The webhooks that hear about ``account``'s sessions: its own, or its members'."""
        try:
            user = self.store.get_user(account)
        except NotFound:
            return []
        people = [user, *self.store.team_members(user.name)] if user.kind == "team" else [user]
        return list(dict.fromkeys(p.webhook_url for p in people if p.webhook_url and not p.disabled))

    # events --------------------------------------------------------------------------
    def session_ended(self, session: Session) -> None:
        self.sender.send(session.owner, {"event": f"session_{session.status.value}", **_session(session)})

    def session_idle(self, session: Session, idle_since: datetime) -> None:
        self.sender.send(
            session.owner,
            {"event": "session_idle", **_session(session), "idle_since": _iso(idle_since)},
        )

    def submission_finished(self, submission: Submission) -> None:
        """``submission`` as its owner may see it (``SubmissionService.participant_view``)."""
        self.sender.send(
            submission.owner,
            {
                "event": f"submission_{submission.status.value}",
                "submission_id": submission.id,
                "dataset": submission.dataset,
                "session": submission.session_name,
                "checkpoint": submission.checkpoint,
                "status": submission.status.value,
                "reason": submission.reason,
                "score": submission.public_score,
                "created_at": _iso(submission.created_at),
                "finished_at": _iso(submission.finished_at),
                "sent_at": _iso(datetime.now(timezone.utc)),
            },
        )


def _session(session: Session) -> dict[str, Any]:
    return {
        "session": session.name,
        "dataset": session.dataset,
        "status": session.status.value,
        "exit_code": session.exit_code,
        "reason": session.reason,
        "created_at": _iso(session.created_at),
        "started_at": _iso(session.started_at),
        "ended_at": _iso(session.ended_at),
        "sent_at": _iso(datetime.now(timezone.utc)),
    }
