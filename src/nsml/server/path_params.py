"""Numbers in request paths: a session's number and a submission's id are INTEGER keys.

``Path`` comes before the validator, or the OpenAPI schema shows the bounds under
FastAPI's own names. Server-only: the client builds these paths, it never parses them.
"""

from __future__ import annotations

import re
from typing import Annotated, Any

from fastapi import Path
from pydantic import BeforeValidator

from nsml.names import MAX_SESSION_NUMBER
from nsml.schemas.base import INT32_MAX

_DIGITS = re.compile(r"[0-9]{1,10}")


def _ascii_digits(value: Any) -> Any:
    """Path numbers are plain ASCII digits: not ``+1``, `` 1``, ``1_0`` nor ``\u0661``."""
    if isinstance(value, str) and not _DIGITS.fullmatch(value):
        raise ValueError("expected a number of at most 10 digits 0-9")
    return value


SessionNumber = Annotated[int, Path(ge=0, le=MAX_SESSION_NUMBER), BeforeValidator(_ascii_digits)]
SubmissionId = Annotated[int, Path(ge=0, le=INT32_MAX), BeforeValidator(_ascii_digits)]
