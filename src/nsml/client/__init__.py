"""The HTTP client of the platform API, shared by the CLI and the SDK."""

from nsml.client.api import ApiClient, ApiError

__all__ = ["ApiClient", "ApiError"]
