"""The session's side of ``nsml exec``: evaluate the owner's Python in the shared scope.

The first ``nsml.report(scope=locals())`` (or ``nsml.paused(scope=locals())``) on the
platform starts a daemon thread that long-polls the session's API, with the session's
token, for commands the owner sent with ``nsml exec``, evaluates each one in this process
(inside the session's sandbox, never in the server) against the latest scope dict, and
posts back a short text: the repr of an expression's value and what the code printed, or
the exception's last line.

What an assignment changes depends on the dict: at module level ``locals() is
globals()``, so ``lr = 0.5`` rebinds the script's ``lr`` and the loop reads the new value
at its next use. Inside a function ``locals()`` is a copy of the function's variables:
an assignment there changes only the copy, but changing a mutable object works
(``config['lr'] = 0.5``, ``optimizer.param_groups[0]['lr'] = 0.5``). The code runs in
this thread while the script goes on in its own, as with a debugger attached.
"""

from __future__ import annotations

import ast
import builtins
import sys
import threading
import time
import traceback
from collections.abc import Callable
from typing import Any

POLL_WAIT_S = 20.0  # under the server's cap, and well under the client's read timeout
MAX_OUTPUT_CHARS = 65_536  # the server refuses a longer answer (schemas.EXEC_OUTPUT_CHARS)
GONE_STATUSES = (401, 403, 404)  # the session's token no longer works: it has ended

Poll = Callable[[float], "dict[str, Any] | None"]
Answer = Callable[[str, bool, str], None]


def shorten(text: str, limit: int = MAX_OUTPUT_CHARS) -> str:
    """``text`` as the server accepts it: NUL and lone surrogates escaped, and cut to
    ``limit`` characters with a note saying how long it was."""
    text = text.replace("\x00", "\\x00").encode("utf-8", "backslashreplace").decode("utf-8")
    if len(text) <= limit:
        return text
    note = f"... [cut: {len(text)} characters in all]"
    return text[: limit - len(note)] + note


class _Captured:
    """What the evaluating thread prints, bounded; other threads still write to ``stream``
    (every other attribute is the real stream's, so a script's ``fileno()`` still works)."""

    def __init__(self, stream: Any, owner: int) -> None:
        self.stream = stream
        self.owner = owner
        self.parts: list[str] = []
        self.size = 0

    def write(self, text: str) -> int:
        if threading.get_ident() != self.owner:
            return int(self.stream.write(text))
        if self.size <= MAX_OUTPUT_CHARS:
            self.parts.append(text)
            self.size += len(text)
        return len(text)

    def flush(self) -> None:
        self.stream.flush()

    def __getattr__(self, name: str) -> Any:  # fileno, isatty, encoding, ... of the real stream
        return getattr(self.stream, name)


def evaluate(code: str, scope: dict[str, Any], module: dict[str, Any]) -> tuple[bool, str]:
    """Run ``code`` like one REPL entry: (True, printed text + repr of the last expression's
    value unless None) or (False, the exception's last line). Never raises, ``exit()`` included."""
    local = scope
    glob = scope if "__builtins__" in scope else module  # a module's globals, or a function's locals
    if glob is not scope and "__builtins__" not in glob:
        glob = {"__builtins__": builtins, **glob}
    captured = _Captured(sys.stdout, threading.get_ident())
    sys.stdout = captured
    try:
        body, last = _split(code)
        if body is not None:
            exec(body, glob, local)
        value = eval(last, glob, local) if last is not None else None
        shown = "" if value is None else repr(value)
        ok = True
    except BaseException as exc:  # noqa: BLE001 - SystemExit too: exit() must not end the session
        shown = traceback.format_exception_only(type(exc), exc)[-1].strip()
        ok = False
    finally:
        if sys.stdout is captured:
            sys.stdout = captured.stream
    printed = "".join(captured.parts)
    text = printed + shown if not printed or not shown else f"{printed.rstrip(chr(10))}\n{shown}"
    return ok, shorten(text)


def _split(code: str) -> tuple[Any, Any]:
    """(statements to run, final expression to show), compiled; either may be None.
    As in IPython, ``x = 1; x`` shows 1: a last expression statement is evaluated."""
    tree = ast.parse(code, "<nsml exec>", "exec")
    last = None
    final = tree.body[-1] if tree.body else None
    if isinstance(final, ast.Expr):
        tree.body.pop()
        last = compile(ast.Expression(final.value), "<nsml exec>", "eval")
    body = compile(tree, "<nsml exec>", "exec") if tree.body else None
    return body, last


class ScopeListener:
    """Holds the latest shared scope and answers ``nsml exec`` commands against it."""

    def __init__(self, poll: Poll, answer: Answer) -> None:
        self._poll = poll
        self._answer = answer
        self._scope: dict[str, Any] = {}
        self._module: dict[str, Any] = {}
        self._thread: threading.Thread | None = None

    def share(self, scope: dict[str, Any], module: dict[str, Any]) -> None:
        """Evaluate later commands in ``scope`` (names not in it: ``module``'s globals)."""
        self._scope, self._module = scope, module
        if self._thread is None:
            self._thread = threading.Thread(target=self._loop, name="nsml-exec", daemon=True)
            self._thread.start()

    def _loop(self) -> None:
        from nsml.client.http import ApiError

        backoff = 1.0
        while True:
            started = time.monotonic()
            try:
                command = self._poll(POLL_WAIT_S)
            except ApiError as exc:
                if exc.status in GONE_STATUSES:
                    return
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            except Exception:  # noqa: BLE001 - a bad reply; training must go on regardless
                time.sleep(backoff)
                backoff = min(backoff * 2, 30.0)
                continue
            backoff = 1.0
            if command is None:
                if time.monotonic() - started < 1.0:  # the server is stopping: do not spin
                    time.sleep(1.0)
                continue
            if isinstance(command, dict):
                self._run(command)

    def _run(self, command: dict[str, Any]) -> None:
        from nsml.client.http import ApiError

        command_id = str(command.get("id", ""))
        ok, output = evaluate(str(command.get("code", "")), self._scope, self._module)
        try:
            self._answer(command_id, ok, output)
        except ApiError as exc:
            if exc.status == 422:  # say why, rather than let the owner wait for nothing
                try:
                    self._answer(command_id, False, shorten(f"the answer was refused: {exc.detail}"))
                except Exception:  # noqa: BLE001, S110 - the owner gets the server's timeout
                    pass
        except Exception:  # noqa: BLE001, S110 - the server is gone; the owner gets its error
            pass
