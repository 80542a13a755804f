"""The web UI in a real browser (Debian's Chromium through Playwright) on a real server."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from conftest import ROOT, Platform, chromium, running_platform, second_user
from nsml.client.api import ApiClient
from nsml.sizes import human_size

OUTPUT = ROOT / "test-output" / "web"

SCRIPT = """
    import argparse, hashlib, json, os, time, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--rule", default="ones")
    parser.add_argument("--lr", type=float, default=1.0)
    parser.add_argument("--fail", type=int, default=0)
    parser.add_argument("--slow", type=float, default=0)  # seconds infer takes: a submission that waits
    config = parser.parse_args()
    ORACLE = json.load(open("oracle.json")) if os.path.exists("oracle.json") else {}

    def predict(text):
        if config.rule == "ones":
            return 1
        if config.rule == "oracle":  # knows the (public) demo labels: a perfect score
            return ORACLE.get(text, 0)
        return int(hashlib.md5(text.encode()).hexdigest(), 16) % 2

    nsml.bind(save=lambda d, **k: open(os.path.join(d, "m"), "w").write("1"),
              load=lambda d, **k: None,
              infer=lambda data, **k: time.sleep(config.slow) or [(0.5, predict(t)) for t in data])
    if config.pause:
        nsml.paused(scope=locals())
    for step in range(5):
        print(f"학습 단계 {step}", flush=True)
        nsml.report(summary=True, step=step, train__loss=config.lr / (step + 1),
                    valid__accuracy=0.5 + 0.1 * step, seen=float(100 * (step + 1)))
        nsml.save(step)
    if config.fail:
        raise ValueError("validation loss diverged")
"""

DESCRIPTION = "**Predict** pairs. <script>window.xss = 1</script><img src=x onerror='window.xss = 2'>"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    """One evaluation at a time per user, so a second submission waits in the queue."""
    with running_platform(tmp_path_factory, "web", NSML_MAX_EVALUATIONS_PER_USER="1") as instance:
        yield instance


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as instance:
        yield instance


def _page(browser: Any, link: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ko-KR")
    page = context.new_page()
    page.goto(link)
    return page


@contextmanager
def signed_in(browser: Any, client: Platform) -> Iterator[Any]:
    """A browser context holding ``client``'s sign-in cookie: one sign-in per user per module."""
    page = _page(browser, _sign_in_link(client))
    try:
        yield page.context
    finally:
        page.context.close()


def _as(context: Any, address: str) -> Any:
    page = context.new_page()
    page.goto(address)
    return page


def _sign_in_link(client: Platform) -> str:
    return str(
        client.nsml("web", "--no-browser").stdout.split("link (one use, valid for 5 minutes): ")[1].strip()
    )


@pytest.fixture(scope="module")
def world(
    platform: Platform, browser: Any, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Any]]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    bob = second_user(platform, "bob", tmp_path_factory.mktemp("bob"))
    url = platform.server_info()["url"]
    mine = platform.run(platform.project("web_ones", SCRIPT), "demo_kin", "--rule ones --lr 1.0")
    theirs = bob.run(bob.project("web_rule", SCRIPT), "demo_kin", "--rule hash")
    # trains too, on a smaller rate, then fails; runs while the first tests do (see `_ended`)
    slower = platform.run(platform.project("web_slow", SCRIPT), "demo_kin", "--rule ones --lr 0.5 --fail 1")
    cup = tmp_path_factory.mktemp("webcup")
    for part, data, labels in (("train", "a\tb\nc\td\n", "1\n0\n"), ("test", "x\ty\nz\tw\n", "1\n0\n")):
        (cup / part).mkdir()
        (cup / part / f"{part}_data").write_text(data)
        (cup / part / f"{part}_label").write_text(labels)
    platform.nsml("dataset", "push", "webcup", str(cup), "--description", DESCRIPTION)
    # two rounds: a live one running from now on, a blind final the organiser starts
    for phase, labels in (("prelim", "0\n" * 4), ("final", "0\n1\n0\n1\n")):
        (cup / phase / "test").mkdir(parents=True)
        (cup / phase / "test" / "test_data").write_text("".join(f"{phase} {i}\tq{i}\n" for i in range(4)))
        (cup / phase / "test" / "test_label").write_text(labels)
    platform.nsml("phase", "add", "webcup", "prelim", "--test", str(cup / "prelim"))
    ends = ("--ends", "2099-01-01T00:00")
    platform.nsml("phase", "add", "webcup", "final", "--test", str(cup / "final"), "--blind", *ends)
    cup_runs = {
        "cup_mine": platform.run(platform.project("cup_ones", SCRIPT), "webcup", "--rule ones"),
        "cup_theirs": bob.run(bob.project("cup_hash", SCRIPT), "webcup", "--rule hash"),
        "cup_slow": platform.run(platform.project("cup_slow", SCRIPT), "webcup", "--rule ones --slow 60"),
    }
    platform.wait(mine)
    bob.wait(theirs)
    with signed_in(browser, platform) as as_root, signed_in(browser, bob) as as_bob:
        yield {
            "platform": platform, "bob": bob, "url": url, "mine": mine, "slower": slower, "theirs": theirs,
            "root": as_root, "as_bob": as_bob, **cup_runs,
        }  # fmt: skip


def _ended(world: dict[str, Any], name: str) -> str:
    world["platform"].wait(name)
    return name


def _board_rows(page: Any) -> list[tuple[str, str]]:
    page.wait_for_selector("#board tbody tr td")
    return [
        (row.get_attribute("data-owner"), row.query_selector_all("td")[2].inner_text())
        for row in page.query_selector_all("#board tbody tr")
    ]


def test_competition_board_matches_the_cli_and_updates_live(browser: Any, world: dict[str, Any]) -> None:
    platform, bob = world["platform"], world["bob"]
    platform.nsml("submit", world["mine"], "4")
    page = _as(world["root"], world["url"] + "/boards/demo_kin")  # the old address leads to the competition
    assert page.url.endswith("/competitions/demo_kin")
    assert [owner for owner, _ in _board_rows(page)] == ["root"]
    headings = [th.inner_text() for th in page.query_selector_all("#board thead th")]
    assert headings == ["Rank", "User", "Score", "Session", "Checkpoint", "Submissions", "Submitted"]

    bob.nsml("submit", world["theirs"], "4")  # lands while the page is open
    page.wait_for_function("document.querySelectorAll('#board tbody tr').length == 2", timeout=20_000)
    cli = platform.json("board", "demo_kin")["rows"]
    shown = _board_rows(page)
    assert [owner for owner, _ in shown] == [row["owner"] for row in cli]
    for (_, score), row in zip(shown, cli, strict=True):
        assert float(score) == pytest.approx(row["score"], rel=1e-4)
    # my own row stands out, with my session; the others' are plain
    assert "mine" in page.get_attribute('#board tr[data-owner="root"]', "class")
    assert "mine" not in page.get_attribute('#board tr[data-owner="bob"]', "class")
    assert world["mine"] in page.inner_text('#board tr[data-owner="root"]')
    assert page.inner_text("#mine tbody").count("scored") == 1  # only my own history
    assert "bob" not in page.inner_text("#mine")
    assert "left today" in page.inner_text("#limits") or "no daily limit" in page.inner_text("#limits")

    # bob jumps to the top: the rows that moved since the last view are highlighted
    demo = ROOT / "src" / "nsml" / "datasets" / "demo" / "demo_kin" / "test"
    oracle = dict(
        zip(
            demo.joinpath("test_data").read_text().splitlines(),
            map(int, demo.joinpath("test_label").read_text().splitlines()),
            strict=True,
        )
    )
    perfect = bob.run(
        bob.project("web_oracle", SCRIPT, **{"oracle.json": json.dumps(oracle)}), "demo_kin", "--rule oracle"
    )
    bob.wait(perfect)
    bob.nsml("submit", perfect, "4")
    page.wait_for_function(
        "document.querySelector('#board tbody tr').dataset.owner === 'bob'", timeout=20_000
    )
    assert "moved-up" in page.get_attribute('#board tr[data-owner="bob"]', "class")
    assert "moved-down" in page.get_attribute('#board tr[data-owner="root"]', "class")
    assert "▲1" in page.inner_text('#board tr[data-owner="bob"]')


def test_description_is_markdown_and_never_runs_html(browser: Any, world: dict[str, Any]) -> None:
    page = _as(world["root"], world["url"] + "/competitions/webcup")
    assert page.inner_text("#description strong") == "Predict"
    assert "<script>window.xss = 1</script>" in page.inner_text("#description")  # shown, as text
    assert page.locator("#description script, #description img").count() == 0
    assert page.evaluate("window.xss") is None
    page.wait_for_selector("#board tbody tr", timeout=20_000)  # the board is drawn by the page's script
    assert page.inner_text("#board tbody") == "No scored submissions yet."


def test_session_page_charts_checkpoints_and_confirmed_submit(browser: Any, world: dict[str, Any]) -> None:
    platform = world["platform"]
    page = _as(world["root"], world["url"] + f"/sessions/{world['mine']}")
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('학습 단계 4')", timeout=20_000
    )
    page.wait_for_function("document.getElementById('charts').dataset.ready === '3'", timeout=20_000)
    captions = [c.inner_text() for c in page.query_selector_all("#charts figcaption")]
    assert captions == ["train/loss", "valid/accuracy", "seen"]  # every metric, curves first
    assert page.evaluate(
        "[...document.querySelectorAll('#charts canvas')].every((c) =>"
        " Chart.getChart(c).scales.x.ticks.every((t) => Number.isInteger(t.value)))"
    )
    assert "seen 500" in page.inner_text("#summary")  # a whole number reads as one

    # five checkpoints: the best (which is also the latest) shows, the rest fold away
    visible = "#checkpoints tbody tr:visible"
    assert [r.get_attribute("data-checkpoint") for r in page.query_selector_all(visible)] == ["4"]
    assert "best" in page.inner_text(visible) and "latest" in page.inner_text(visible)
    assert page.inner_text("#unfold") == "show all 5"
    page.click("#unfold")
    assert [r.get_attribute("data-checkpoint") for r in page.query_selector_all(visible)] == [
        "4", "3", "2", "1", "0",
    ]  # fmt: skip
    page.click("#unfold")
    assert page.locator(visible).count() == 1
    page.click("#unfold")

    # Submit asks first; cancelling submits nothing
    before = len(platform.json("board", "demo_kin", "--private")["submissions"])
    row = page.locator('#checkpoints tr[data-checkpoint="2"]')
    row.locator("button.submit").click()
    page.wait_for_selector("#confirm-submit[open]")
    assert "2" == page.inner_text("#confirm-checkpoint")
    page.click("#confirm-cancel")
    assert page.locator("#confirm-submit[open]").count() == 0
    assert len(platform.json("board", "demo_kin", "--private")["submissions"]) == before
    row.locator("button.submit").click()
    page.wait_for_function("document.getElementById('confirm-limits').textContent !== ''")
    page.screenshot(path=str(OUTPUT / "submit-dialog.png"))
    page.click("#confirm-ok")
    page.wait_for_selector("#result .scored", timeout=60_000)
    after = platform.json("board", "demo_kin", "--private")["submissions"]
    assert len(after) == before + 1 and after[0]["status"] == "scored" and after[0]["checkpoint"] == "2"

    # Test shows ten predictions, each question of a pair on its own line
    row.locator("button.test").click()
    page.wait_for_selector("#result table.preview", timeout=60_000)
    assert page.locator("#result table.preview tr").count() == 11
    assert page.locator("#result table.preview tr:nth-child(2) .pair-part").count() == 2
    page.click("#unfold")
    page.screenshot(path=str(OUTPUT / "session.png"), full_page=True)


def test_failed_session_shows_its_exception(browser: Any, world: dict[str, Any]) -> None:
    page = _as(world["root"], world["url"] + f"/sessions/{_ended(world, world['slower'])}")
    assert page.inner_text("#exception") == "ValueError: validation loss diverged"
    assert "exit code 1" in page.inner_text("#reason")


def test_sessions_table_sorts_filters_and_compares(browser: Any, world: dict[str, Any]) -> None:
    _ended(world, world["slower"])
    page = world["root"].new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url) if "/api/" in request.url else None)
    page.goto(world["url"] + "/sessions")
    page.wait_for_selector("#sessions tbody tr")
    assert asked == []  # the whole table comes with the page, whatever the number of sessions

    def names() -> list[str]:
        return [r.get_attribute("data-name") for r in page.query_selector_all("#sessions tbody tr:visible")]

    assert not [name for name in names() if name.startswith("bob/")]  # not bob's
    page.select_option("#filter-dataset", "demo_kin")
    assert set(names()) == {world["mine"], world["slower"]}
    headings = [th.inner_text() for th in page.query_selector_all("#sessions thead tr:last-child th")]
    assert {"lr", "rule", "train/loss", "valid/accuracy", "seen"} <= set(headings)
    assert "500" in page.inner_text(f'#sessions tr[data-name="{world["mine"]}"]')
    assert "500.0" not in page.inner_text("#sessions")

    loss = page.locator("#sessions thead th", has_text="train/loss")
    loss.click()  # ascending: the smaller loss first
    assert names() == [world["slower"], world["mine"]]
    loss.click()
    assert names() == [world["mine"], world["slower"]]

    page.fill("#filter-text", "no-such-session")
    assert page.locator("#sessions tbody tr:visible").count() == 0
    page.fill("#filter-text", "")
    page.select_option("#filter-dataset", "demo_kin")
    assert len(names()) == 2
    page.check(f'#sessions tr[data-name="{world["mine"]}"] input.pick')
    assert page.is_disabled("#compare")
    page.check(f'#sessions tr[data-name="{world["slower"]}"] input.pick')
    page.screenshot(path=str(OUTPUT / "sessions.png"), full_page=True)
    page.click("#compare")
    page.wait_for_url("**/compare?*")
    page.wait_for_function("document.getElementById('charts').dataset.ready === '3'", timeout=20_000)
    assert page.evaluate(
        "[...document.querySelectorAll('#charts canvas')].map((c) => Chart.getChart(c).data.datasets.length)"
    ) == [2, 2, 2]
    # only the argument that differs, per session
    assert [th.inner_text() for th in page.query_selector_all("#differences th")] == ["Session", "fail", "lr"]
    assert page.locator("#legend li").count() == 2
    page.screenshot(path=str(OUTPUT / "compare.png"), full_page=True)

    page.goto(world["url"] + "/datasets")
    assert "demo_movie" in page.inner_text("#datasets")
    for listed in world["platform"].json("dataset", "ls"):  # sizes read as `nsml dataset ls` has them
        if listed["name"] in ("demo_kin", "webcup"):
            size = page.inner_text(f'#datasets tr[data-name="{listed["name"]}"] td:nth-child(5)')
            assert size == human_size(listed["size_bytes"])
    page.screenshot(path=str(OUTPUT / "datasets.png"), full_page=True)


def test_error_pages_for_people_json_for_clients(browser: Any, world: dict[str, Any]) -> None:
    page = world["root"].new_page()
    response = page.goto(world["url"] + "/sessions/root/demo_kin/999")
    assert response.status == 404
    assert page.inner_text("#error-page h1") == "Not found"
    assert "root/demo_kin/999 not found" in page.inner_text("#error-detail")
    assert page.goto(world["url"] + "/competitions/no_such_cup").status == 404
    assert page.goto(world["url"] + "/no/such/page").status == 404
    assert page.inner_text("#error-detail") == "There is no page at /no/such/page."
    assert page.inner_text("#error-page h1") == "Not found"
    page.screenshot(path=str(OUTPUT / "error.png"))
    assert page.goto(world["url"] + "/sessions/root/demo_kin/first").status == 422
    assert "number" in page.inner_text("#error-detail")
    api = page.request.get(world["url"] + "/api/v1/sessions/root/demo_kin/999")
    assert api.status == 404 and "not found" in api.json()["detail"]
    bad = page.goto(world["url"] + "/compare?s=../../etc")
    assert bad.status == 400
    icon = page.request.get(world["url"] + "/favicon.ico")
    assert icon.status == 200 and icon.headers["content-type"].startswith("image/svg")


def test_organiser_desk_and_participants_refused(browser: Any, world: dict[str, Any]) -> None:
    # root: an admin organises every competition
    page = _as(world["root"], world["url"] + "/competitions/demo_kin")
    page.click("#organise-link")
    page.wait_for_selector("#submissions tbody tr[data-id]")
    owners = {r.inner_text() for r in page.query_selector_all("#submissions tbody tr td:nth-child(3)")}
    assert {"root", "bob"} <= owners  # everybody's submissions
    page.wait_for_function("document.getElementById('phases-note').textContent !== ''")
    assert page.is_disabled("#rerun")
    page.check("#submissions tbody tr[data-id] input.pick")
    assert not page.is_disabled("#rerun") and not page.is_disabled("#mark-baseline")

    participant = world["as_bob"].new_page()
    refused = participant.goto(world["url"] + "/competitions/demo_kin/organise")
    assert refused.status == 403 and participant.inner_text("#error-page h1") == "Not allowed"
    participant.goto(world["url"] + "/competitions/demo_kin")
    participant.wait_for_selector("#board tbody tr td")
    assert participant.locator("#organise-link").count() == 0
    everyone = participant.request.get(world["url"] + "/api/v1/datasets/demo_kin/submissions?all=true")
    assert everyone.status == 403  # the desk's data stays the organiser's


def test_other_users_things_are_not_reachable(browser: Any, world: dict[str, Any]) -> None:
    page = world["as_bob"].new_page()
    response = page.goto(world["url"] + f"/sessions/{world['mine']}")
    assert response.status == 404
    assert page.goto(world["url"] + f"/compare?s={world['mine']}").status == 404
    api = page.goto(world["url"] + "/api/v1/datasets/demo_kin/submissions")
    assert "root" not in api.text()
    anonymous = browser.new_context().new_page()
    anonymous.goto(world["url"] + "/sessions")
    assert anonymous.url.endswith("/login")
    link = _sign_in_link(world["platform"])
    first = browser.new_context().new_page()
    first.goto(link)
    assert first.url.endswith("/sessions")
    second = browser.new_context().new_page()
    second.goto(link)  # a link works once
    assert "/login" in second.url and "used or expired" in second.inner_text("#error")


def _until(what: Any, timeout: float = 30) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if value := what():
            return value
        time.sleep(0.2)
    raise AssertionError(f"not within {timeout} s")


def test_organiser_runs_phases_reruns_baselines_and_the_queue(browser: Any, world: dict[str, Any]) -> None:
    platform, bob, url = world["platform"], world["bob"], world["url"]
    platform.wait(world["cup_mine"])
    bob.wait(world["cup_theirs"])
    mine = platform.json("submit", world["cup_mine"], "4")
    theirs = bob.json("submit", world["cup_theirs"], "4")
    assert mine["phase"] == "prelim" and mine["public_score"] == 0.0  # ones, on labels all 0

    # bob's final selection, ticked on the competition page, is what the server keeps
    participant = _as(world["as_bob"], url + "/competitions/webcup")
    participant.wait_for_selector(f'#mine input.select[value="{theirs["id"]}"]')
    participant.check(f'#mine input.select[value="{theirs["id"]}"]')
    participant.click("#save-selection")
    participant.wait_for_function("document.getElementById('result').textContent.startsWith('Saved')")
    stored = {s["id"]: s["selected"] for s in bob.json("submission", "ls", "webcup")}
    assert stored == {theirs["id"]: True}

    # the organiser fixes the round's labels on the server and re-runs root's submission
    labels = (platform.home / "datasets" / "webcup").resolve() / "phases" / "prelim" / "test" / "test_label"
    assert labels.read_text() == "0\n" * 4
    labels.write_text("1\n" * 4)
    page = _as(world["root"], url + "/competitions/webcup/organise")
    page.on("dialog", lambda dialog: dialog.accept())
    row = f'#submissions tr[data-id="{mine["id"]}"]'
    page.check(f"{row} input.pick")
    page.click("#rerun")
    page.wait_for_function("document.getElementById('result').textContent.includes('queued')")
    page.wait_for_selector(f"{row} td.score .was", timeout=30_000)
    assert page.inner_text(f"{row} td.score").split("\n") == ["1", "was 0"]
    everyone = platform.json("submission", "ls", "webcup", "--all")
    history = next(s for s in everyone if s["id"] == mine["id"])
    assert history["public_score"] == 1.0 and history["score_history"][0]["public_score"] == 0.0

    # a baseline sits on the board tagged and unranked; bob ranks first
    page.check(f"{row} input.pick")
    page.click("#mark-baseline")
    page.wait_for_function("document.getElementById('result').textContent.includes('marked as baseline')")
    participant.reload()
    participant.wait_for_selector('#board tr[data-owner="root"].baseline')
    cells = participant.inner_text('#board tr[data-owner="root"]').split("\t")
    assert cells[0].strip() == "–" and "baseline" in cells[1]
    assert participant.inner_text('#board tr[data-owner="bob"] td').startswith("1")
    participant.wait_for_selector("#phases tr.phase-upcoming")
    participant.screenshot(path=str(OUTPUT / "competition.png"), full_page=True)

    # the next phase starts from the desk; its board is blind until it ends
    page.wait_for_selector('#phases tr[data-phase="final"]')
    assert page.inner_text("#start-next") == "Start phase final"
    page.click("#start-next")
    page.wait_for_function("document.getElementById('result').textContent === 'Phase final started.'")
    page.wait_for_selector('#phases tr[data-phase="final"] td:nth-child(5):text-is("running")')
    assert page.is_disabled("#start-next")
    participant.reload()
    participant.wait_for_selector("#board-state:has-text('blind until ')")

    # one evaluation per user: the second slow submission waits, and Cancel takes it out
    info = platform.server_info()
    platform.wait(world["cup_slow"])
    with ApiClient(info["url"], info["token"]) as api:
        running = api.submit(world["cup_slow"], "4", 64)
        _until(lambda: api.get_submission(running.id).status == "running")
        waiting = api.submit(world["cup_slow"], "3", 64)
    queued = f'#queue tr[data-kind="submission"][data-id="{waiting.id}"]'
    page.wait_for_selector(queued, timeout=10_000)
    assert "#1" in page.inner_text(queued) and "evaluation slot" in page.inner_text(queued)
    assert "held by root (1)" in page.inner_text('#slots li[data-kind="evaluation"]')
    page.screenshot(path=str(OUTPUT / "organise.png"), full_page=True)
    page.click(f"{queued} button.cancel")
    page.wait_for_selector(f"#result:has-text('Submission {waiting.id} cancelled.')")
    page.wait_for_selector(queued, state="detached", timeout=10_000)
    statuses = {s["id"]: s["status"] for s in platform.json("submission", "ls", "webcup")}
    assert statuses[waiting.id] == "cancelled"
    platform.nsml("submission", "cancel", str(running.id))  # frees the slot for the rest of the module


def test_automl_lists_the_users_studies(browser: Any, world: dict[str, Any]) -> None:
    platform = world["platform"]
    spec: dict[str, Any] = {"metric": "valid/accuracy", "direction": "maximize", "trials": 1, "parallel": 1}
    spec |= {"sampler": "random", "pruner": "none", "params": {"lr": {"type": "categorical", "choices": [1]}}}
    folder = platform.workdir / "cup_ones"
    (folder / "sweep.yaml").write_text(json.dumps(spec))  # YAML reads JSON
    study = platform.nsml("automl", "run", "-d", "webcup", "--spec", "sweep.yaml", cwd=folder).stdout.strip()

    page = _as(world["root"], world["url"] + "/sessions")
    page.click("header nav a[href='/automl']")
    page.wait_for_url("**/automl")
    assert [r.get_attribute("data-name") for r in page.query_selector_all("#studies tbody tr")] == [study]
    assert "webcup" in page.inner_text(f'#studies tr[data-name="{study}"]')
    page.click(f'#studies tr[data-name="{study}"] a')
    page.wait_for_url(f"**/automl/{study}")
    assert page.inner_text("#study h1").startswith(study)

    theirs = _as(world["as_bob"], world["url"] + "/automl")  # somebody else's study is not listed
    assert theirs.locator("#studies").count() == 0
    assert "nsml automl run" in theirs.inner_text("#no-studies")
