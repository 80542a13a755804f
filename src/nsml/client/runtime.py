"""What a session's own process asks of the server (through ``nsml``): reports,
checkpoints, the cache, shared resources and ``nsml exec`` commands.

Answers stay plain JSON here: parsing them into the schemas would import pydantic into
every training script that reports a metric. :class:`nsml.client.api.ApiClient` builds
the typed calls of the CLI on top of this.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from nsml.client.http import UNBOUNDED, ApiError, HttpClient, json_object
from nsml.names import SessionRef


class RuntimeClient(HttpClient):
    # reports, checkpoints and nsml exec ----------------------------------------------
    def send_reports(self, ref: SessionRef, reports: list[dict[str, Any]], batch_id: str) -> None:
        body = {"reports": reports, "batch_id": batch_id}
        self._call("POST", f"/sessions/{ref.path}/reports", json=body)

    def put_checkpoint(self, ref: SessionRef, name: str, archive: bytes) -> dict[str, Any]:
        response = self._call(
            "PUT",
            f"/sessions/{ref.path}/checkpoints/{name}",
            content=archive,
            headers={"Content-Type": "application/gzip"},
            timeout=UNBOUNDED,
        )
        return json_object(response)

    def download_checkpoint(self, ref: SessionRef, name: str) -> bytes:
        return self._call("GET", f"/sessions/{ref.path}/checkpoints/{name}").content

    def next_exec_command(self, ref: SessionRef, wait: float) -> dict[str, Any] | None:
        """The next ``nsml exec`` command for this session, waiting up to ``wait`` s; or None."""
        response = self._call(
            "GET",
            f"/sessions/{ref.path}/exec/next",
            params={"wait": wait},
            timeout=httpx.Timeout(wait + 15.0, connect=5.0),
        )
        return json_object(response) if response.status_code == 200 else None

    def answer_exec_command(self, ref: SessionRef, command_id: str, ok: bool, output: str) -> None:
        self._call(
            "POST", f"/sessions/{ref.path}/exec/{command_id}/result", json={"ok": ok, "output": output}
        )

    # cache ---------------------------------------------------------------------------
    def download_cache(self, key: str, target: Path) -> bool:
        """Stream a cache entry to ``target``; False when there is none."""
        try:
            self._stream_to(f"/cache/{key}", target)
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    def record_cache_hit(self, key: str) -> dict[str, Any]:
        """Count a hit served from a local read-only copy of the entry."""
        return json_object(self._call("POST", f"/cache/{key}/hits"))

    def put_cache(self, key: str, archive: bytes, function: str, dataset: str | None) -> dict[str, Any]:
        params = {"function": function, **({"dataset": dataset} if dataset else {})}
        response = self._call(
            "PUT",
            f"/cache/{key}",
            params=params,
            content=archive,
            headers={"Content-Type": "application/x-tar"},
            timeout=UNBOUNDED,
        )
        return json_object(response)

    # shared resources ------------------------------------------------------------------
    def put_shared(self, name: str, archive: Path, description: str, replace: bool) -> dict[str, Any]:
        """Publish a tar.gz file, streamed from disk (embeddings can be large). The answer
        stays JSON: publishers print it as it came (``nsml shared push``, kortext)."""

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
            timeout=UNBOUNDED,
        )
        return json_object(response)

    def download_shared(self, name: str, target: Path) -> str:
        """Stream a shared resource's archive to ``target``; returns its version."""
        response = self._stream_to(f"/shared/{name}", target)
        return str(response.headers.get("x-nsml-shared-version", ""))
