"""Login throttling against an attacker who also holds an account, and the cost of a name
without one; each on a server (or an account service) of its own, not the shared world of
test_accounts."""

from __future__ import annotations

import re
from pathlib import Path

import httpx
import pytest

from conftest import ADMIN_TOKEN, PASSWORD, ForegroundServer


def _throttled(response: httpx.Response) -> None:
    """A 429 that says, on one line, when to try again."""
    assert response.status_code == 429, (response.status_code, response.text)
    detail = response.json()["detail"]
    assert "\n" not in detail and re.fullmatch(r"too many failed logins; try again in [0-9]+ s", detail)
    assert int(response.headers["retry-after"]) >= 1


def test_own_logins_between_guesses_do_not_reset_the_throttle(tmp_path: Path) -> None:
    """An attacker logs into their own account between guesses at others' passwords.

    A success used to clear the address's count too, so guesses spread over several
    accounts were never slowed; now it clears only the account's own count. Against one
    account the guesses stop after its five free failures (and a delay of 1 s, 2 s, ...
    that a slow round trip may outlast); spread over more accounts, each under its own
    limit, they stop after the address's twenty, and the attacker's own logins with them.
    """
    server = ForegroundServer(tmp_path / "server-home")
    victims = [f"v{i}" for i in range(8)]
    try:
        for name in ("mallory", "victor", *victims):
            added = httpx.post(
                server.url + "/api/v1/admin/users",
                headers={"Authorization": f"Bearer {ADMIN_TOKEN}"},
                json={"name": name, "password": PASSWORD},
                timeout=60,
            )
            assert added.status_code == 201, added.text
        url = server.url + "/api/v1/auth/login"

        def attack(targets: list[str], rounds: int) -> list[int]:
            """Log in as oneself, then guess once, until refused: the codes of the guesses."""
            codes: list[int] = []
            for i in range(rounds):
                mine = httpx.post(url, json={"name": "mallory", "password": PASSWORD})
                if mine.status_code == 429:
                    _throttled(mine)
                    return [*codes, 429]
                assert mine.status_code == 200, mine.text
                answer = httpx.post(url, json={"name": targets[i % len(targets)], "password": f"guess-{i}"})
                codes.append(answer.status_code)
                if answer.status_code == 429:
                    _throttled(answer)
                    return codes
                assert answer.status_code == 401, answer.text
            return codes

        one = attack(["victor"], 12)
        assert one[-1] == 429 and 5 <= one.count(401) <= 8, one
        spread = attack(victims, 40)
        assert spread[-1] == 429 and one.count(401) + spread.count(401) <= 23, spread
    finally:
        server.stop()


def test_a_wrong_name_costs_a_password_check(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A name without an account is checked against a dummy hash, so it takes as long as a
    wrong password; one no account can have (a NUL from the web form) is not looked up."""
    from nsml.server.errors import Unauthorized
    from nsml.server.services import accounts
    from nsml.server.settings import ServerSettings
    from nsml.store import open_store

    checked: list[str | None] = []

    def wrong_password(digest: str | None, password: str) -> bool:
        checked.append(digest)
        return False

    monkeypatch.setattr(accounts, "verify_password", wrong_password)
    store = open_store(f"sqlite:///{tmp_path / 'nsml.db'}")
    try:
        service = accounts.AccountService(store, ServerSettings(home=tmp_path))
        for name in ("nobody", "bad\x00name", "x" * 5000):
            with pytest.raises(Unauthorized):
                service.login(name, "a password", "192.0.2.1")
    finally:
        store.close()  # type: ignore[attr-defined]
    assert checked == [None, None, None]
