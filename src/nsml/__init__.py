"""OpenNSML: the 2018 NSML workflow (``import nsml``) on a platform anyone can run.

Importing ``nsml`` in a training script gives the 2018 SDK. The SDK loads on the first use
of one of its names (``nsml.report``, ``from nsml import DATASET_PATH``), not on import:
the server, the CLI and the client import this package too, and must neither load the SDK
nor read a session's environment. The HTTP client loads only when a report or checkpoint
is first sent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from nsml._version import __version__

if TYPE_CHECKING:  # what type checkers see; at run time __getattr__ binds these
    from nsml.sdk import (
        DATASET_PATH,
        GPU_NUM,
        HAS_DATASET,
        IS_ON_NSML,
        SESSION_NAME,
        bind,
        cache,
        infer,
        load,
        paused,
        report,
        save,
        shared,
    )

__all__ = [
    "DATASET_PATH",
    "GPU_NUM",
    "HAS_DATASET",
    "IS_ON_NSML",
    "SESSION_NAME",
    "__version__",
    "bind",
    "cache",
    "infer",
    "load",
    "paused",
    "report",
    "save",
    "shared",
]
_SDK_NAMES = tuple(name for name in __all__ if name != "__version__")


def __getattr__(name: str) -> Any:
    """Load the SDK and bind all its names here at once, as the eager import did: their
    values are those of that moment, and later lookups find them without coming here."""
    if name not in _SDK_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    sdk = importlib.import_module("nsml.sdk")
    names = globals()
    for sdk_name in _SDK_NAMES:
        names.setdefault(sdk_name, getattr(sdk, sdk_name))
    return names[name]


def __dir__() -> list[str]:
    return sorted({*globals(), *_SDK_NAMES})
