"""The server never reads, with its own privileges, what a session can write.

A session may leave links in its work dir to files only the server can read. Requirements
come from the archive as shipped, and no file's content is repeated in a log or reason.
"""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from conftest import Platform, running_platform
from nsml.runners.environments import EnvironmentFailed, declared_requirements

CANARY = "canary-3f1b0c7e9a"

PLANTS_LINKS = """
    import argparse, os, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--target")
    parser.add_argument("--iteration", default="")
    config, _ = parser.parse_known_args()
    nsml.bind(save=lambda d, **k: open(os.path.join(d, "w"), "w").write("1"),
              load=lambda d, **k: None, infer=lambda data, **k: [(0.5, 1) for _ in data])
    if config.iteration:
        print("RESUMED from", config.iteration, flush=True)
    else:
        os.symlink(config.target, "requirements.txt")
        os.symlink(config.target, "setup.py")
        nsml.save("first")
"""


@pytest.fixture(scope="module")
def canary_platform(tmp_path_factory: pytest.TempPathFactory) -> Platform:
    with running_platform(tmp_path_factory, "session_files", NSML_TEST_CANARY=CANARY) as instance:
        yield instance  # type: ignore[misc]


@pytest.mark.parametrize("target", ["server.json", "/proc/self/environ"])
def test_resume_never_reads_a_link_the_session_planted(canary_platform: Platform, target: str) -> None:
    platform = canary_platform
    folder = platform.project(f"links_{target.count('/')}", PLANTS_LINKS)
    platform.nsml("ps")  # starts the server, so server.json exists
    path = str(platform.home / target) if not target.startswith("/") else target
    name = platform.run(folder, args=f"--target {path}")
    assert platform.wait(name)["status"] == "exited", platform.nsml("logs", name).stdout
    platform.nsml("resume", name)
    session = platform.wait(name, timeout=120)
    log = platform.nsml("logs", name).stdout
    listing = platform.nsml("ps", "-a", "--json").stdout + platform.nsml("model", "ls", name).stdout
    token = platform.server_info()["token"]
    for shown in (log, listing, session.get("reason") or ""):
        assert token not in shown
        assert CANARY not in shown and "NSML_HOME=" not in shown and '"url"' not in shown
    # the shipped source declares no requirements, so the session simply runs again
    assert session["status"] == "exited", (session, log)
    assert "RESUMED from first" in log


def _archive(tmp_path: Path, members: dict[str, bytes | str]) -> Path:
    """A tar.gz with regular members (bytes) and links (str: the link's target)."""
    path = tmp_path / "code.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        for name, content in members.items():
            info = tarfile.TarInfo(name)
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return path


def test_requirements_come_from_regular_archive_members_only(tmp_path: Path) -> None:
    assert declared_requirements(_archive(tmp_path, {"main.py": b"print(1)\n"})) is None
    listed = _archive(tmp_path, {"./requirements.txt": b"tabulate\n# note\nsix==1.16.0\n"})
    assert declared_requirements(listed) == ["six==1.16.0", "tabulate"]
    with pytest.raises(EnvironmentFailed, match="link or not a plain file") as linked:
        declared_requirements(_archive(tmp_path, {"requirements.txt": "/proc/self/environ"}))
    assert "environ" not in str(linked.value)
    with pytest.raises(EnvironmentFailed, match="over 256 KiB"):
        declared_requirements(_archive(tmp_path, {"requirements.txt": b"x\n" * 200_000}))


def test_a_bad_requirement_line_is_named_by_number_not_repeated(tmp_path: Path) -> None:
    secret = '{"token": "s3cret"}'
    archive = _archive(tmp_path, {"requirements.txt": f"tabulate\n{secret}\n".encode()})
    with pytest.raises(EnvironmentFailed) as refused:
        declared_requirements(archive)
    message = str(refused.value)
    assert "requirements.txt line 2 is not allowed" in message and "\n" not in message
    assert "s3cret" not in message and "token" not in message
    setup = b"from setuptools import setup\nsetup(install_requires=['ok', '-e /etc'])\n"
    with pytest.raises(EnvironmentFailed, match="setup.py install_requires item 2 is not allowed"):
        declared_requirements(_archive(tmp_path, {"setup.py": setup}))


def test_a_work_dir_travels_without_its_links(tmp_path: Path) -> None:
    """What the Ray runner ships of a session's work dir: folders and plain files only."""
    import os

    from nsml.artifacts.safe_io import pack_tree

    work = tmp_path / "work"
    (work / "sub").mkdir(parents=True)
    (work / "main.py").write_text("print(1)\n")
    (work / "sub" / "weights.bin").write_bytes(b"\0" * 10)
    (work / "requirements.txt").symlink_to("/proc/self/environ")
    (work / "etc").symlink_to("/etc")
    os.mkfifo(work / "pipe")
    with tarfile.open(fileobj=io.BytesIO(pack_tree(work))) as tar:
        members = {m.name: m for m in tar}
    assert sorted(members) == ["main.py", "sub", "sub/weights.bin"]
    assert members["sub"].isdir() and members["sub/weights.bin"].size == 10
