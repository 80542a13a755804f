"""Per-session Python environments from ``requirements.txt`` or ``setup.py``, without Docker.

Each distinct requirement set gets one virtual environment, built once under
``envs/<key>`` and reused by every later session that declares the same set. The
environment sees the platform's own packages (torch and friends) through a ``.pth``
file, so pip installs only what is missing and never downloads torch again.
"""

from __future__ import annotations

import ast
import fcntl
import hashlib
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from pathlib import Path
from typing import BinaryIO

from nsml.artifacts.safe_io import UnsafeFile, archive_member
from nsml.runners.base import RunSpec

PIP_TAIL_LINES = 8


class EnvironmentFailed(RuntimeError):
    """pip could not install the requirements; the message carries pip's own words."""


_REQUIREMENT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(\[[A-Za-z0-9,._-]+\])?\s*([<>=!~;].*)?$")
MAX_DECLARATION_BYTES = 256 * 1024  # a requirements.txt or setup.py larger than this is refused


def declared_requirements(archive: Path) -> list[str] | None:
    """The requirement lines a shipped source declares, or None when it declares none.

    Read from the archive as shipped (``sessions/ID/code.tar.gz``), never from the work
    dir: the session writes that one, and a ``requirements.txt`` it turned into a link
    to a server file would otherwise be read with the server's privileges. Only a
    regular file member is read, and no line of it is ever repeated in an error.

    pip runs on the platform's host, so only plain requirement specifiers pass: no pip
    options (``-r``, ``-e``, ``--index-url``), no paths, no URLs.
    """
    listed = _member(archive, "requirements.txt")
    if listed is not None:
        numbered = [(n, line.split("#", 1)[0].strip()) for n, line in enumerate(listed.splitlines(), 1)]
        return _checked([(n, line) for n, line in numbered if line], "requirements.txt line")
    setup = _member(archive, "setup.py")
    if setup is not None:
        found = _install_requires(setup)
        return (
            None if found is None else _checked(list(enumerate(found, 1)), "setup.py install_requires item")
        )
    return None


def _member(archive: Path, name: str) -> str | None:
    try:
        data = archive_member(archive, name, MAX_DECLARATION_BYTES)
    except UnsafeFile as exc:
        raise EnvironmentFailed(f"{exc}; ship {name} as a plain text file") from None
    except (OSError, tarfile.TarError, EOFError):
        raise EnvironmentFailed(
            "the shipped source archive could not be read; run the session again"
        ) from None
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise EnvironmentFailed(f"{name} is not UTF-8 text; save it as UTF-8") from None


def _checked(numbered: list[tuple[int, str]], origin: str) -> list[str]:
    for number, line in numbered:
        if not _REQUIREMENT.match(line) or "/" in line or "\\" in line or "@" in line:
            raise EnvironmentFailed(
                f"{origin} {number} is not allowed; give package names with versions only "
                "(no pip options, paths or URLs)"
            )
    return sorted(line for _, line in numbered)


def _install_requires(code: str) -> list[str] | None:
    """``install_requires=[...]`` of a ``setup(...)`` call, read without running setup.py."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return None
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", getattr(node.func, "attr", "")) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "install_requires":
                    try:
                        return [str(item) for item in ast.literal_eval(keyword.value)]
                    except (ValueError, TypeError):
                        return None
    return None


_IMAGE_LINE = re.compile(r"^\s*#\s*nsml:\s*(\S+)\s*$")


def docker_images(archive: Path) -> list[str]:
    """The ``#nsml: IMAGE`` lines of a shipped setup.py (2018: the Docker image to run in)."""
    try:
        setup = archive_member(archive, "setup.py", MAX_DECLARATION_BYTES)
    except (UnsafeFile, OSError, tarfile.TarError, EOFError):
        return []
    if setup is None:
        return []
    lines = setup.decode("utf-8", errors="replace").splitlines()
    return [m.group(1)[:200] for line in lines if (m := _IMAGE_LINE.match(line))]


def image_note(images: list[str]) -> str:
    return (
        f"setup.py names the Docker image {', '.join(images)} (#nsml:); sessions here run without "
        "Docker, in the platform's Python with the packages setup.py or requirements.txt declare"
    )


def spec_requirements(spec: RunSpec) -> list[str] | None:
    """What a run declares: already read by the server (a Ray worker's run), or read now
    from its shipped archive; a run with neither uses the platform's Python."""
    if spec.requirements is not None:
        return list(spec.requirements)
    if spec.source_archive is None:
        return None
    return declared_requirements(spec.source_archive)


ENVIRONMENT_LAYOUT = 2  # raised when how an environment is built changes: older ones are rebuilt


def environment_key(requirements: list[str]) -> str:
    platform = f"{ENVIRONMENT_LAYOUT}|{sys.version}|{sysconfig.get_paths()['purelib']}"
    return hashlib.sha256("\n".join([platform, *requirements]).encode()).hexdigest()[:16]


def ensure_environment(requirements: list[str], root: Path, log: BinaryIO) -> Path:
    """The environment's folder, building it first if no session built it before."""
    key = environment_key(requirements)
    final = root / key
    root.mkdir(parents=True, exist_ok=True)
    with (root / f"{key}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # one build per key; the others wait, then reuse
        if (final / "ready").exists():
            _say(log, f"reusing environment {key} ({len(requirements)} requirements)")
            os.utime(final / "ready")  # last used now: the janitor removes long-unused ones
            return final
        _say(log, f"building environment {key}: {', '.join(requirements) or 'no packages'}")
        staging = root / f"{key}.building"
        shutil.rmtree(staging, ignore_errors=True)
        try:
            subprocess.run([sys.executable, "-m", "venv", str(staging)], check=True, capture_output=True)
            site = next((staging / "lib").glob("python*/site-packages"))
            # an ``import`` line, not a plain path: site.addsitedir also runs the platform's own
            # .pth files (an editable install of nsml among them), after the environment's own
            platform = sysconfig.get_paths()["purelib"]
            (site / "_nsml_platform.pth").write_text(f"import site; site.addsitedir({platform!r})\n")
            if requirements:
                (staging / "requirements.txt").write_text("\n".join(requirements) + "\n")
                _pip(staging, log)
            (staging / "ready").write_text("ok\n")
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        _say(log, f"environment {key} ready")
        return final


def _pip(env: Path, log: BinaryIO) -> None:
    command = [
        str(env / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check",
        "--progress-bar", "off", "--only-binary=:all:", "-r", str(env / "requirements.txt"),
    ]  # fmt: skip
    # wheels only (no package build code runs here), in the environment's own folder
    process = subprocess.Popen(command, cwd=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    assert process.stdout is not None
    tail: list[str] = []
    for raw in process.stdout:  # pip's progress goes to the session log as it happens
        log.write(raw)
        line = raw.decode(errors="replace").strip()
        if line and not line.startswith("WARNING: Location"):
            tail = (tail + [line])[-PIP_TAIL_LINES:]
    if process.wait() != 0:
        errors = [line for line in tail if line.startswith("ERROR")] or tail
        raise EnvironmentFailed("installing the requirements failed: " + " | ".join(errors[-3:]))


def _say(log: BinaryIO, message: str) -> None:
    log.write(f"[nsml] {message}\n".encode())
