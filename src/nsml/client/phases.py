"""The client's calls for competition phases, final selections and re-runs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import TypeAdapter

from nsml.client.runtime import RuntimeClient
from nsml.schemas.competition import SubmissionOut
from nsml.schemas.phases import PhaseOut, RerunOut

_PHASES = TypeAdapter(list[PhaseOut])
_SUBMISSIONS = TypeAdapter(list[SubmissionOut])


class PhasesApi(RuntimeClient):
    def list_phases(self, dataset: str) -> list[PhaseOut]:
        return _PHASES.validate_python(self._call("GET", f"/datasets/{dataset}/phases").json())

    def add_phase(
        self,
        dataset: str,
        name: str,
        archive: bytes,
        starts_at: datetime | None,
        ends_at: datetime | None,
        **options: Any,
    ) -> PhaseOut:
        upload_id = self.upload(archive)  # type: ignore[attr-defined]
        body = {
            "name": name,
            "upload_id": upload_id,
            "starts_at": starts_at.isoformat() if starts_at else None,
            "ends_at": ends_at.isoformat() if ends_at else None,
            **options,
        }
        return PhaseOut.model_validate(self._call("POST", f"/datasets/{dataset}/phases", json=body).json())

    def start_phase(self, dataset: str, name: str) -> PhaseOut:
        return PhaseOut.model_validate(self._call("POST", f"/datasets/{dataset}/phases/{name}/start").json())

    def select_submissions(self, dataset: str, ids: list[int]) -> list[SubmissionOut]:
        answer = self._call("POST", f"/datasets/{dataset}/selection", json={"ids": ids})
        return _SUBMISSIONS.validate_python(answer.json())

    def rerun_submissions(self, dataset: str, ids: list[int], everything: bool) -> RerunOut:
        answer = self._call("POST", f"/datasets/{dataset}/rerun", json={"ids": ids, "all": everything})
        return RerunOut.model_validate(answer.json())
