"""Sessions that declare requirements run in a virtual environment built once and reused."""

from __future__ import annotations

from conftest import Platform

USES_TABULATE = """
    import importlib.metadata, sys
    import nsml  # the platform's SDK, an editable install among its packages
    import tabulate
    print("TABULATE", tabulate.__version__, flush=True)
    print("TORCH", importlib.metadata.version("torch"), flush=True)  # the platform's own, not reinstalled
    print("PREFIX", sys.prefix, flush=True)
"""


def test_environment_is_built_once_and_reused(platform: Platform) -> None:
    first_folder = platform.project("env_a", USES_TABULATE, **{"requirements.txt": "tabulate  # tables\n"})
    second_folder = platform.project("env_b", USES_TABULATE, **{"requirements.txt": "\ntabulate\n"})
    first = platform.run(first_folder)
    assert platform.wait(first, timeout=300)["status"] == "exited", platform.nsml("logs", first).stdout
    first_log = platform.nsml("logs", first).stdout
    assert "[nsml] building environment" in first_log and "TABULATE " in first_log
    assert "Successfully installed tabulate" in first_log  # pip's own progress, in the session log
    assert first_log.index("Successfully installed") < first_log.index("TABULATE ")
    assert "TORCH 2." in first_log
    assert "No module named" not in first_log

    second = platform.run(second_folder)
    assert platform.wait(second, timeout=300)["status"] == "exited"
    second_log = platform.nsml("logs", second).stdout
    assert "[nsml] reusing environment" in second_log and "building environment" not in second_log
    prefix = [line for line in first_log.splitlines() if line.startswith("PREFIX")]
    assert prefix == [line for line in second_log.splitlines() if line.startswith("PREFIX")]
    assert len(list((platform.home / "envs").glob("*/ready"))) == 1


def test_setup_py_install_requires_is_honoured(platform: Platform) -> None:
    setup = "from setuptools import setup\nsetup(name='x', install_requires=['tabulate'])\n"
    folder = platform.project("env_setup", USES_TABULATE, **{"setup.py": setup})
    name = platform.run(folder)
    assert platform.wait(name, timeout=300)["status"] == "exited", platform.nsml("logs", name).stdout
    assert "[nsml] reusing environment" in platform.nsml("logs", name).stdout


def test_a_failed_install_fails_the_session_with_pips_message(platform: Platform) -> None:
    requirements = {"requirements.txt": "nsml-no-such-package-for-tests==0.0.1\n"}
    folder = platform.project("env_broken", USES_TABULATE, **requirements)
    name = platform.run(folder)
    session = platform.wait(name, timeout=300)
    assert session["status"] == "failed"
    assert "installing the requirements failed" in session["reason"]
    assert "No matching distribution found" in session["reason"] or "ERROR" in session["reason"]
    assert "TABULATE" not in platform.nsml("logs", name).stdout


def test_requirements_cannot_reach_outside_plain_package_names(platform: Platform) -> None:
    for line in (
        "-r ../../server.json",
        "./local_package",
        "git+https://example.invalid/x.git",
        "x @ file:///etc",
    ):
        folder = platform.project("env_sneaky", USES_TABULATE, **{"requirements.txt": line + "\n"})
        name = platform.run(folder)
        session = platform.wait(name, timeout=120)
        assert session["status"] == "failed" and "is not allowed" in session["reason"], (line, session)
        log = platform.nsml("logs", name).stdout
        assert platform.server_info()["token"] not in log
