"""memo, command, pull, download, diff and `model rm` with wildcards, through the real CLI.

`download` reads the session's work dir, which the session writes: the links, FIFO and
hard link it plants there must be skipped, their targets never sent.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Iterator

import httpx
import pytest

from conftest import Platform, running_platform

CANARY = "canary-d41f0a9b"

WRITER = """
    import argparse, os, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--lr", type=float, default=0.1)
    parser.add_argument("--home", default="")
    parser.add_argument("--iteration", default="")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--mode", default="train")
    config = parser.parse_args()
    nsml.bind(save=lambda d, **k: open(os.path.join(d, "w.txt"), "w").write(str(config.lr)),
              load=lambda d, **k: None, infer=lambda data, **k: [(0.5, 1) for _ in data])
    os.makedirs("output/plots", exist_ok=True)
    with open("output/result.txt", "w") as handle:
        handle.write(f"lr={config.lr}\\n")
    open("output/plots/curve.csv", "w").write("0,1\\n")
    with open("notes.txt", "a") as handle:
        handle.write("appended by the session\\n")
    if config.home:  # what a hostile session plants for the server to read
        os.symlink("/etc/shadow", "output/shadow")
        os.symlink(os.path.join(config.home, "server.json"), "output/server.json")
        os.symlink(config.home, "output/home")
        os.symlink("/etc", "etc_link")
        os.mkfifo("output/pipe")
        os.link("output/result.txt", "output/hardlink.txt")
    for step in range(3):
        nsml.report(summary=True, step=step, train__loss=1.0 / (step + 1) * config.lr, acc=0.5 + step / 10)
        nsml.save(step)
    print("done", flush=True)
"""


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with running_platform(tmp_path_factory, "session_commands", NSML_TEST_CANARY=CANARY) as instance:
        yield instance


@pytest.fixture(scope="module")
def sessions(platform: Platform) -> dict[str, str]:
    """Two finished sessions from slightly different sources and arguments."""
    folder = platform.project(
        "writer", WRITER, **{"helper.py": "X = 1\n", "notes.txt": "shipped\n", "data/raw.csv": "1\n"}
    )
    (folder / ".nsmlignore").write_text("data/\n")
    first = platform.run(folder, args="--lr 0.1", message="baseline")
    (folder / "helper.py").write_text("X = 2\n")
    (folder / "extra.py").write_text("print('new')\n")
    second = platform.run(folder, args=f"--lr 0.5 --home {platform.home}")
    for name in (first, second):
        ended = platform.wait(name, timeout=120)
        assert ended["status"] == "exited", platform.nsml("logs", name).stdout
    return {"first": first, "second": second}


def test_memo_sets_the_description_ps_shows(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    assert platform.session(name)["description"] == "baseline"
    assert "Memo of" in platform.nsml("memo", name, "lr  sweep\nbest so far").stdout
    assert platform.session(name)["description"] == "lr sweep best so far"
    assert "lr sweep best so far" in platform.nsml("ps", "-a").stdout
    assert platform.json("memo", name, "")["description"] == ""
    too_long = platform.nsml("memo", name, "x" * 1001, check=False)
    assert too_long.returncode == 1 and "at most 1000" in too_long.stderr
    assert "Traceback" not in too_long.stderr
    missing = platform.nsml("memo", "demo_kin/999", "x", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_only_the_owner_sets_a_memo(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    admin = platform.server_info()
    platform.nsml("admin", "user", "add", "mallory", "--password-stdin", input="correct horse battery\n")
    login = httpx.post(
        admin["url"] + "/api/v1/auth/login", json={"name": "mallory", "password": "correct horse battery"}
    )
    token = login.json()["token"]
    url = f"{admin['url']}/api/v1/sessions/{name}"
    with httpx.Client(headers={"Authorization": f"Bearer {token}"}, timeout=30) as other:
        assert other.patch(url, json={"description": "pwned"}).status_code == 404
        assert other.get(url + "/source").status_code == 404
        assert other.get(url + "/outputs").status_code == 404
    assert platform.session(name)["description"] != "pwned"


def test_command_shows_how_it_was_launched(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    info = platform.json("command", name)
    assert info["entry"] == "main.py" and info["args"] == ["--lr", "0.1"] and info["dataset"] == "demo_kin"
    assert info["command"].startswith("nsml run -d demo_kin -e main.py -a '--lr 0.1'")
    text = platform.nsml("command", name).stdout
    assert "nsml run -d demo_kin -e main.py -a '--lr 0.1'" in text and "server default" in text


def test_pull_unpacks_the_source_as_shipped(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    target = platform.workdir / "pulled"
    platform.nsml("pull", name, str(target))
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == [
        "helper.py",
        "main.py",
        "notes.txt",
    ]  # data/ was in .nsmlignore; notes.txt as shipped, not as the session left it
    assert (target / "notes.txt").read_text() == "shipped\n"
    assert (target / "helper.py").read_text() == "X = 1\n"
    again = platform.nsml("pull", name, str(target), check=False)
    assert again.returncode == 1 and "not empty" in again.stderr
    default = platform.nsml("pull", name, cwd=platform.workdir)
    owner, dataset, number = name.split("/")
    assert (platform.workdir / f"{owner}_{dataset}_{number}" / "main.py").is_file(), default.stdout


def test_download_fetches_what_the_session_wrote(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    target = platform.workdir / "out_first"
    platform.nsml("download", name, str(target))
    files = sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file())
    assert files == ["notes.txt", "output/plots/curve.csv", "output/result.txt"]
    assert (target / "output" / "result.txt").read_text() == "lr=0.1\n"
    only = platform.workdir / "out_plots"
    platform.nsml("download", name, str(only), "-s", "output/plots")
    assert [p.name for p in only.rglob("*") if p.is_file()] == ["curve.csv"]
    for bad in ("../..", "/etc", "output/../../x"):
        refused = platform.nsml("download", name, str(platform.workdir / "x"), "-s", bad, check=False)
        assert refused.returncode == 1 and "relative" in refused.stderr, refused.stderr
    nothing = platform.nsml("download", name, str(platform.workdir / "y"), "-s", "nope", check=False)
    assert nothing.returncode == 1 and "no file under" in nothing.stderr


def test_download_never_follows_what_the_session_planted(
    platform: Platform, sessions: dict[str, str]
) -> None:
    name = sessions["second"]
    info = platform.server_info()
    planted = list(platform.home.glob("sessions/*/work/output/server.json"))
    assert planted and planted[0].is_symlink()  # the session did plant its links
    assert list(platform.home.glob("sessions/*/work/output/pipe"))
    response = httpx.get(
        f"{info['url']}/api/v1/sessions/{name}/outputs",
        headers={"Authorization": f"Bearer {info['token']}"},
        timeout=60,
    )
    assert response.status_code == 200
    with tarfile.open(fileobj=io.BytesIO(response.content), mode="r:gz") as tar:
        members = {m.name: m for m in tar.getmembers()}
        contents = b"".join(tar.extractfile(m).read() for m in members.values() if m.isfile())  # type: ignore[union-attr]
    assert all(m.isfile() for m in members.values())
    assert set(members) == {"notes.txt", "output/plots/curve.csv"}, sorted(members)
    assert info["token"].encode() not in contents and CANARY.encode() not in contents
    assert b"root:" not in contents
    target = platform.workdir / "out_second"
    shown = platform.nsml("download", name, str(target))
    assert not any(p.is_symlink() for p in target.rglob("*"))
    assert info["token"] not in shown.stdout + shown.stderr


def test_download_a_checkpoint(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["first"]
    target = platform.workdir / "ckpt"
    platform.nsml("download", name, str(target), "--checkpoint", "2")
    assert (target / "w.txt").read_text() == "0.1"
    missing = platform.nsml("download", name, str(platform.workdir / "z"), "--checkpoint", "9", check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr


def test_diff_shows_arguments_source_and_metrics(platform: Platform, sessions: dict[str, str]) -> None:
    first, second = sessions["first"], sessions["second"]
    result = platform.json("diff", first, second)
    assert result["sessions"] == [first, second]
    assert result["arguments"]["args"][0] == ["--lr", "0.1"]
    assert result["arguments"]["args"][1][:2] == ["--lr", "0.5"]
    assert result["source"]["changed"] == ["helper.py"] and result["source"]["added"] == ["extra.py"]
    assert "-X = 1\n+X = 2\n" in result["source"]["diff"]
    assert "+++ b/extra.py" in result["source"]["diff"]
    loss = result["metrics"]["train/loss"]
    assert loss[0] == pytest.approx(0.1 / 3) and loss[1] == pytest.approx(0.5 / 3)
    text = platform.nsml("diff", first, second).stdout
    assert "train/loss" in text and "-X = 1" in text and "* args" in text
    same = platform.nsml("diff", first, first).stdout
    assert "identical" in same
    bad = platform.nsml("diff", first, "nope", check=False)
    assert bad.returncode == 1 and "Traceback" not in bad.stderr


def test_model_rm_takes_wildcards_and_asks_first(platform: Platform, sessions: dict[str, str]) -> None:
    name = sessions["second"]
    assert [c["name"] for c in platform.json("model", "ls", name)] == ["0", "1", "2"]
    asked = platform.nsml("model", "rm", name, "[01]", check=False)
    assert asked.returncode == 1 and "would remove checkpoints 0, 1" in asked.stderr
    assert len(platform.json("model", "ls", name)) == 3
    declined = platform.nsml("model", "rm", name, "*", check=False, input="n\n")
    assert declined.returncode == 1
    removed = platform.nsml("model", "rm", name, "?", "-y").stdout
    assert removed.count("removed") == 3
    assert platform.json("model", "ls", name) == []
    none = platform.nsml("model", "rm", name, "*", "-y", check=False)
    assert none.returncode == 1 and "not found" in none.stderr


def test_the_json_of_command_is_parseable(platform: Platform, sessions: dict[str, str]) -> None:
    assert json.loads(platform.nsml("command", sessions["second"], "--json").stdout)["gpus"] == 0


BIG_WRITER = """
    import os
    os.makedirs("output", exist_ok=True)
    with open("output/big.bin", "wb") as handle:
        handle.write(os.urandom(2 * 1024 * 1024))
    open("output/small.txt", "w").write("ok")
"""


def test_download_is_bounded(tmp_path_factory: pytest.TempPathFactory) -> None:
    with running_platform(tmp_path_factory, "download_bound", NSML_MAX_DOWNLOAD_MB="1") as platform:
        name = platform.run(platform.project("big", BIG_WRITER))
        assert platform.wait(name, timeout=120)["status"] == "exited"
        refused = platform.nsml("download", name, str(platform.workdir / "all"), check=False)
        assert refused.returncode == 1 and "over 1 MiB" in refused.stderr, refused.stderr
        assert "Traceback" not in refused.stderr and not (platform.workdir / "all").exists()
        platform.nsml("download", name, str(platform.workdir / "small"), "-s", "output/small.txt")
        assert (platform.workdir / "small" / "output" / "small.txt").read_text() == "ok"
