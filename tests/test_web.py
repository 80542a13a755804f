"""The web UI in a real browser (Debian's Chromium through Playwright) on a real server."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

from conftest import ROOT, Platform, second_user

OUTPUT = ROOT / "test-output" / "web"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]  # fmt: skip

SCRIPT = """
    import argparse, hashlib, json, os, time, nsml
    parser = argparse.ArgumentParser()
    parser.add_argument("--mode", default="train")
    parser.add_argument("--pause", type=int, default=0)
    parser.add_argument("--iteration", default="0")
    parser.add_argument("--rule", default="ones")
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
              infer=lambda data, **k: [(0.5, predict(t)) for t in data])
    if config.pause:
        nsml.paused(scope=locals())
    for step in range(5):
        print(f"학습 단계 {step}", flush=True)
        nsml.report(summary=True, step=step, train__loss=1.0 / (step + 1))
        nsml.save(step)
"""


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI") == "true":
            pytest.fail("CI=true but /usr/bin/chromium is missing; `make test` installs it")
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            yield instance
        finally:
            instance.close()


def _page(browser: Any, link: str) -> Any:
    context = browser.new_context(viewport={"width": 1280, "height": 860}, locale="ko-KR")
    page = context.new_page()
    page.goto(link)
    return page


def _sign_in_link(client: Platform) -> str:
    return str(
        client.nsml("web", "--no-browser").stdout.split("link (one use, valid for 5 minutes): ")[1].strip()
    )


@pytest.fixture(scope="module")
def world(platform: Platform, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    OUTPUT.mkdir(parents=True, exist_ok=True)
    bob = second_user(platform, "bob", tmp_path_factory.mktemp("bob"))
    url = platform.server_info()["url"]
    mine = platform.run(platform.project("web_ones", SCRIPT), "demo_kin", "--rule ones")
    theirs = bob.run(bob.project("web_rule", SCRIPT), "demo_kin", "--rule hash")
    platform.wait(mine)
    bob.wait(theirs)
    return {"platform": platform, "bob": bob, "url": url, "mine": mine, "theirs": theirs}


def _board_rows(page: Any) -> list[tuple[str, str]]:
    page.wait_for_selector("#board tbody tr td")
    return [
        (row.query_selector_all("td")[1].inner_text(), row.query_selector_all("td")[2].inner_text())
        for row in page.query_selector_all("#board tbody tr")
    ]


def test_board_matches_the_cli_and_updates_live(browser: Any, world: dict[str, Any]) -> None:
    platform, bob = world["platform"], world["bob"]
    platform.nsml("submit", world["mine"], "4")
    page = _page(browser, _sign_in_link(platform))
    page.goto(world["url"] + "/boards/demo_kin")
    assert [owner for owner, _ in _board_rows(page)] == ["root"]

    bob.nsml("submit", world["theirs"], "4")  # lands while the page is open
    page.wait_for_function("document.querySelectorAll('#board tbody tr').length == 2", timeout=20_000)
    cli = platform.json("board", "demo_kin")["rows"]
    shown = _board_rows(page)
    assert [owner for owner, _ in shown] == [row["owner"] for row in cli]
    for (_, score), row in zip(shown, cli, strict=True):
        assert float(score) == pytest.approx(row["score"], rel=1e-4)
    assert page.inner_text("#mine tbody").count("scored") == 1  # only my own history
    assert "bob" not in page.inner_text("#mine")
    page.screenshot(path=str(OUTPUT / "board.png"), full_page=True)

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
    assert page.get_attribute('#board tr[data-owner="bob"]', "class") == "moved-up"
    assert page.get_attribute('#board tr[data-owner="root"]', "class") == "moved-down"
    assert "▲1" in page.inner_text('#board tr[data-owner="bob"]')


def test_session_page_shows_log_chart_and_submits(browser: Any, world: dict[str, Any]) -> None:
    platform = world["platform"]
    page = _page(browser, _sign_in_link(platform))
    page.goto(world["url"] + f"/sessions/{world['mine']}")
    page.wait_for_function(
        "document.getElementById('log').textContent.includes('학습 단계 4')", timeout=20_000
    )
    page.wait_for_function("document.getElementById('chart').dataset.points === '5'", timeout=20_000)
    assert page.input_value("#metric") == "train/loss"
    before = len(platform.json("board", "demo_kin", "--private")["submissions"])
    row = page.locator('#checkpoints tr[data-checkpoint="2"]')
    row.locator("button.submit:not([data-test])").click()
    page.wait_for_selector("#result .scored", timeout=60_000)
    assert "score" in page.inner_text("#result")
    after = platform.json("board", "demo_kin", "--private")["submissions"]
    assert len(after) == before + 1 and after[0]["status"] == "scored" and after[0]["checkpoint"] == "2"
    row.locator("button[data-test='1']").click()
    page.wait_for_selector("#result table.preview", timeout=60_000)
    assert page.locator("#result table.preview tr").count() == 11
    page.screenshot(path=str(OUTPUT / "session.png"), full_page=True)


def test_sessions_list_filters_and_datasets(browser: Any, world: dict[str, Any]) -> None:
    platform = world["platform"]
    page = _page(browser, _sign_in_link(platform))
    page.wait_for_selector("#sessions tbody tr")
    assert world["mine"] in page.inner_text("#sessions") and world["theirs"] not in page.inner_text(
        "#sessions"
    )
    page.fill("#filter-text", "no-such-session")
    assert page.locator("#sessions tbody tr:visible").count() == 0
    page.fill("#filter-text", "")
    page.screenshot(path=str(OUTPUT / "sessions.png"), full_page=True)
    page.goto(world["url"] + "/datasets")
    assert "demo_movie" in page.inner_text("#datasets")
    page.screenshot(path=str(OUTPUT / "datasets.png"), full_page=True)


def test_other_users_things_are_not_reachable(browser: Any, world: dict[str, Any]) -> None:
    page = _page(browser, _sign_in_link(world["bob"]))
    response = page.goto(world["url"] + f"/sessions/{world['mine']}")
    assert response.status == 404
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
