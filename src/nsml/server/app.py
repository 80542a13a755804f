"""The FastAPI application: wiring of store, artifacts, runner and services.

``create_app`` builds everything in the lifespan so that one process owns the store
and the runner, and shuts them down in the right order (runner first, so its last
events still reach the store).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timezone

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from nsml._version import __version__
from nsml.artifacts.bucket import ObjectStoreError
from nsml.artifacts.object_store import open_artifact_store
from nsml.config import SERVER_FILE
from nsml.datasets.demo_catalog import DEMO_DATASETS
from nsml.runners import LocalRunner, Runner, cgroups
from nsml.server.auth import hash_token
from nsml.server.automl_driver import AutoMLDriver
from nsml.server.deps import Services
from nsml.server.errors import ApiError
from nsml.server.guard import RequestGuard
from nsml.server.idle import IdleWatch
from nsml.server.janitor import Janitor
from nsml.server.limits import BodySizeLimit
from nsml.server.routers import (
    accounts,
    admin,
    automl,
    cache,
    competition,
    credits,
    datasets,
    live_exec,
    notify,
    phases,
    runtime,
    servers,
    sessions,
    shared,
    submission_admin,
    system,
)
from nsml.server.services.accounts import AccountService
from nsml.server.services.automl import AutoMLService
from nsml.server.services.cache import CacheService
from nsml.server.services.competition_admin import CompetitionAdmin
from nsml.server.services.credits import CreditService
from nsml.server.services.datasets import DatasetService
from nsml.server.services.live_exec import ExecBroker
from nsml.server.services.notifications import NotificationService
from nsml.server.services.phases import PhaseService
from nsml.server.services.rescoring import Rescorer
from nsml.server.services.server_leases import ServerIdInUse, ServerLeases, default_server_id
from nsml.server.services.session_files import SessionFiles
from nsml.server.services.sessions import SHUTDOWN_REASON, SessionService
from nsml.server.services.shared import SharedService
from nsml.server.services.storage import StorageService
from nsml.server.services.submission_queue import SubmissionQueue
from nsml.server.services.submissions import SubmissionService
from nsml.server.settings import ServerSettings
from nsml.server.web import automl_routes as automl_web
from nsml.server.web import competition as web_competition
from nsml.server.web import render as web_render
from nsml.server.web import routes as web_routes
from nsml.server.web.errors import error_response
from nsml.server.web.links import LoginLinks
from nsml.store import Role, open_store

API_PREFIX = "/api/v1"
log = logging.getLogger("nsml.server")


def create_app(settings: ServerSettings, token: str) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        settings.home.mkdir(parents=True, exist_ok=True)
        settings.server_id = settings.server_id or default_server_id(settings.home)
        store = open_store(settings.db_url)
        artifacts = open_artifact_store(
            settings.home, settings.max_unpacked_bytes, settings.artifacts_url, settings.s3_endpoint_url
        )
        user = store.get_or_create_user(settings.local_user)
        if user.role is not Role.ADMIN:  # whoever runs the server administers it
            user = store.update_user(user.name, role=Role.ADMIN)
        store.add_token(user.id, hash_token(token), expires_at=None)
        dataset_service = DatasetService(store, artifacts, settings.default_daily_limit)
        if store.created:
            for demo in DEMO_DATASETS:
                dataset_service.register_folder(user, demo.name, demo.metric, demo.description, demo.path)
        runner = make_runner(settings)
        session_service = SessionService(store, artifacts, runner, settings)
        storage_service = StorageService(store, artifacts, settings)
        session_service.storage = storage_service
        submission_service = SubmissionService(store, artifacts, runner, settings, session_service)
        credit_service = CreditService(store, session_service, settings)
        session_service.admission = credit_service.check_can_start
        session_service.on_ended = credit_service.charge_ended
        notifications = NotificationService(store)
        notifications.start()
        session_service.notifications = notifications
        submission_service.notifications = notifications
        idle_watch = IdleWatch(store, runner, settings.idle_after_s, notifications.session_idle)
        session_service.idle = idle_watch
        leases = ServerLeases(
            store, settings, session_service, submission_service, lambda: os.kill(os.getpid(), signal.SIGTERM)
        )
        try:
            leases.register()
        except ServerIdInUse as exc:  # two servers with one id would take over each other's work
            log.error("%s", exc)
            store.close()
            raise SystemExit(f"error: {exc}") from None
        leases.start()  # renews the lease from now on; takes over lost servers once recovered
        runner.start(session_service)
        leases.recover_own()
        credit_service.start()
        phase_service = PhaseService(
            store, artifacts, submission_service, Rescorer(store, artifacts, submission_service)
        )
        janitor = Janitor(store, artifacts, settings, on_tick=phase_service.advance_all)
        janitor.start()  # a first sweep now, then on the schedule
        exec_broker = ExecBroker()
        exec_broker.bind_loop(asyncio.get_running_loop())
        idle_watch.start()
        automl_service = AutoMLService(store, session_service, settings.home / "automl.db")
        automl_driver = AutoMLDriver(automl_service)
        automl_service.on_created = automl_driver.wake
        automl_driver.start()  # after the sessions' recovery: it settles the trials it failed
        app.state.services = Services(
            settings=settings,
            store=store,
            datasets=dataset_service,
            sessions=session_service,
            submissions=submission_service,
            accounts=AccountService(store, settings),
            credits=credit_service,
            web_links=LoginLinks(),
            storage=storage_service,
            files=SessionFiles(store, artifacts, settings),
            exec_broker=exec_broker,
            notifications=notifications,
            cache=CacheService(store, artifacts),
            shared=SharedService(store, artifacts),
            automl=automl_service,
            queue=SubmissionQueue(store, submission_service, session_service, settings),
            competition_admin=CompetitionAdmin(store),
            phases=phase_service,
            leases=leases,
        )
        write_server_file(settings, token)
        log.info("OpenNSML %s serving %s at %s", __version__, settings.home, settings.public_url)
        if not settings.sandboxed:
            log.warning("sessions run without a sandbox: %s", settings.sandbox_problem)
        if settings.runner == "local":
            log.info("resource limits enforced with %s", cgroups.enforcer().name)
        try:
            yield
        finally:
            remove_server_file(settings)
            exec_broker.close()
            janitor.stop()
            automl_driver.stop()
            idle_watch.stop()
            credit_service.shutdown()
            runner.shutdown(SHUTDOWN_REASON)
            leases.stop()  # after the runner: its last events are recorded before a takeover
            if settings.runner == "local":
                cgroups.release()  # every run has ended: remove this server's control groups
            notifications.stop()
            artifacts.close()  # after the runner: the last log lines are mirrored
            store.close()
            if settings.api_socket is not None:  # here: uvicorn may re-raise SIGTERM after us
                shutil.rmtree(settings.api_socket.parent, ignore_errors=True)

    app = FastAPI(title="OpenNSML", version=__version__, lifespan=lifespan)
    routers = (
        system, accounts, admin, datasets, sessions, runtime, live_exec, competition, cache, credits,
        shared, notify, submission_admin, phases, automl, servers,
    )  # fmt: skip
    for module in routers:
        app.include_router(module.router, prefix=API_PREFIX)
    app.add_middleware(
        BodySizeLimit,
        default_bytes=settings.max_json_mb * 1024 * 1024,
        upload_paths=(
            f"{API_PREFIX}/uploads",
            "/checkpoints/",
            f"{API_PREFIX}/cache/",
            f"{API_PREFIX}/shared/",
        ),
    )

    app.add_middleware(RequestGuard)  # outermost of ours: it also sees what BodySizeLimit raises

    app.include_router(web_routes.router)
    app.include_router(automl_web.router)
    app.include_router(web_competition.router)
    app.mount("/static", StaticFiles(directory=str(web_render.HERE / "static")), name="static")

    @app.exception_handler(web_routes.LoginRequired)
    async def _login_required(_: Request, exc: Exception) -> RedirectResponse:
        return RedirectResponse("/login", status_code=303)

    @app.exception_handler(ApiError)
    async def _api_error(request: Request, exc: ApiError) -> Response:
        return error_response(request, exc.status_code, exc.detail, exc.headers)

    @app.exception_handler(ObjectStoreError)
    async def _object_store_down(request: Request, exc: ObjectStoreError) -> Response:
        """The shared bucket did not answer: retry later, nothing was recorded."""
        return error_response(request, 503, f"{exc}; try again later")

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        """An unknown address: a page for a browser, the usual JSON for clients."""
        return error_response(request, exc.status_code, str(exc.detail), exc.headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, exc: RequestValidationError) -> Response:
        """One line naming the first problem, never the input (which may be huge)."""
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid request"}
        where = ".".join(str(part) for part in first.get("loc", ()) if part != "body")
        message = str(first.get("msg", "invalid")).splitlines()[0] if first.get("msg") else "invalid"
        detail = f"invalid request: {where}: {message}" if where else f"invalid request: {message}"
        return error_response(request, 422, detail)

    return app


def make_runner(settings: ServerSettings) -> Runner:
    if settings.runner == "ray":
        from nsml.runners.ray_cluster import RayRunner  # Ray is an optional extra

        return RayRunner(
            settings.ray_address,
            settings.sandboxed,
            settings.ray_cpus_per_session,
            max_per_user=settings.max_sessions_per_user,
        )
    return LocalRunner(
        settings.max_concurrent,
        sandboxed=settings.sandboxed,
        hidden=(settings.home,),
        gpus=settings.gpus,
        environments=settings.home / "envs",
        max_per_user=settings.max_sessions_per_user,
    )


def write_server_file(settings: ServerSettings, token: str) -> None:
    """Publish the address and token for clients, readable by the owner only."""
    path = settings.home / SERVER_FILE
    partial = path.with_suffix(".tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        json.dump(
            {
                "url": settings.public_url,
                "token": token,
                "pid": os.getpid(),
                "home": str(settings.home),
                "version": __version__,
                "started_at": datetime.now(timezone.utc).isoformat(),
            },
            handle,
        )
    os.chmod(partial, 0o600)
    os.replace(partial, path)


def remove_server_file(settings: ServerSettings) -> None:
    path = settings.home / SERVER_FILE
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass
