"""The client's call for the servers on one database (``nsml admin servers``)."""

from __future__ import annotations

from pydantic import TypeAdapter

from nsml.client.runtime import RuntimeClient
from nsml.schemas.servers import ServerOut

_SERVERS = TypeAdapter(list[ServerOut])


class ServersApi(RuntimeClient):
    def list_servers(self) -> list[ServerOut]:
        return _SERVERS.validate_python(self._call("GET", "/admin/servers").json())
