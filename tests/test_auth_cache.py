"""A server remembers the user tokens it checked for a few seconds (every CLI call and page
is authenticated), yet a logout, a disabled account or a new role made through it takes
effect on the next request. Two account services on one database stand for two servers."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from pathlib import Path

from nsml.server.auth import Principal
from nsml.server.services.accounts import AccountService
from nsml.server.settings import ServerSettings
from nsml.store import Role, User, open_store
from nsml.store.sql.store import SqlStore

PASSWORD = "a long enough password"


def _service(store: SqlStore, home: Path, cache_s: float) -> tuple[AccountService, list[str]]:
    """An account service whose token lookups in the store are counted."""
    service = AccountService(store, ServerSettings(home=home, auth_cache_s=cache_s))
    lookups: list[str] = []
    real: Callable[[str, datetime], tuple[User, datetime | None] | None] = store.user_for_token

    def counted(digest: str, now: datetime) -> tuple[User, datetime | None] | None:
        lookups.append(digest)
        return real(digest, now)

    store.user_for_token = counted  # type: ignore[method-assign,assignment]
    return service, lookups


def _name(found: Principal | None) -> str | None:
    return None if found is None else found.user.name


def test_a_checked_token_is_remembered_and_every_change_here_forgets_it(
    store: SqlStore, database_url: str, tmp_path: Path
) -> None:
    here, lookups = _service(store, tmp_path / "a", cache_s=60)
    other_store = open_store(database_url)
    assert isinstance(other_store, SqlStore)
    try:
        elsewhere = AccountService(other_store, ServerSettings(home=tmp_path / "b", auth_cache_s=60))
        for name in ("ann", "bob", "cy"):
            here.add_user(name, "participant", PASSWORD)
        _, ann_token, _ = here.login("ann", PASSWORD, "127.0.0.1")
        _, bob_token, _ = here.login("bob", PASSWORD, "127.0.0.1")
        _, cy_token, _ = here.login("cy", PASSWORD, "127.0.0.1")

        for _ in range(20):
            assert _name(here.authenticate(ann_token)) == "ann"
        assert len(lookups) == 1  # twenty requests, one lookup
        assert here.authenticate("not a token") is None
        assert here.authenticate("not a token") is None  # a refusal is not remembered
        assert len(lookups) == 3

        here.set_role("ann", "organiser")  # seen at once, by the very next request
        found = here.authenticate(ann_token)
        assert found is not None and found.user.role is Role.ORGANISER and found.is_organiser
        here.add_to_team("crew", ["ann"])
        found = here.authenticate(ann_token)
        assert found is not None and found.user.owner_name == "crew"

        assert _name(here.authenticate(bob_token)) == "bob"
        here.logout(bob_token)
        assert here.authenticate(bob_token) is None
        assert _name(here.authenticate(cy_token)) == "cy"
        here.disable("cy")
        assert here.authenticate(cy_token) is None

        # another server's logout reaches this one when its memory of the token runs out
        _, ann_second, _ = here.login("ann", PASSWORD, "127.0.0.1")
        assert _name(here.authenticate(ann_second)) == "ann"
        elsewhere.logout(ann_second)
        assert elsewhere.authenticate(ann_second) is None
        assert _name(here.authenticate(ann_second)) == "ann"  # within the 60 s it trusts
        here.principals.ttl_s = 0.2
        here.principals.forget_all()
        assert _name(here.authenticate(ann_token)) == "ann"
        elsewhere.set_role("ann", "participant")
        deadline = time.monotonic() + 10
        while here.authenticate(ann_token).is_organiser and time.monotonic() < deadline:  # type: ignore[union-attr]
            time.sleep(0.05)
        assert not here.authenticate(ann_token).is_organiser  # type: ignore[union-attr]
    finally:
        other_store.close()


def test_a_token_is_not_remembered_past_its_own_end(store: SqlStore, tmp_path: Path) -> None:
    service, _ = _service(store, tmp_path, cache_s=60)
    service.settings.token_ttl_hours = 1 / 3600  # one second
    service.add_user("eve", "participant", PASSWORD)
    _, token, _ = service.login("eve", PASSWORD, "127.0.0.1")
    assert _name(service.authenticate(token)) == "eve"
    deadline = time.monotonic() + 10  # the 60 s memory would outlast this wait
    while service.authenticate(token) is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.authenticate(token) is None


def test_no_memory_at_all_when_switched_off(store: SqlStore, tmp_path: Path) -> None:
    service, lookups = _service(store, tmp_path, cache_s=0)
    service.add_user("dee", "participant", PASSWORD)
    _, token, _ = service.login("dee", PASSWORD, "127.0.0.1")
    for _ in range(3):
        assert _name(service.authenticate(token)) == "dee"
    assert len(lookups) == 3
