"""``nsml exec SESSION``: Python in the scope a running session shared, evaluated by the session.

With ``-c CODE`` one command is sent and its answer printed; without, lines are read from
stdin (a ``>>>`` prompt on a terminal, ``...`` while a block is open, as in Python's own
REPL) until end of input or ``exit()``. The code runs in the session's own process, in
its sandbox; see ``nsml.sdk.live`` for what an assignment changes.
"""

from __future__ import annotations

import codeop
import sys

import click

from nsml.cli.output import CliError, console, handle_errors, print_json, server
from nsml.client.api import ApiClient, ApiError
from nsml.names import SessionRef, parse_session
from nsml.schemas.live_exec import ExecOut

ENDS = ("exit()", "quit()", "exit", "quit")
NO_ANSWER = 408  # the session did not answer in time: worth another try, not the end


@click.command("exec")
@click.argument("session")
@click.option("-c", "--command", "code", default=None, help="Evaluate CODE, print the answer and exit.")
@click.option("--json", "as_json", is_flag=True, help="With -c: print {ok, output} as JSON.")
@handle_errors
def exec_command(session: str, code: str | None, as_json: bool) -> None:
    """Evaluate Python in a running SESSION, in the scope it shared with
    nsml.report(scope=locals()); e.g. -c "lr" to read, -c "lr = 0.5" to change (at module level)."""
    conn = server()
    ref = parse_session(session, default_owner=conn.default_owner)
    with conn.client() as api:
        if code is not None:
            result = api.exec_in_session(ref, code)
            if as_json:
                print_json(result)
                if not result.ok:
                    sys.exit(1)
                return
            if not result.ok:  # what it printed first, then the exception's line
                *printed, last = result.output.rstrip("\n").split("\n") or [""]
                _show(ExecOut(ok=True, output="\n".join(printed)))
                raise CliError(last)
            _show(result)
            return
        if as_json:
            raise CliError("--json needs -c CODE")
        _repl(api, ref)


def _show(result: ExecOut) -> None:
    output = result.output
    if not output:
        return
    stream = sys.stdout if result.ok else sys.stderr
    stream.write(output if output.endswith("\n") else output + "\n")
    stream.flush()


def _repl(api: ApiClient, ref: SessionRef) -> None:
    interactive = sys.stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401 - line editing and history for input()
        except ImportError:
            pass
        api.exec_in_session(ref, "None")  # fail now, not after the first line, if it cannot answer
        console.print(f"Connected to {ref}. The code runs in the session; exit() or Ctrl-D ends.")
    lines: list[str] = []
    while True:
        try:
            line = _read(interactive, "... " if lines else ">>> ")
        except KeyboardInterrupt:  # as in Python's REPL: drop the open block, carry on
            click.echo("\nKeyboardInterrupt", err=True)
            lines.clear()
            continue
        if line is None:
            break
        if not lines and line.strip() in ENDS:
            break
        lines.append(line)
        source = "\n".join(lines)
        if not source.strip():
            lines.clear()
            continue
        try:
            if codeop.compile_command(source, "<nsml exec>", "single") is None:
                continue  # an open block: read on
        except (SyntaxError, ValueError, OverflowError):
            pass  # the session says what is wrong, in its own Python's words
        lines.clear()
        try:
            _show(api.exec_in_session(ref, source))
        except ApiError as exc:
            if exc.status != NO_ANSWER:
                raise
            click.echo(f"Error: {exc.detail}", err=True)
        except KeyboardInterrupt:
            click.echo("\n(stopped waiting; the session may still run the command)", err=True)


def _read(interactive: bool, prompt: str) -> str | None:
    """One line of input without its newline, or None at the end of input."""
    if interactive:
        try:
            return input(prompt)
        except EOFError:
            click.echo("", err=True)
            return None
    line = sys.stdin.readline()
    return line.rstrip("\n") if line else None
