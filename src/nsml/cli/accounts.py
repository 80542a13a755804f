"""Account commands: login, logout, register, whoami, and administration."""

from __future__ import annotations

import getpass
import os
import sys

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, server, table
from nsml.client.api import ApiError
from nsml.client.api import login as api_login
from nsml.client.connection import read_client_file, write_client_file
from nsml.config import CLIENT_FILE, local_user_name, nsml_home
from nsml.schemas.accounts import MeOut, TokenOut

MIB = 1024 * 1024


def _password(from_stdin: bool, confirm: bool = False) -> str:
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    if not sys.stdin.isatty():
        raise CliError("no terminal to ask for the password; pass --password-stdin")
    password = getpass.getpass("Password: ")
    if confirm and getpass.getpass("Again: ") != password:
        raise CliError("the two passwords differ")
    return password


def _save(url: str, answer: TokenOut, as_json: bool) -> None:
    path = write_client_file(nsml_home(), url, answer.token, answer.user)
    expires_at = answer.model_dump(mode="json")["expires_at"]  # as the server wrote it
    if as_json:
        print_json({"user": answer.user, "url": url, "expires_at": expires_at})
    else:
        console.print(f"Logged in to {url} as {answer.user} (token saved in {path}, until {expires_at}).")


@click.command()
@click.argument("server_url")
@click.option("-u", "--user", "name", default=None, help="Account name (default: your OS user).")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def login(server_url: str, name: str | None, password_stdin: bool, as_json: bool) -> None:
    """Log in to a shared server; later commands use it until `nsml logout`."""
    name = name or local_user_name()
    password = _password(password_stdin)
    try:
        answer = api_login(server_url, name, password)
    except ApiError as exc:
        raise CliError(f"login failed: {exc.detail}; {_unchanged()}") from None
    _save(server_url, answer, as_json)


def _unchanged() -> str:
    """What commands use after a failed login: nothing was saved, so whatever they used
    before (a new user would otherwise find out from `whoami` on the embedded server)."""
    if os.environ.get("NSML_SERVER_URL"):
        return f"commands still use NSML_SERVER_URL ({os.environ['NSML_SERVER_URL']})"
    saved = read_client_file(nsml_home())
    if saved:
        return f"still logged in to {saved['url']} as {saved.get('user', '?')}"
    return f"not logged in: commands still use the embedded server in {nsml_home()}"


@click.command()
@click.argument("server_url")
@click.option("--invite", required=True, help="The invite code an organiser gave you.")
@click.option("-u", "--user", "name", default=None, help="Account name to create (default: your OS user).")
@click.option("--password-stdin", is_flag=True, help="Read the new password from standard input.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def register(server_url: str, invite: str, name: str | None, password_stdin: bool, as_json: bool) -> None:
    """Create your account on a shared server with an invite code, and log in."""
    name = name or local_user_name()
    answer = api_login(server_url, name, _password(password_stdin, confirm=True), invite=invite)
    _save(server_url, answer, as_json)


@click.command()
@handle_errors
def logout() -> None:
    """Revoke the saved token and forget the server."""
    home = nsml_home()
    if read_client_file(home) is None:
        raise CliError("not logged in to a shared server (the embedded server needs no login)")
    try:
        with server().client() as api:
            api.logout()
    finally:
        (home / CLIENT_FILE).unlink(missing_ok=True)
    console.print("Logged out.")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def whoami(as_json: bool) -> None:
    """The account you act as, its role and team."""
    conn = server()
    with conn.client() as api:
        me = api.me()
    if as_json:
        print_json({**me.model_dump(mode="json"), "server": conn.url})
    else:
        team = f", team {me.team}" if me.team else ""
        console.print(f"{me.name} ({me.role}{team}) on {conn.url}")
        if isinstance(me, MeOut):  # an older server does not say
            console.print(f"storage: {_storage(me)}")


def _storage(me: MeOut) -> str:
    used, quota = me.storage_used_bytes / MIB, me.storage_quota_bytes / MIB
    whose = f" (team {me.storage_owner})" if me.storage_owner != me.name else ""
    if not quota:
        return f"{used:.1f} MiB used, no quota{whose}"
    return f"{used:.1f} of {quota:.0f} MiB used{whose}"


@click.group()
def admin() -> None:
    """Accounts, invites and teams (admins)."""


@admin.group("user")
def admin_user() -> None:
    """Accounts."""


@admin_user.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(["participant", "organiser", "admin"]), default="participant")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (default: generate one).")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_user_add(name: str, role: str, password_stdin: bool, as_json: bool) -> None:
    """Create an account; a generated password is shown once."""
    password = _password(True) if password_stdin else None
    with server().client() as api:
        created = api.add_user(name, role, password)
    if as_json:
        print_json(created)
        return
    console.print(f"Account {name} ({role}) created.")
    if created.password:
        console.print(f"Password (shown once): {created.password}")


@admin_user.command("ls")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_user_ls(as_json: bool) -> None:
    """All accounts and teams."""
    with server().client() as api:
        users = api.list_users()
    if as_json:
        print_json(users)
        return
    rows = [(u.name, u.kind, u.role, u.team or "", "disabled" if u.disabled else "") for u in users]
    table(("Name", "Kind", "Role", "Team", "State"), rows, "No accounts.")


@admin_user.command("disable")
@click.argument("name")
@handle_errors
def admin_user_disable(name: str) -> None:
    """Disable an account and revoke all its tokens."""
    with server().client() as api:
        api.disable_user(name)
    console.print(f"Account {name} disabled; its tokens are revoked.")


@admin_user.command("role")
@click.argument("name")
@click.argument("role", type=click.Choice(["participant", "organiser", "admin"]))
@handle_errors
def admin_user_role(name: str, role: str) -> None:
    """Change an account's role."""
    with server().client() as api:
        api.set_role(name, role)
    console.print(f"{name} is now {role}.")


@admin_user.command("quota")
@click.argument("name")
@click.argument("mb", required=False, type=click.IntRange(min=0))
@click.option("--default", "use_default", is_flag=True, help="Back to the server's default quota.")
@handle_errors
def admin_user_quota(name: str, mb: int | None, use_default: bool) -> None:
    """Set an account's storage quota in MiB (0: unlimited), or --default."""
    if (mb is None) == (not use_default):
        raise CliError("give a quota in MiB, or --default")
    with server().client() as api:
        api.set_storage_quota(name, None if use_default else mb)
    shown = "the server's default" if use_default else ("unlimited" if mb == 0 else f"{mb} MiB")
    console.print(f"Storage quota of {name}: {shown}.")


@admin.command("invite")
@click.option("--role", type=click.Choice(["participant", "organiser", "admin"]), default="participant")
@click.option("--uses", type=click.IntRange(min=1), default=1, show_default=True)
@click.option("--expires-hours", type=float, default=None)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_invite(role: str, uses: int, expires_hours: float | None, as_json: bool) -> None:
    """Create an invite code for `nsml register`."""
    with server().client() as api:
        invite = api.create_invite(role, uses, expires_hours)
    if as_json:
        print_json(invite)
    else:
        console.print(f"Invite code ({role}, {uses} use(s)): {invite.code}")


@admin.command("team")
@click.argument("team")
@click.argument("members", nargs=-1, required=True)
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_team(team: str, members: tuple[str, ...], as_json: bool) -> None:
    """Create TEAM if needed and add MEMBERS (at most three in all)."""
    with server().client() as api:
        result = api.add_to_team(team, list(members))
    if as_json:
        print_json(result)
    else:
        console.print(f"Team {result.team}: {', '.join(result.members)}")


@click.command()
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def credit(as_json: bool) -> None:
    """Your credit balance (1 credit = one GPU-minute; a CPU session counts as one GPU)."""
    with server().client() as api:
        data = api.credits()
    if as_json:
        print_json(data)
        return
    daily = f", daily allowance {data.daily:g}" if data.daily is not None else ""
    state = "" if data.enforced else " (credits are not enforced on this server)"
    console.print(f"{data.account}: {data.balance:.2f} credits{daily}{state}")


@admin.command("credit")
@click.argument("name")
@click.argument("amount", type=float, default=0.0)
@click.option(
    "--daily", type=click.FloatRange(min=0), default=None, help="Top the balance up to this each day."
)
@click.option("--no-daily", is_flag=True, help="Remove the daily allowance.")
@click.option("--json", "as_json", is_flag=True)
@handle_errors
def admin_credit(name: str, amount: float, daily: float | None, no_daily: bool, as_json: bool) -> None:
    """Grant AMOUNT credits to NAME (negative takes), and/or set a daily allowance."""
    with server().client() as api:
        data = api.grant_credits(name, amount, daily, no_daily)
    if as_json:
        print_json(data)
    else:
        console.print(f"{data.account}: {data.balance:.2f} credits")
