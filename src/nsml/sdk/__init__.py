"""The 2018 NSML SDK: what a training script sees as ``import nsml``.

On the platform the environment variables set by the runner point the SDK at the
session's API and token; anywhere else the same script runs with ``IS_ON_NSML`` false,
reports printed and checkpoints written under ``./nsml_local/checkpoints``.
"""

from __future__ import annotations

import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from nsml.names import InvalidName, parse_session, validate_checkpoint
from nsml.sdk import checkpoints
from nsml.sdk.live import ScopeListener
from nsml.sdk.reporting import MAX_STEP, Reporter, jsonable

IS_ON_NSML: bool = os.environ.get("NSML_ON_PLATFORM") == "1"
DATASET_PATH: str | None = os.environ.get("NSML_DATASET_PATH") or None
HAS_DATASET: bool = DATASET_PATH is not None and os.path.isdir(DATASET_PATH)
GPU_NUM: int = int(os.environ.get("NSML_GPU_NUM", "0") or 0)
SESSION_NAME: str = os.environ.get("NSML_SESSION", "")
LOCAL_DIR = Path(os.environ.get("NSML_LOCAL_DIR", "nsml_local"))


class _Bound:
    save: Callable[..., Any] | None = None
    load: Callable[..., Any] | None = None
    infer: Callable[..., Any] | None = None
    kwargs: dict[str, Any] = {}


_bound = _Bound()
_client: Any = None
_reporter: Reporter | None = None
_listener: ScopeListener | None = None
_auto_step = 0


SERVING_REQUEST = (
    "this process was started by the platform to serve a request (--pause 1), and the script "
    "went on without calling nsml.paused(scope=locals()); add `if config.pause: "
    "nsml.paused(scope=locals())` right after nsml.bind(...)"
)


def _api() -> Any:
    """The session's API client, created on first use (keeps ``import nsml`` fast)."""
    global _client
    if "NSML_EVAL_FD" in os.environ:
        raise RuntimeError(f"nsml: {SERVING_REQUEST}")
    if _client is None:
        from nsml.client.runtime import RuntimeClient

        _client = RuntimeClient(
            os.environ["NSML_API_URL"],
            os.environ["NSML_SESSION_TOKEN"],
            uds=os.environ.get("NSML_API_SOCKET"),  # inside the sandbox: no network, a socket
        )
    return _client


def _session_ref() -> Any:
    return parse_session(SESSION_NAME)


def bind(
    save: Callable[..., Any] | None = None,
    load: Callable[..., Any] | None = None,
    infer: Callable[..., Any] | None = None,
    **kwargs: Any,
) -> None:
    """Register the functions the platform calls; ``kwargs`` go to save and load."""
    _bound.save, _bound.load, _bound.infer = save, load, infer
    _bound.kwargs = dict(kwargs)


def report(summary: bool = False, scope: Any = None, step: Any = None, **metrics: Any) -> None:
    """Record metrics at ``step``; ``train__loss`` is stored as ``train/loss``.

    ``scope`` was ``locals()`` in 2018 scripts: on the platform a dict scope is what
    ``nsml exec`` evaluates in (see ``nsml.sdk.live``); a string scope is stored.
    """
    global _auto_step, _reporter
    if isinstance(scope, dict):
        _share_scope(scope, sys._getframe(1).f_globals)
    if step is None:
        step = _auto_step
    step = int(jsonable("step", step))
    if not -MAX_STEP - 1 <= step <= MAX_STEP:  # the server would refuse the whole batch
        raise ValueError(f"nsml.report: step {step} is out of range; a step fits in 32 bits")
    _auto_step = step + 1
    values = {key.replace("__", "/"): jsonable(key, value) for key, value in metrics.items()}
    if not IS_ON_NSML or "NSML_EVAL_FD" in os.environ:  # off the platform, or serving a request
        shown = " ".join(f"{key}={value}" for key, value in values.items())
        print(f"[nsml] step {step}: {shown}" + (" (summary)" if summary else ""), flush=True)
        return
    if _reporter is None:
        ref = _session_ref()
        _reporter = Reporter(lambda batch, batch_id: _api().send_reports(ref, batch, batch_id))
        atexit.register(_flush_quietly)
    _reporter.add(
        {
            "step": step,
            "metrics": values,
            "summary": bool(summary),
            "scope": scope if isinstance(scope, str) else None,
            "time": time.time(),
        }
    )


def save(iteration: Any = None, save_fn: Callable[..., Any] | None = None) -> None:
    """Store a checkpoint named ``iteration`` (default: the current time), atomically."""
    fn = save_fn or _bound.save
    if fn is None:
        raise RuntimeError("nsml.save: no save function; call nsml.bind(save=..., load=...) first")
    name = str(iteration) if iteration is not None else time.strftime("%Y%m%d-%H%M%S")
    try:
        validate_checkpoint(name)
    except InvalidName as exc:
        raise ValueError(f"nsml.save: {exc}") from None
    if _reporter is not None:
        _reporter.flush()
    staging = Path(tempfile.mkdtemp(prefix="nsml-save-"))
    try:
        saved = checkpoints.save_into(fn, staging, _bound.kwargs)
        if IS_ON_NSML:
            from nsml.client.archive import pack_dir

            _api().put_checkpoint(_session_ref(), name, pack_dir(saved))
        else:
            target = LOCAL_DIR / "checkpoints" / name
            target.parent.mkdir(parents=True, exist_ok=True)
            checkpoints.copy_checkpoint(saved, target)
            print(f"[nsml] checkpoint {name} saved to {target}", flush=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def load(
    iteration: Any = None,
    session: str | None = None,
    load_fn: Callable[..., Any] | None = None,
    checkpoint: Any = None,
) -> None:
    """Restore checkpoint ``iteration`` of this session (or of ``session``) via the bound load."""
    fn = load_fn or _bound.load
    if fn is None:
        raise RuntimeError("nsml.load: no load function; call nsml.bind(save=..., load=...) first")
    name = str(iteration if iteration is not None else checkpoint)
    staging = Path(tempfile.mkdtemp(prefix="nsml-load-"))
    try:
        if IS_ON_NSML:
            from nsml.client.archive import unpack

            ref = parse_session(session, default_owner=_session_ref().owner) if session else _session_ref()
            unpack(_api().download_checkpoint(ref, name), staging)
        else:
            source = LOCAL_DIR / "checkpoints" / name
            if not source.is_dir():
                raise FileNotFoundError(f"nsml.load: no local checkpoint {name!r} in {source.parent}")
            checkpoints.copy_checkpoint(source, staging)
        fn(checkpoints.load_path(staging), **_bound.kwargs)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def cache(fn: Callable[..., Any], output_path: str | list[str] | None = None, **kwargs: Any) -> Any:
    """Run ``fn(output_path, **kwargs)`` once; later calls with the same function, arguments
    and dataset restore its output files instead (across sessions, on the platform)."""
    from nsml.sdk import caching

    paths = [output_path] if isinstance(output_path, str) else list(output_path or [])
    if not paths:
        raise ValueError("nsml.cache: give output_path=[...], the files or folders fn writes")
    key = caching.cache_key(fn, paths, kwargs)
    on_platform = IS_ON_NSML and "NSML_EVAL_FD" not in os.environ
    if on_platform:
        shared = os.environ.get("NSML_CACHE_DIR")
        store: Any = caching.PlatformCache(_api, Path(shared) if shared else None)
    else:
        store = caching.LocalCache(LOCAL_DIR / "cache")
    with tempfile.TemporaryDirectory(prefix="nsml-cache-") as scratch:
        archive = store.fetch(key, Path(scratch) / "entry.tar")
        if archive is not None:
            caching.restore_outputs(archive, paths)
            print(f"[nsml] cache hit {key[:12]}: restored {', '.join(paths)}", flush=True)
            return None
    name = getattr(fn, "__qualname__", "function")
    print(f"[nsml] cache miss {key[:12]}: running {name}", flush=True)
    result = fn(output_path, **kwargs)
    store.put(key, caching.pack_outputs(paths), name, os.environ.get("NSML_DATASET_NAME"))
    return result


def shared(name: str, path: str | os.PathLike[str] | None = None) -> str:
    """Restore the shared resource ``name`` into ``path`` (default ``./nsml_shared/NAME``)
    and return that folder; resources are published by organisers with ``nsml shared push``."""
    from nsml.sdk import sharing

    if "NSML_EVAL_FD" in os.environ:
        raise RuntimeError(
            "nsml.shared: an evaluation cannot read shared resources; keep what infer needs "
            "in the checkpoint (the bound save) and restore it in load"
        )
    return sharing.shared(name, path, on_platform=IS_ON_NSML, api=_api, local_dir=LOCAL_DIR)


def infer(data: Any, **kwargs: Any) -> Any:
    """Call the bound infer function (``--mode test_local``)."""
    if _bound.infer is None:
        raise RuntimeError("nsml.infer: no infer function; call nsml.bind(infer=...) first")
    return _bound.infer(data, **kwargs)


def paused(scope: Any = None) -> None:
    """Hand the script over to the platform: load the requested checkpoint through the
    bound load, then either serve inference until the platform is done (``submit``,
    ``infer``; never returns) or return so that training goes on (``fork``, ``resume``).
    A dict ``scope`` is what ``nsml exec`` evaluates in, as with ``report``.
    """
    if isinstance(scope, dict):
        _share_scope(scope, sys._getframe(1).f_globals)
    if "NSML_EVAL_FD" not in os.environ and "NSML_CHECKPOINT_PATH" in os.environ:
        # fork or resume: load the checkpoint, then let the script train on from --iteration
        if _bound.load is None:
            raise RuntimeError("nsml.paused: no load function; call nsml.bind(load=...) first")
        _bound.load(checkpoints.load_path(os.environ["NSML_CHECKPOINT_PATH"]), **_bound.kwargs)
        return
    if "NSML_EVAL_FD" not in os.environ:
        raise RuntimeError(
            "nsml.paused: this script was started with --pause 1, but no platform request "
            "(submit, infer) is waiting for it; run it without --pause"
        )
    from nsml.sdk.serving import serve

    serve(_bound.load, _bound.infer, _bound.kwargs)


def _share_scope(scope: dict[str, Any], module: dict[str, Any]) -> None:
    """Let the owner's ``nsml exec`` evaluate in ``scope`` from now on (on the platform,
    outside evaluations, which have no API access)."""
    global _listener
    if not IS_ON_NSML or "NSML_EVAL_FD" in os.environ:
        return
    if _listener is None:
        ref = _session_ref()
        _listener = ScopeListener(
            lambda wait: _api().next_exec_command(ref, wait),
            lambda command_id, ok, output: _api().answer_exec_command(ref, command_id, ok, output),
        )
    _listener.share(scope, module)


def _flush_quietly() -> None:
    if _reporter is not None and not _reporter.flush(timeout=30):
        print("[nsml] some metric reports were not delivered before exit", file=sys.stderr)
