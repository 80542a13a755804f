"""The HTTP client of the platform API, shared by the CLI and the SDK.

``ApiClient`` is imported on first use: the SDK imports ``nsml.client.archive`` and
``nsml.client.runtime`` inside training scripts, which should not load pydantic.
"""

from typing import Any

__all__ = ["ApiClient", "ApiError"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from nsml.client import api

        return getattr(api, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
