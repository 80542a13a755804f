"""The 2018 loop end to end, through the real CLI and a real server."""

from __future__ import annotations

import json
import stat

from conftest import TRAIN_2018, Platform


def test_dataset_ls_lists_the_demo_datasets(platform: Platform) -> None:
    datasets = {d["name"]: d for d in platform.json("dataset", "ls")}
    assert datasets["demo_kin"]["metric"] == "accuracy"
    assert datasets["demo_movie"]["metric"] == "mse"
    assert datasets["demo_kin"]["train_size"] >= 100 and datasets["demo_kin"]["test_size"] > 0
    table = platform.nsml("dataset", "ls").stdout
    assert "demo_kin" in table and "demo_movie" in table
    assert [d["name"] for d in platform.json("dataset", "search", "movie")] == ["demo_movie"]
    assert platform.json("dataset", "search", "demo_*") != []
    assert platform.json("dataset", "search", "nothing-like-this") == []


def test_server_file_is_private_and_token_is_required(platform: Platform) -> None:
    import httpx

    platform.nsml("dataset", "ls")
    info = platform.server_info()
    mode = stat.S_IMODE((platform.home / "server.json").stat().st_mode)
    assert mode == 0o600
    assert info["url"].startswith("http://127.0.0.1:")
    assert httpx.get(info["url"] + "/api/v1/datasets").status_code == 401
    wrong = {"Authorization": "Bearer not-the-token"}
    assert httpx.get(info["url"] + "/api/v1/datasets", headers=wrong).status_code == 401
    right = {"Authorization": f"Bearer {info['token']}"}
    assert httpx.get(info["url"] + "/api/v1/datasets", headers=right).status_code == 200


SUMMARY_THEN_STEPS = """
    import nsml
    nsml.bind(save=lambda d, **k: open(d + "/w", "w").write("w"))
    for epoch in range(2):
        nsml.report(summary=True, step=epoch, epoch=epoch, valid__acc=0.5 + epoch / 10)
        for batch in range(3):
            nsml.report(step=epoch * 100 + batch, train__loss=1.0 / (batch + 1))
        nsml.save(epoch)
"""


def test_checkpoints_and_ps_show_the_latest_summary_report(platform: Platform) -> None:
    name = platform.run(platform.project("summaries", SUMMARY_THEN_STEPS))
    assert platform.wait(name)["status"] == "exited"
    assert platform.session(name)["summary"] == {"step": 1, "epoch": 1, "valid/acc": 0.6}
    checkpoints = platform.json("model", "ls", name)
    assert [c["summary"] for c in checkpoints] == [
        {"step": 0, "epoch": 0, "valid/acc": 0.5},
        {"step": 1, "epoch": 1, "valid/acc": 0.6},
    ]
    assert "valid/acc" in platform.nsml("model", "ls", name).stdout


def test_cpus_set_the_thread_count_and_are_checked(platform: Platform) -> None:
    import os

    folder = platform.project("threads", "import os\nprint('THREADS', os.environ.get('OMP_NUM_THREADS'))\n")
    name = platform.json("run", "-d", "demo_kin", "-c", "1", cwd=folder)["name"]
    assert platform.wait(name)["status"] == "exited" and platform.session(name)["cpus"] == 1
    assert "THREADS 1" in platform.nsml("logs", name).stdout
    too_many = os.cpu_count() or 1
    refused = platform.nsml("run", "-d", "demo_kin", "-c", str(too_many + 1), cwd=folder, check=False)
    assert refused.returncode == 1
    assert (
        f"this server has at most {too_many} CPUs, so -c {too_many + 1} could never start" in refused.stderr
    )
    negative = platform.nsml("run", "-d", "demo_kin", "-c", "-1", cwd=folder, check=False)
    assert negative.returncode != 0 and "-1" in negative.stderr


def test_full_loop_run_logs_ps_model_ls(platform: Platform) -> None:
    folder = platform.project("loop", TRAIN_2018)
    result = platform.nsml(
        "run", "-d", "demo_kin", "-e", "main.py", "-a", "--epochs 3", "-m", "first try", cwd=folder
    )
    line = result.stdout.strip()
    assert line.startswith("Session ") and line.endswith(" started.")
    name = line.split()[1]
    owner, dataset, number = name.split("/")
    assert dataset == "demo_kin" and number.isdigit()

    log = platform.nsml("logs", "-f", name).stdout
    assert "training on 140 examples; test visible: False" in log
    assert "epoch 2 done" in log
    assert "[nsml] session exited" in log

    session = platform.session(name)
    assert session["status"] == "exited" and session["exit_code"] == 0
    assert session["args"] == ["--epochs", "3"]
    assert session["description"] == "first try"
    assert session["summary"] == {"step": 2, "epoch": 2, "train/loss": 1.0 / 3}
    table = platform.nsml("ps", "-a").stdout
    for column in ("Name", "Created", "Args", "Status", "Summary", "Description"):
        assert column in table
    assert name in table and "Exited (0)" in table and "first try" in table
    assert name not in platform.nsml("ps").stdout  # plain ps shows running sessions only

    checkpoints = platform.json("model", "ls", name)
    assert [c["name"] for c in checkpoints] == ["0", "1", "2"]
    assert [c["summary"]["train/loss"] for c in checkpoints] == [1.0, 0.5, 1.0 / 3]
    assert all(c["elapsed_s"] is not None and c["size_bytes"] > 0 for c in checkpoints)
    table = platform.nsml("model", "ls", name).stdout
    for column in ("Checkpoint", "Last Modified", "Elapsed", "Summary"):
        assert column in table

    short = f"{dataset}/{number}"  # one's own session without the owner
    assert platform.nsml("logs", short).stdout == log


def test_ps_filters_by_dataset_and_count(platform: Platform) -> None:
    folder = platform.project("filters", TRAIN_2018)
    kin = platform.run(folder, "demo_kin", "--epochs 1")
    movie = platform.run(folder, "demo_movie", "--epochs 1")
    platform.wait(kin), platform.wait(movie)
    assert {s["dataset"] for s in platform.json("ps", "-a", "-d", "demo_movie")} == {"demo_movie"}
    newest = platform.json("ps", "-a", "-n", "1")
    assert [s["name"] for s in newest] == [movie]


def test_stop_a_running_session(platform: Platform) -> None:
    folder = platform.project("stoppable", TRAIN_2018)
    name = platform.run(folder, args="--epochs 1000 --sleep 0.2")
    platform.wait(name, ("running",))
    assert name in platform.nsml("ps").stdout
    result = platform.nsml("stop", name)
    assert "stopped" in result.stdout
    session = platform.session(name)
    assert session["status"] == "stopped"
    assert "Stopped" in platform.nsml("ps", "-a").stdout
    again = platform.nsml("stop", name, check=False)
    assert again.returncode != 0 and "not running" in again.stderr


def test_rm_with_wildcards(platform: Platform) -> None:
    folder = platform.project("removable", TRAIN_2018)
    names = [platform.run(folder, "demo_movie", "--epochs 1") for _ in range(3)]
    for name in names:
        platform.wait(name)
    owner, dataset, _ = names[0].split("/")
    # without -y and without a terminal, nothing is removed
    refused = platform.nsml("rm", f"{owner}/{dataset}/*", check=False)
    assert refused.returncode != 0 and "-y" in refused.stderr
    assert all(platform.session(n) for n in names)

    result = platform.nsml("rm", f"{owner}/{dataset}/*", "-y")
    assert all(f"Session {n} removed." in result.stdout for n in names)
    remaining = {s["name"] for s in platform.json("ps", "-a")}
    assert not set(names) & remaining
    assert any(n.startswith(f"{owner}/demo_kin/") for n in remaining)  # other datasets kept

    nothing = platform.nsml("rm", f"{owner}/{dataset}/*", "-y", check=False)
    assert nothing.returncode == 1
    assert "no session matches" in nothing.stderr


def test_rm_question_mark_matches_one_character(platform: Platform) -> None:
    folder = platform.project("qmark", TRAIN_2018)
    name = platform.run(folder, "demo_kin", "--epochs 1")
    platform.wait(name)
    prefix, number = name.rsplit("/", 1)
    other = platform.run(folder, "demo_kin", "--epochs 1")
    platform.wait(other)
    pattern = prefix + "/" + "?" * len(number)
    targets = [
        s["name"]
        for s in platform.json("ps", "-a", "-d", "demo_kin")
        if len(s["name"].rsplit("/", 1)[1]) == len(number)
    ]
    result = platform.nsml("rm", pattern, "-y")
    assert result.stdout.count("removed") == len(targets)
    assert name not in {s["name"] for s in platform.json("ps", "-a")}


def test_session_numbers_are_never_reused(platform: Platform) -> None:
    folder = platform.project("numbers", TRAIN_2018)
    first = platform.run(folder, "demo_kin", "--epochs 1")
    platform.wait(first)
    platform.nsml("rm", first, "-y")
    second = platform.run(folder, "demo_kin", "--epochs 1")
    assert int(second.rsplit("/", 1)[1]) == int(first.rsplit("/", 1)[1]) + 1
    platform.wait(second)


def test_json_outputs_are_machine_readable(platform: Platform) -> None:
    for command in (("ps", "-a"), ("dataset", "ls"), ("server", "status")):
        json.loads(platform.nsml(*command, "--json").stdout)


def test_korean_output_and_long_logs_come_back_whole(platform: Platform) -> None:
    script = """
        import nsml
        print("재즈란 뭔가요?", flush=True)
        for index in range(30000):
            print(f"line {index:05d} " + "가" * 40)
        print("끝", flush=True)
    """
    name = platform.run(platform.project("korean", script))
    platform.wait(name)
    log = platform.nsml("logs", name).stdout
    assert log.startswith("재즈란 뭔가요?\n")
    assert "line 29999" in log and "끝\n" in log
    assert len(log.encode()) > 3 * 1024 * 1024  # more than one page of the logs API


def test_rm_stops_a_running_session_first(platform: Platform) -> None:
    folder = platform.project("rm_running", TRAIN_2018)
    name = platform.run(folder, args="--epochs 1000 --sleep 0.2")
    platform.wait(name, ("running",))
    result = platform.nsml("rm", name, "-y")
    assert f"Session {name} removed." in result.stdout
    assert name not in {s["name"] for s in platform.json("ps", "-a")}
    missing = platform.nsml("logs", name, check=False)
    assert missing.returncode == 1 and "not found" in missing.stderr
