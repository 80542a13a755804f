"""Registering and listing datasets."""

from __future__ import annotations

import fnmatch
import shutil
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.datasets.contents import check_contents
from nsml.datasets.layout import LayoutError
from nsml.evaluation.metrics import metric_info
from nsml.fault_points import pause_point
from nsml.names import InvalidName, validate_name
from nsml.server.auth import Principal
from nsml.server.errors import BadRequest, ConflictError, Forbidden, NotFoundError
from nsml.store import AbstractStore, Conflict, Dataset, NotFound, User
from nsml.store.entities import ACTIVE_STATUSES, SubmissionStatus

if TYPE_CHECKING:
    from nsml.server.services.sessions import SessionService

DEFAULT_METRIC = "accuracy"
SCORING = (SubmissionStatus.QUEUED, SubmissionStatus.RUNNING)


class DatasetService:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, default_daily_limit: int = 0) -> None:
        self.store = store
        self.artifacts = artifacts
        # a competition without limits lets its public board be probed one label at a
        # time, so every new one starts with the operator's daily limit (0: none)
        self.default_daily_limit = default_daily_limit
        self._replacing = threading.Lock()  # one version at a time: each is numbered after the last

    def get(self, name: str) -> Dataset:
        try:
            return self.store.get_dataset(name)
        except NotFound:
            raise NotFoundError(f"dataset {name!r} not found; `nsml dataset ls` lists the datasets") from None

    def search(self, pattern: str | None) -> list[Dataset]:
        datasets = self.store.list_datasets()
        if not pattern:
            return datasets
        glob = pattern if any(c in pattern for c in "*?[") else f"*{pattern}*"
        return [d for d in datasets if fnmatch.fnmatchcase(d.name.lower(), glob.lower())]

    def register_upload(
        self, owner: User, name: str, metric: str | None, description: str, upload_id: str
    ) -> Dataset:
        """Unpack an uploaded folder, check its layout and contents, then register it; the
        upload is discarded however this ends."""
        try:
            with self.artifacts.staged_dataset() as staging:
                self._validate(name, metric or DEFAULT_METRIC)
                self.artifacts.unpack_upload(upload_id, staging)
                return self._register(owner, name, metric or DEFAULT_METRIC, description, staging)
        except (BadArchive, LayoutError) as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(upload_id)

    def replace_upload(
        self, who: Principal, name: str, metric: str | None, description: str, upload_id: str
    ) -> Dataset:
        """A new version of the caller's dataset: new sessions read it, running ones keep
        the files they started with; the board and its submissions stay as scored."""
        try:
            with self.artifacts.staged_dataset() as staging:
                current = self._replaceable(who, name, metric)
                self.artifacts.unpack_upload(upload_id, staging)
                summary = check_contents(staging, current.metric)
                with self._replacing:
                    current = self.get(name)
                    self.artifacts.keep_dataset(staging, name, current.version + 1)
                    pause_point("dataset_commit")  # the new version current, not yet recorded
                    try:
                        dataset = self.store.bump_dataset_version(
                            name, current.version, summary.train_size, summary.test_size, summary.size_bytes
                        )
                    except BaseException:
                        self.artifacts.restore_dataset_version(name, current.version)
                        raise
                if description:
                    dataset = self.store.update_dataset(name, description=description)
        except (BadArchive, LayoutError) as exc:
            raise BadRequest(str(exc)) from None
        except (Conflict, NotFound, FileExistsError):
            raise ConflictError(f"dataset {name!r} changed meanwhile; push again") from None
        finally:
            self.artifacts.discard_upload(upload_id)
        self._prune_unless_running(name)
        return dataset

    def _replaceable(self, who: Principal, name: str, metric: str | None) -> Dataset:
        try:
            current = self.store.get_dataset(name)
        except NotFound:
            raise NotFoundError(
                f"dataset {name!r} does not exist; push it without --replace to create it"
            ) from None
        check_organiser(who, current)
        self._refuse_while_scoring(current)
        if metric and metric != current.metric:
            raise BadRequest(
                f"{name} is scored by {current.metric}; a new version keeps its metric "
                "(push under a new name to change it)"
            )
        return current

    def _refuse_while_scoring(self, dataset: Dataset) -> None:
        """A submission is scored on the test set it was sent: not one removed or replaced
        between sending the inputs and reading the labels."""
        scoring = [s for s in self.store.list_submissions(dataset.name) if s.status in SCORING]
        if scoring:
            raise ConflictError(
                f"{len(scoring)} submission(s) on {dataset.name} are being scored; try again when they "
                f"end (within {dataset.eval_timeout_s} s of starting)"
            )

    def _prune_unless_running(self, name: str) -> None:
        """Old versions go once no session could be reading one: a queued session starts
        on the current version, so only running ones hold an old one."""
        if not self.store.list_sessions(dataset=name, statuses=ACTIVE_STATUSES):
            self.artifacts.prune_dataset_versions(name)

    def remove(self, who: Principal, name: str, force: bool, sessions: SessionService) -> Dataset:
        """Remove a dataset and its files; its sessions stay listable under its name.

        Refused while submissions on it are being scored (they end within the evaluation
        time-out) and, without ``force``, while sessions on it are queued or running;
        ``force`` stops those first."""
        dataset = self.get(name)
        check_organiser(who, dataset)
        self._refuse_while_scoring(dataset)
        active = self.store.list_sessions(dataset=name, statuses=ACTIVE_STATUSES)
        if active and not force:
            raise ConflictError(
                f"{len(active)} session(s) on {name} are queued or running (such as {active[0].name}); "
                "stop them, or remove with --force to stop them first"
            )
        try:
            self.store.remove_dataset(name, datetime.now(timezone.utc))  # no new session from here
        except NotFound:
            raise NotFoundError(f"dataset {name!r} not found") from None
        for session in self.store.list_sessions(dataset=name, statuses=ACTIVE_STATUSES):
            sessions.stop_for(session.id, f"stopped: its dataset {name} was removed")
            try:
                sessions.stop(session)
            except ConflictError:
                pass  # it ended meanwhile
        self.artifacts.delete_dataset(name)
        return dataset

    def register_folder(self, owner: User, name: str, metric: str, description: str, source: Path) -> Dataset:
        """Register a folder on the server's own disk (the demo datasets)."""
        self._validate(name, metric)
        with self.artifacts.staged_dataset() as staging:
            shutil.copytree(source, staging, ignore=shutil.ignore_patterns("*.md"))
            # no default daily limit: their test labels ship with the package, so a limit
            # would protect nothing and only stop `make demo` after a few runs a day
            return self._register(owner, name, metric, description, staging, default_limit=False)

    def _validate(self, name: str, metric: str) -> None:
        try:
            validate_name("dataset", name)
            metric_info(metric)
        except (InvalidName, ValueError) as exc:
            raise BadRequest(str(exc)) from None

    def _register(
        self,
        owner: User,
        name: str,
        metric: str,
        description: str,
        staging: Path,
        default_limit: bool = True,
    ) -> Dataset:
        summary = check_contents(staging, metric)
        try:
            self.artifacts.keep_dataset(staging, name)
        except FileExistsError:
            raise self._taken(name) from None
        pause_point("dataset_commit")  # files in place, not yet registered
        try:
            dataset = self.store.create_dataset(
                name,
                owner.id,
                metric,
                description,
                summary.train_size,
                summary.test_size,
                summary.size_bytes,
            )
        except Conflict:
            self.artifacts.delete_dataset(name)  # ours: keeping the staged files created it
            raise self._taken(name) from None
        except Exception:
            self.artifacts.delete_dataset(name)
            raise
        if dataset.test_size and self.default_daily_limit and default_limit:
            dataset = self.store.update_dataset(name, daily_limit=self.default_daily_limit)
        return dataset

    def check_settings(self, who: Principal, dataset: Dataset, options: dict[str, Any]) -> None:
        """A deadline must lie ahead, and cannot move once the competition ended: the board
        then showed private scores, which reopening would leave in everyone's hands."""
        check_organiser(who, dataset)
        if "deadline" not in options:
            return
        if dataset.closed:
            raise ConflictError(
                f"the competition on {dataset.name} has ended; its deadline can no longer change"
            )
        deadline = options["deadline"]
        if deadline is not None and deadline <= datetime.now(timezone.utc):
            raise BadRequest(
                "the deadline is in the past; give a later time, or end the competition now "
                f"with `nsml dataset close {dataset.name}`"
            )

    def _taken(self, name: str) -> ConflictError:
        if self.store.dataset_was_removed(name):
            return ConflictError(f"dataset {name!r} was removed and its sessions keep the name; pick another")
        return ConflictError(
            f"dataset {name!r} already exists; push with --replace to make a new version of it"
        )


def check_organiser(who: Principal, dataset: Dataset) -> None:
    if not who.can_organise(dataset):
        raise Forbidden(f"only the organiser of {dataset.name} ({dataset.owner}) or an admin may change it")
