"""Registering and listing datasets."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.datasets.layout import LayoutError, check_layout
from nsml.evaluation.metrics import metric_info
from nsml.names import InvalidName, validate_name
from nsml.server.errors import BadRequest, ConflictError, NotFoundError
from nsml.store import AbstractStore, Conflict, Dataset, NotFound, User


class DatasetService:
    def __init__(self, store: AbstractStore, artifacts: ArtifactStore, default_daily_limit: int = 0) -> None:
        self.store = store
        self.artifacts = artifacts
        # a competition without limits lets its public board be probed one label at a
        # time, so every new one starts with the operator's daily limit (0: none)
        self.default_daily_limit = default_daily_limit

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
        self, owner: User, name: str, metric: str, description: str, upload_id: str
    ) -> Dataset:
        """Unpack an uploaded folder, check its layout, then register it; the upload is
        discarded however this ends."""
        try:
            with self.artifacts.staged_dataset() as staging:
                self._validate(name, metric)
                self.artifacts.unpack_upload(upload_id, staging)
                return self._register(owner, name, metric, description, staging)
        except (BadArchive, LayoutError) as exc:
            raise BadRequest(str(exc)) from None
        finally:
            self.artifacts.discard_upload(upload_id)

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
        summary = check_layout(staging)
        try:
            self.artifacts.keep_dataset(staging, name)
        except FileExistsError:
            raise ConflictError(f"dataset {name!r} already exists; push it under another name") from None
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
            raise ConflictError(f"dataset {name!r} already exists; push it under another name") from None
        except Exception:
            self.artifacts.delete_dataset(name)
            raise
        if dataset.test_size and self.default_daily_limit and default_limit:
            dataset = self.store.update_dataset(name, daily_limit=self.default_daily_limit)
        return dataset
