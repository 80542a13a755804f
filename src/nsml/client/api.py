"""The typed client of the platform's HTTP API (v1), as the CLI uses it.

Every answer is parsed into the schema the server answered with (``nsml.schemas``), so
callers read attributes; dumped back with ``model_dump(mode="json")`` it is the JSON the
server sent. Every call raises :class:`ApiError` carrying the server's one-line ``detail``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
from pydantic import TypeAdapter

from nsml.client.automl import AutoMLClient
from nsml.client.http import API, UNBOUNDED, ApiError, raise_for
from nsml.client.phases import PhasesApi
from nsml.client.servers import ServersApi
from nsml.names import SessionRef
from nsml.schemas.accounts import AccountOut, InviteOut, MeOut, NotifyOut, TeamOut, TokenOut, UserCreated
from nsml.schemas.competition import BoardOut, MySubmissions, PreviewRow, SubmissionOut
from nsml.schemas.credits import CreditsOut
from nsml.schemas.datasets import DatasetOut
from nsml.schemas.live_exec import ExecOut
from nsml.schemas.resources import CacheEntryOut, SharedResourceOut
from nsml.schemas.sessions import CheckpointOut, MetricOut, SessionOut
from nsml.schemas.submission_admin import ExportOut, QueueOut
from nsml.schemas.system import Health, LimitsOut, UploadOut

__all__ = ["ApiClient", "ApiError", "login"]

LOGIN_RETRIES = 4  # a 503 at login means "busy hashing other passwords", not "wrong"
EXEC_TIMEOUT_S = 60.0  # the server waits 30 s for a session's answer, then says so

_ACCOUNTS = TypeAdapter(list[AccountOut])
_DATASETS = TypeAdapter(list[DatasetOut])
_SESSIONS = TypeAdapter(list[SessionOut])
_CHECKPOINTS = TypeAdapter(list[CheckpointOut])
_METRICS = TypeAdapter(list[MetricOut])
_PREVIEW = TypeAdapter(list[PreviewRow])
_PREDICTIONS = TypeAdapter(list[Any])
_CACHE = TypeAdapter(list[CacheEntryOut])
_SHARED = TypeAdapter(list[SharedResourceOut])
_SUBMISSIONS = TypeAdapter(list[SubmissionOut])


class ApiClient(AutoMLClient, PhasesApi, ServersApi):
    # system ------------------------------------------------------------------------
    def health(self, timeout: float | None = None) -> Health:
        kwargs: dict[str, Any] = {"timeout": timeout} if timeout else {}
        return Health.model_validate(self._call("GET", "/health", **kwargs).json())

    def limits(self) -> LimitsOut:
        return LimitsOut.model_validate(self._call("GET", "/limits").json())

    def upload(self, data: bytes) -> str:
        response = self._call("POST", "/uploads", content=data, headers={"Content-Type": "application/gzip"})
        return UploadOut.model_validate(response.json()).upload_id

    # accounts ----------------------------------------------------------------------
    def me(self) -> MeOut | AccountOut:
        """The account, with its storage (:class:`MeOut`) unless an older server leaves it out."""
        answer = self._call("GET", "/auth/me").json()
        return (
            MeOut.model_validate(answer)
            if "storage_used_bytes" in answer
            else AccountOut.model_validate(answer)
        )

    def web_link(self) -> str:
        return str(self._call("POST", "/auth/web-link").json()["url"])

    def logout(self) -> None:
        self._call("POST", "/auth/logout")

    def notify(self) -> NotifyOut:
        return NotifyOut.model_validate(self._call("GET", "/notify").json())

    def set_notify(self, webhook: str | None) -> NotifyOut:
        if webhook is None:
            return NotifyOut.model_validate(self._call("DELETE", "/notify").json())
        return NotifyOut.model_validate(self._call("PUT", "/notify", json={"webhook": webhook}).json())

    def credits(self) -> CreditsOut:
        return CreditsOut.model_validate(self._call("GET", "/credits").json())

    # administration ----------------------------------------------------------------
    def list_users(self) -> list[AccountOut]:
        return _ACCOUNTS.validate_python(self._call("GET", "/admin/users").json())

    def add_user(self, name: str, role: str, password: str | None) -> UserCreated:
        body = {"name": name, "role": role, "password": password}
        return UserCreated.model_validate(self._call("POST", "/admin/users", json=body).json())

    def download_backup(self, target: Path) -> None:
        """The server's backup archive (``nsml admin backup``), written to ``target``."""
        self._stream_to("/admin/backup", target, method="POST")

    def disable_user(self, name: str) -> AccountOut:
        return AccountOut.model_validate(self._call("POST", f"/admin/users/{name}/disable").json())

    def set_role(self, name: str, role: str) -> AccountOut:
        response = self._call("POST", f"/admin/users/{name}/role", json={"role": role})
        return AccountOut.model_validate(response.json())

    def set_storage_quota(self, name: str, mb: int | None) -> AccountOut:
        response = self._call("POST", f"/admin/users/{name}/storage-quota", json={"mb": mb})
        return AccountOut.model_validate(response.json())

    def create_invite(self, role: str, uses: int, expires_hours: float | None) -> InviteOut:
        body = {"role": role, "uses": uses, "expires_hours": expires_hours}
        return InviteOut.model_validate(self._call("POST", "/admin/invites", json=body).json())

    def add_to_team(self, team: str, members: list[str]) -> TeamOut:
        return TeamOut.model_validate(
            self._call("POST", f"/admin/teams/{team}", json={"members": members}).json()
        )

    def grant_credits(self, name: str, amount: float, daily: float | None, clear_daily: bool) -> CreditsOut:
        body = {"amount": amount, "daily": daily, "clear_daily": clear_daily}
        return CreditsOut.model_validate(self._call("POST", f"/admin/credits/{name}", json=body).json())

    # datasets ----------------------------------------------------------------------
    def list_datasets(self, pattern: str | None = None) -> list[DatasetOut]:
        params = {"pattern": pattern} if pattern else {}
        return _DATASETS.validate_python(self._call("GET", "/datasets", params=params).json())

    def create_dataset(
        self, name: str, metric: str | None, description: str, archive: bytes, replace: bool = False
    ) -> DatasetOut:
        upload_id = self.upload(archive)
        body = {
            "name": name,
            "metric": metric,
            "description": description,
            "upload_id": upload_id,
            "replace": replace,
        }
        return DatasetOut.model_validate(self._call("POST", "/datasets", json=body).json())

    def get_dataset(self, name: str) -> DatasetOut:
        return DatasetOut.model_validate(self._call("GET", f"/datasets/{name}").json())

    def remove_dataset(self, name: str, force: bool = False) -> DatasetOut:
        response = self._call("DELETE", f"/datasets/{name}", params={"force": force})
        return DatasetOut.model_validate(response.json())

    # sessions ----------------------------------------------------------------------
    def create_session(
        self,
        dataset: str,
        entry: str,
        args: list[str],
        description: str,
        gpus: int,
        code: bytes,
        cpus: int = 0,
        memory: str = "",
        shm_size: str = "",
    ) -> SessionOut:
        upload_id = self.upload(code)
        body = {
            "dataset": dataset,
            "entry": entry,
            "args": args,
            "description": description,
            "gpus": gpus,
            "cpus": cpus,
            **({"memory": memory} if memory else {}),
            **({"shm_size": shm_size} if shm_size else {}),
            "code_upload": upload_id,
        }
        return SessionOut.model_validate(self._call("POST", "/sessions", json=body).json())

    def list_sessions(
        self,
        all: bool = False,
        dataset: str | None = None,
        limit: int | None = None,
        pattern: str | None = None,
    ) -> list[SessionOut]:
        params: dict[str, Any] = {"all": all}
        if dataset:
            params["dataset"] = dataset
        if limit:
            params["limit"] = limit
        if pattern:
            params["pattern"] = pattern
        return _SESSIONS.validate_python(self._call("GET", "/sessions", params=params).json())

    def get_session(self, ref: SessionRef) -> SessionOut:
        return SessionOut.model_validate(self._call("GET", f"/sessions/{ref.path}").json())

    def fork_session(
        self, ref: SessionRef, checkpoint: str | None, args: list[str] | None, description: str
    ) -> SessionOut:
        body = {"checkpoint": checkpoint, "args": args, "description": description}
        return SessionOut.model_validate(self._call("POST", f"/sessions/{ref.path}/fork", json=body).json())

    def resume_session(self, ref: SessionRef) -> SessionOut:
        return SessionOut.model_validate(self._call("POST", f"/sessions/{ref.path}/resume").json())

    def stop_session(self, ref: SessionRef) -> SessionOut:
        return SessionOut.model_validate(self._call("POST", f"/sessions/{ref.path}/stop").json())

    def remove_session(self, ref: SessionRef) -> None:
        self._call("DELETE", f"/sessions/{ref.path}")

    def set_memo(self, ref: SessionRef, text: str) -> SessionOut:
        response = self._call("PATCH", f"/sessions/{ref.path}", json={"description": text})
        return SessionOut.model_validate(response.json())

    def read_logs(self, ref: SessionRef, offset: int = 0) -> Iterator[bytes]:
        """The log from ``offset`` as it is now, in pages."""
        return self._log_pages(f"/sessions/{ref.path}/logs", offset)

    def follow_logs(self, ref: SessionRef, offset: int = 0) -> Iterator[bytes]:
        """Yield log bytes as they are written, until the session ends."""
        response = self._open_stream(f"/sessions/{ref.path}/logs", params={"offset": offset, "follow": True})
        try:
            yield from response.iter_raw()
        finally:
            response.close()

    def _log_pages(self, path: str, offset: int) -> Iterator[bytes]:
        while True:
            response = self._call("GET", path, params={"offset": offset})
            if not response.content:
                return
            yield response.content
            offset = int(response.headers.get("x-log-offset", offset + len(response.content)))

    def download_source(self, ref: SessionRef, target: Path) -> None:
        """The session's source archive as shipped, streamed to ``target``."""
        self._stream_to(f"/sessions/{ref.path}/source", target)

    def download_outputs(self, ref: SessionRef, path: str, target: Path) -> int:
        """Files the session wrote (under ``path``) as tar.gz in ``target``; how many."""
        response = self._stream_to(f"/sessions/{ref.path}/outputs", target, params={"path": path})
        return int(response.headers.get("x-nsml-files", "0"))

    def download_checkpoint_to(self, ref: SessionRef, name: str, target: Path) -> None:
        self._stream_to(f"/sessions/{ref.path}/checkpoints/{name}", target)

    def list_checkpoints(self, ref: SessionRef) -> list[CheckpointOut]:
        return _CHECKPOINTS.validate_python(self._call("GET", f"/sessions/{ref.path}/checkpoints").json())

    def delete_checkpoint(self, ref: SessionRef, name: str) -> None:
        self._call("DELETE", f"/sessions/{ref.path}/checkpoints/{name}")

    def list_metrics(self, ref: SessionRef) -> list[MetricOut]:
        return _METRICS.validate_python(self._call("GET", f"/sessions/{ref.path}/metrics").json())

    def exec_in_session(self, ref: SessionRef, code: str) -> ExecOut:
        """``nsml exec``: {ok, output} of ``code`` evaluated by the running session."""
        response = self._call(
            "POST",
            f"/sessions/{ref.path}/exec",
            json={"code": code},
            timeout=httpx.Timeout(EXEC_TIMEOUT_S, connect=5.0),
        )
        return ExecOut.model_validate(response.json())

    # competition -------------------------------------------------------------------
    def submit(self, session: str, checkpoint: str, batch_size: int) -> SubmissionOut:
        response = self._submit(session, checkpoint, batch_size, test_mode=False)
        return SubmissionOut.model_validate(response.json())

    def preview_submission(self, session: str, checkpoint: str, batch_size: int) -> list[PreviewRow]:
        """``submit -t``: predictions for a few test inputs, checked as a submission's; no score."""
        return _PREVIEW.validate_python(self._submit(session, checkpoint, batch_size, test_mode=True).json())

    def _submit(self, session: str, checkpoint: str, batch_size: int, test_mode: bool) -> httpx.Response:
        body = {
            "session": session,
            "checkpoint": checkpoint,
            "batch_size": batch_size,
            "test_mode": test_mode,
        }
        return self._call("POST", "/submissions", json=body, timeout=UNBOUNDED)

    def get_submission(self, submission_id: int, wait: float = 0) -> SubmissionOut:
        """With ``wait``, the server answers when the status or progress changes."""
        params = {"wait": wait} if wait else {}
        response = self._call("GET", f"/submissions/{submission_id}", params=params)
        return SubmissionOut.model_validate(response.json())

    def cancel_submission(self, submission_id: int) -> SubmissionOut:
        return SubmissionOut.model_validate(self._call("POST", f"/submissions/{submission_id}/cancel").json())

    def read_submission_logs(self, submission_id: int) -> Iterator[bytes]:
        return self._log_pages(f"/submissions/{submission_id}/logs", 0)

    def infer(self, ref: SessionRef, checkpoint: str, inputs: list[str], batch_size: int) -> list[Any]:
        body = {"checkpoint": checkpoint, "inputs": inputs, "batch_size": batch_size}
        response = self._call("POST", f"/sessions/{ref.path}/infer", json=body, timeout=UNBOUNDED)
        return _PREDICTIONS.validate_python(response.json())

    def board(self, dataset: str, phase: str | None = None) -> BoardOut:
        params = {"phase": phase} if phase else {}
        return BoardOut.model_validate(self._call("GET", f"/datasets/{dataset}/board", params=params).json())

    def my_submissions(self, dataset: str, everyone: bool = False) -> MySubmissions:
        params = {"all": "true"} if everyone else {}
        answer = self._call("GET", f"/datasets/{dataset}/submissions", params=params)
        return MySubmissions.model_validate(answer.json())

    def set_baselines(self, dataset: str, ids: list[int], baseline: bool) -> list[SubmissionOut]:
        body = {"ids": ids, "baseline": baseline}
        return _SUBMISSIONS.validate_python(
            self._call("POST", f"/datasets/{dataset}/baselines", json=body).json()
        )

    def queue(self) -> QueueOut:
        return QueueOut.model_validate(self._call("GET", "/queue").json())

    def export_results(self, dataset: str) -> ExportOut:
        return ExportOut.model_validate(self._call("GET", f"/datasets/{dataset}/export").json())

    def export_results_csv(self, dataset: str) -> str:
        return self._call("GET", f"/datasets/{dataset}/export", params={"format": "csv"}).text

    def close_dataset(self, dataset: str) -> DatasetOut:
        return DatasetOut.model_validate(self._call("POST", f"/datasets/{dataset}/close").json())

    def configure_dataset(self, dataset: str, **options: Any) -> DatasetOut:
        return DatasetOut.model_validate(self._call("PATCH", f"/datasets/{dataset}", json=options).json())

    # cache and shared resources ----------------------------------------------------
    def list_cache(self) -> list[CacheEntryOut]:
        return _CACHE.validate_python(self._call("GET", "/cache").json())

    def delete_cache(self, key: str) -> None:
        self._call("DELETE", f"/cache/{key}")

    def list_shared(self) -> list[SharedResourceOut]:
        return _SHARED.validate_python(self._call("GET", "/shared").json())

    def delete_shared(self, name: str) -> None:
        self._call("DELETE", f"/shared/{name}")


def login(url: str, name: str, password: str, invite: str | None = None) -> TokenOut:
    """Exchange a password (and, to register, an invite code) for a token."""
    body: dict[str, Any] = {"name": name, "password": password}
    path = "/auth/login"
    if invite is not None:
        body["invite"], path = invite, "/auth/register"
    for attempt in range(LOGIN_RETRIES + 1):
        try:
            response = httpx.post(url.rstrip("/") + API + path, json=body, timeout=60.0)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {url}: {exc}") from None
        if response.status_code != 503 or attempt == LOGIN_RETRIES:
            break
        # busy checking other passwords (a login burst): wait as told, then try again
        time.sleep(_retry_after(response))
    raise_for(response)
    return TokenOut.model_validate(response.json())


def _retry_after(response: httpx.Response) -> float:
    """The seconds a 503 asks to wait (1 to 10; 2 when it does not say)."""
    try:
        return min(10.0, max(1.0, float(response.headers.get("retry-after", "2"))))
    except ValueError:
        return 2.0
