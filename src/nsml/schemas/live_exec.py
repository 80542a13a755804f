"""``nsml exec``: text between a session's owner and its process (bounds in
``server/services/live_exec.py``)."""

from __future__ import annotations

from pydantic import BaseModel, Field

from nsml.schemas.base import Request

EXEC_CODE_CHARS = 16_384
EXEC_OUTPUT_CHARS = 65_536


class ExecRequest(Request):
    code: str = Field(min_length=1, max_length=EXEC_CODE_CHARS)


class ExecOut(BaseModel):
    ok: bool  # false: the code raised; output is the exception's last line
    output: str  # the repr of an expression's value and what the code printed


class ExecCommandOut(BaseModel):
    id: str
    code: str


class ExecAnswer(Request):
    ok: bool
    output: str = Field(max_length=EXEC_OUTPUT_CHARS)
