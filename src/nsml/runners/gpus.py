"""Which GPUs this host has.

``NSML_GPUS`` overrides detection: a comma list of device ids ("0,1"), or "none".
Otherwise ``nvidia-smi -L`` is asked; no NVIDIA driver means no GPUs.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess


def detect_gpus() -> tuple[str, ...]:
    configured = os.environ.get("NSML_GPUS")
    if configured is not None:
        if configured.strip().lower() in ("", "none"):
            return ()
        return tuple(part.strip() for part in configured.split(",") if part.strip())
    binary = shutil.which("nvidia-smi")
    if binary is None:
        return ()
    try:
        listing = subprocess.run([binary, "-L"], capture_output=True, text=True, timeout=20).stdout
    except (OSError, subprocess.TimeoutExpired):
        return ()
    return tuple(match.group(1) for match in re.finditer(r"^GPU (\d+):", listing, re.MULTILINE))
