"""A typed wrapper over the platform's HTTP API (v1).

Every call raises :class:`ApiError` carrying the server's one-line ``detail``, so the
CLI can print it unchanged and the SDK can raise it in the user's script.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from nsml.names import SessionRef

API = "/api/v1"
EXEC_TIMEOUT_S = 60.0  # the server waits 30 s for a session's answer, then says so


class ApiError(Exception):
    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


class ApiClient:
    def __init__(self, url: str, token: str, timeout: float = 30.0, uds: str | None = None) -> None:
        self.url = url.rstrip("/")
        self._http = httpx.Client(
            transport=httpx.HTTPTransport(uds=uds) if uds else None,
            base_url=self.url + API,
            headers={"Authorization": f"Bearer {token}"},
            timeout=httpx.Timeout(timeout, connect=5.0),
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> ApiClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    # plumbing ----------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self._http.request(method, path, **kwargs)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        _raise_for(response)
        return response

    # system ------------------------------------------------------------------------
    def health(self, timeout: float | None = None) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"timeout": timeout} if timeout else {}
        return self._call("GET", "/health", **kwargs).json()  # type: ignore[no-any-return]

    def limits(self) -> dict[str, Any]:
        return self._call("GET", "/limits").json()  # type: ignore[no-any-return]

    def upload(self, data: bytes) -> str:
        response = self._call("POST", "/uploads", content=data, headers={"Content-Type": "application/gzip"})
        return response.json()["upload_id"]  # type: ignore[no-any-return]

    # accounts ----------------------------------------------------------------------
    def me(self) -> dict[str, Any]:
        return self._call("GET", "/auth/me").json()  # type: ignore[no-any-return]

    def web_link(self) -> str:
        return str(self._call("POST", "/auth/web-link").json()["url"])

    def logout(self) -> None:
        self._call("POST", "/auth/logout")

    def admin(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        return self._call(method, f"/admin/{path}", json=body).json()

    def notify(self) -> dict[str, Any]:
        return self._call("GET", "/notify").json()  # type: ignore[no-any-return]

    def set_notify(self, webhook: str | None) -> dict[str, Any]:
        if webhook is None:
            return self._call("DELETE", "/notify").json()  # type: ignore[no-any-return]
        return self._call("PUT", "/notify", json={"webhook": webhook}).json()  # type: ignore[no-any-return]

    def credits(self) -> dict[str, Any]:
        return self._call("GET", "/credits").json()  # type: ignore[no-any-return]

    # datasets ----------------------------------------------------------------------
    def list_datasets(self, pattern: str | None = None) -> list[dict[str, Any]]:
        params = {"pattern": pattern} if pattern else {}
        return self._call("GET", "/datasets", params=params).json()  # type: ignore[no-any-return]

    def create_dataset(self, name: str, metric: str, description: str, archive: bytes) -> dict[str, Any]:
        upload_id = self.upload(archive)
        body = {"name": name, "metric": metric, "description": description, "upload_id": upload_id}
        return self._call("POST", "/datasets", json=body).json()  # type: ignore[no-any-return]

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
    ) -> dict[str, Any]:
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
        return self._call("POST", "/sessions", json=body).json()  # type: ignore[no-any-return]

    def list_sessions(
        self,
        all: bool = False,
        dataset: str | None = None,
        limit: int | None = None,
        pattern: str | None = None,
    ) -> list[dict[str, Any]]:
        params: dict[str, Any] = {"all": all}
        if dataset:
            params["dataset"] = dataset
        if limit:
            params["limit"] = limit
        if pattern:
            params["pattern"] = pattern
        return self._call("GET", "/sessions", params=params).json()  # type: ignore[no-any-return]

    def get_session(self, ref: SessionRef) -> dict[str, Any]:
        return self._call("GET", f"/sessions/{ref.path}").json()  # type: ignore[no-any-return]

    def fork_session(
        self, ref: SessionRef, checkpoint: str | None, args: list[str] | None, description: str
    ) -> dict[str, Any]:
        body = {"checkpoint": checkpoint, "args": args, "description": description}
        return self._call("POST", f"/sessions/{ref.path}/fork", json=body).json()  # type: ignore[no-any-return]

    def resume_session(self, ref: SessionRef) -> dict[str, Any]:
        return self._call("POST", f"/sessions/{ref.path}/resume").json()  # type: ignore[no-any-return]

    def stop_session(self, ref: SessionRef) -> dict[str, Any]:
        return self._call("POST", f"/sessions/{ref.path}/stop").json()  # type: ignore[no-any-return]

    def remove_session(self, ref: SessionRef) -> None:
        self._call("DELETE", f"/sessions/{ref.path}")

    def read_logs(self, ref: SessionRef, offset: int = 0) -> Iterator[bytes]:
        """The log from ``offset`` as it is now, in pages."""
        while True:
            response = self._call("GET", f"/sessions/{ref.path}/logs", params={"offset": offset})
            if not response.content:
                return
            yield response.content
            offset = int(response.headers.get("x-log-offset", offset + len(response.content)))

    def follow_logs(self, ref: SessionRef, offset: int = 0) -> Iterator[bytes]:
        """Yield log bytes as they are written, until the session ends."""
        request = self._http.build_request(
            "GET",
            f"/sessions/{ref.path}/logs",
            params={"offset": offset, "follow": True},
            timeout=httpx.Timeout(None, connect=5.0),
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        try:
            if response.is_error:
                response.read()
                _raise_for(response)
            yield from response.iter_raw()
        finally:
            response.close()

    def set_memo(self, ref: SessionRef, text: str) -> dict[str, Any]:
        return self._call("PATCH", f"/sessions/{ref.path}", json={"description": text}).json()  # type: ignore[no-any-return]

    def download_source(self, ref: SessionRef, target: Path) -> None:
        """The session's source archive as shipped, streamed to ``target``."""
        self._stream_to(f"/sessions/{ref.path}/source", target)

    def download_outputs(self, ref: SessionRef, path: str, target: Path) -> int:
        """Files the session wrote (under ``path``) as tar.gz in ``target``; how many."""
        response = self._stream_to(f"/sessions/{ref.path}/outputs", target, params={"path": path})
        return int(response.headers.get("x-nsml-files", "0"))

    def download_checkpoint_to(self, ref: SessionRef, name: str, target: Path) -> None:
        self._stream_to(f"/sessions/{ref.path}/checkpoints/{name}", target)

    def _stream_to(self, path: str, target: Path, params: dict[str, Any] | None = None) -> httpx.Response:
        request = self._http.build_request(
            "GET", path, params=params, timeout=httpx.Timeout(None, connect=5.0)
        )
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        try:
            if response.is_error:
                response.read()
                _raise_for(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
            return response
        finally:
            response.close()

    def list_checkpoints(self, ref: SessionRef) -> list[dict[str, Any]]:
        return self._call("GET", f"/sessions/{ref.path}/checkpoints").json()  # type: ignore[no-any-return]

    def delete_checkpoint(self, ref: SessionRef, name: str) -> None:
        self._call("DELETE", f"/sessions/{ref.path}/checkpoints/{name}")

    def download_checkpoint(self, ref: SessionRef, name: str) -> bytes:
        return self._call("GET", f"/sessions/{ref.path}/checkpoints/{name}").content

    def list_metrics(self, ref: SessionRef) -> list[dict[str, Any]]:
        return self._call("GET", f"/sessions/{ref.path}/metrics").json()  # type: ignore[no-any-return]

    def exec_in_session(self, ref: SessionRef, code: str) -> dict[str, Any]:
        """``nsml exec``: {ok, output} of ``code`` evaluated by the running session."""
        response = self._call(
            "POST",
            f"/sessions/{ref.path}/exec",
            json={"code": code},
            timeout=httpx.Timeout(EXEC_TIMEOUT_S, connect=5.0),
        )
        return response.json()  # type: ignore[no-any-return]

    # competition -------------------------------------------------------------------
    def submit(self, session: str, checkpoint: str, batch_size: int, test_mode: bool) -> Any:
        body = {
            "session": session,
            "checkpoint": checkpoint,
            "batch_size": batch_size,
            "test_mode": test_mode,
        }
        return self._call("POST", "/submissions", json=body, timeout=httpx.Timeout(None, connect=5.0)).json()

    def get_submission(self, submission_id: int, wait: float = 0) -> dict[str, Any]:
        """With ``wait``, the server answers when the status or progress changes."""
        params = {"wait": wait} if wait else {}
        return self._call("GET", f"/submissions/{submission_id}", params=params).json()  # type: ignore[no-any-return]

    def cancel_submission(self, submission_id: int) -> dict[str, Any]:
        return self._call("POST", f"/submissions/{submission_id}/cancel").json()  # type: ignore[no-any-return]

    def read_submission_logs(self, submission_id: int) -> Iterator[bytes]:
        offset = 0
        while True:
            response = self._call("GET", f"/submissions/{submission_id}/logs", params={"offset": offset})
            if not response.content:
                return
            yield response.content
            offset = int(response.headers.get("x-log-offset", offset + len(response.content)))

    def infer(self, ref: SessionRef, checkpoint: str, inputs: list[str], batch_size: int) -> list[Any]:
        body = {"checkpoint": checkpoint, "inputs": inputs, "batch_size": batch_size}
        response = self._call(
            "POST", f"/sessions/{ref.path}/infer", json=body, timeout=httpx.Timeout(None, connect=5.0)
        )
        return response.json()  # type: ignore[no-any-return]

    def board(self, dataset: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{dataset}/board").json()  # type: ignore[no-any-return]

    def my_submissions(self, dataset: str) -> dict[str, Any]:
        return self._call("GET", f"/datasets/{dataset}/submissions").json()  # type: ignore[no-any-return]

    def close_dataset(self, dataset: str) -> dict[str, Any]:
        return self._call("POST", f"/datasets/{dataset}/close").json()  # type: ignore[no-any-return]

    def configure_dataset(self, dataset: str, **options: Any) -> dict[str, Any]:
        return self._call("PATCH", f"/datasets/{dataset}", json=options).json()  # type: ignore[no-any-return]

    # cache -------------------------------------------------------------------------
    def download_cache(self, key: str, target: Path) -> bool:
        """Stream a cache entry to ``target``; False when there is none."""
        request = self._http.build_request("GET", f"/cache/{key}", timeout=httpx.Timeout(None, connect=5.0))
        try:
            response = self._http.send(request, stream=True)
        except httpx.TransportError as exc:
            raise ApiError(0, f"cannot reach the server at {self.url}: {exc}") from None
        try:
            if response.status_code == 404:
                return False
            if response.is_error:
                response.read()
                _raise_for(response)
            with target.open("wb") as out:
                for chunk in response.iter_bytes(1 << 20):
                    out.write(chunk)
            return True
        finally:
            response.close()

    def record_cache_hit(self, key: str) -> dict[str, Any]:
        """Count a hit served from a local read-only copy of the entry."""
        return self._call("POST", f"/cache/{key}/hits").json()  # type: ignore[no-any-return]

    def put_cache(self, key: str, archive: bytes, function: str, dataset: str | None) -> dict[str, Any]:
        params = {"function": function, **({"dataset": dataset} if dataset else {})}
        response = self._call(
            "PUT",
            f"/cache/{key}",
            params=params,
            content=archive,
            headers={"Content-Type": "application/x-tar"},
            timeout=httpx.Timeout(None, connect=5.0),
        )
        return response.json()  # type: ignore[no-any-return]

    def list_cache(self) -> list[dict[str, Any]]:
        return self._call("GET", "/cache").json()  # type: ignore[no-any-return]

    def delete_cache(self, key: str) -> None:
        self._call("DELETE", f"/cache/{key}")

    # shared resources --------------------------------------------------------------
    def list_shared(self) -> list[dict[str, Any]]:
        return self._call("GET", "/shared").json()  # type: ignore[no-any-return]

    def put_shared(self, name: str, archive: Path, description: str, replace: bool) -> dict[str, Any]:
        """Publish a tar.gz file, streamed from disk (embeddings can be large)."""

        def chunks() -> Iterator[bytes]:
            with archive.open("rb") as handle:
                while chunk := handle.read(1 << 20):
                    yield chunk

        response = self._call(
            "PUT",
            f"/shared/{name}",
            params={"description": description, "replace": "true" if replace else "false"},
            content=chunks(),
            headers={"Content-Type": "application/gzip", "Content-Length": str(archive.stat().st_size)},
            timeout=httpx.Timeout(None, connect=5.0),
        )
        return response.json()  # type: ignore[no-any-return]

    def download_shared(self, name: str, target: Path) -> str:
        """Stream a shared resource's archive to ``target``; returns its version."""
        response = self._stream_to(f"/shared/{name}", target)
        return response.headers.get("x-nsml-shared-version", "")

    def delete_shared(self, name: str) -> None:
        self._call("DELETE", f"/shared/{name}")

    # runtime (a session's own process) ---------------------------------------------
    def send_reports(self, ref: SessionRef, reports: list[dict[str, Any]]) -> None:
        self._call("POST", f"/sessions/{ref.path}/reports", json={"reports": reports})

    def next_exec_command(self, ref: SessionRef, wait: float) -> dict[str, Any] | None:
        """The next ``nsml exec`` command for this session, waiting up to ``wait`` s; or None."""
        response = self._call(
            "GET",
            f"/sessions/{ref.path}/exec/next",
            params={"wait": wait},
            timeout=httpx.Timeout(wait + 15.0, connect=5.0),
        )
        return response.json() if response.status_code == 200 else None

    def answer_exec_command(self, ref: SessionRef, command_id: str, ok: bool, output: str) -> None:
        self._call(
            "POST", f"/sessions/{ref.path}/exec/{command_id}/result", json={"ok": ok, "output": output}
        )

    def put_checkpoint(self, ref: SessionRef, name: str, archive: bytes) -> dict[str, Any]:
        response = self._call(
            "PUT",
            f"/sessions/{ref.path}/checkpoints/{name}",
            content=archive,
            headers={"Content-Type": "application/gzip"},
            timeout=httpx.Timeout(None, connect=5.0),
        )
        return response.json()  # type: ignore[no-any-return]


def _raise_for(response: httpx.Response) -> None:
    if response.is_success:
        return
    try:
        detail = response.json().get("detail", response.text)
    except ValueError:
        detail = response.text or response.reason_phrase
    if not isinstance(detail, str):
        detail = str(detail)
    raise ApiError(response.status_code, detail)


def login(url: str, name: str, password: str, invite: str | None = None) -> dict[str, Any]:
    """Exchange a password (and, to register, an invite code) for a token."""
    body: dict[str, Any] = {"name": name, "password": password}
    path = "/auth/login"
    if invite is not None:
        body["invite"], path = invite, "/auth/register"
    try:
        response = httpx.post(url.rstrip("/") + API + path, json=body, timeout=30.0)
    except httpx.TransportError as exc:
        raise ApiError(0, f"cannot reach the server at {url}: {exc}") from None
    _raise_for(response)
    return response.json()  # type: ignore[no-any-return]
