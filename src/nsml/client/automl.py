"""The AutoML calls of the typed client (``nsml automl``), kept beside the rest of the API."""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from pydantic import TypeAdapter

from nsml.client.runtime import RuntimeClient
from nsml.schemas.automl import StudyDetail, StudyOut

_STUDIES = TypeAdapter(list[StudyOut])


class AutoMLClient(RuntimeClient):
    def create_study(self, upload_id: str, spec: dict[str, Any], **session: Any) -> StudyDetail:
        """``session``: the fields of a session's request (dataset, entry, args, ...)."""
        body = {**session, "spec": spec, "code_upload": upload_id}
        return StudyDetail.model_validate(self._call("POST", "/automl", json=body).json())

    def list_studies(self) -> list[StudyOut]:
        return _STUDIES.validate_python(self._call("GET", "/automl").json())

    def get_study(self, name: str) -> StudyDetail:
        return StudyDetail.model_validate(self._call("GET", f"/automl/{quote(name, safe='')}").json())

    def stop_study(self, name: str) -> StudyDetail:
        return StudyDetail.model_validate(self._call("POST", f"/automl/{quote(name, safe='')}/stop").json())
