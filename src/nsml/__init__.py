"""OpenNSML: the 2018 NSML workflow (``import nsml``) on a platform anyone can run.

Importing ``nsml`` in a training script gives the 2018 SDK. It stays light: the HTTP
client loads only when a report or checkpoint is first sent.
"""

from __future__ import annotations

__version__ = "0.1.0"

from nsml.sdk import (  # noqa: E402
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
