"""What the runner gets for a session: the :class:`RunSpec` with its paths, environment,
limits and the address its train split can be fetched from.

The server owns its routes, so the download URL is built here and travels in the spec: a
runner (on this host or a Ray node) never composes a server route itself.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nsml.artifacts import ArtifactStore
from nsml.runners import RunSpec
from nsml.server.services.limits import LimitPolicy
from nsml.server.settings import ServerSettings
from nsml.store import AbstractStore, Session

# the route of ``nsml.server.routers.runtime.download_train_split``, under the API prefix
TRAIN_SPLIT_ROUTE = "/api/v1/sessions/{name}/dataset"


class SessionSpecs:
    def __init__(
        self, store: AbstractStore, artifacts: ArtifactStore, settings: ServerSettings, resources: LimitPolicy
    ) -> None:
        self.store = store
        self.artifacts = artifacts
        self.settings = settings
        self.resources = resources

    def build(self, session: Session, token: str) -> RunSpec:
        artifacts = self.artifacts
        checkpoint_dir, resume_args = self._resume_source(session)
        cache_dir = artifacts.local_cache_dir(session.owner)  # mounted even before the first entry
        return RunSpec(
            session_id=session.id,
            name=session.name,
            argv=[sys.executable, session.entry, *session.args, *resume_args],
            checkpoint_dir=checkpoint_dir,
            work_dir=artifacts.local_work_dir(session.id),
            env={
                "NSML_ON_PLATFORM": "1",
                "NSML_SESSION": session.name,
                "NSML_SESSION_TOKEN": token,
                "NSML_DATASET_NAME": session.dataset,
                "NSML_DATASET_VERSION": self._dataset_version(session.dataset),
                "NSML_GPU_NUM": str(session.gpus),
                **({"OMP_NUM_THREADS": str(session.cpus)} if session.cpus else {}),
            },
            log_path=artifacts.local_log_path(session.id),
            train_dir=artifacts.local_train_dir(session.dataset),
            dataset_url=self.train_split_url(session),
            api_url=self.settings.public_url,
            api_socket=self.settings.api_socket,
            gpus=session.gpus,
            cpus=session.cpus,
            cache_dir=cache_dir,
            owner=session.owner,
            limits=self.resources.for_session(session),
            source_archive=artifacts.local_source_archive(session.id),
        )

    def train_split_url(self, session: Session) -> str | None:
        """Where a runner on another machine fetches the train split, with the session's
        token; None while the server has no address yet."""
        if not self.settings.public_url:
            return None
        return self.settings.public_url + TRAIN_SPLIT_ROUTE.format(name=session.name)

    def _resume_source(self, session: Session) -> tuple[Path | None, list[str]]:
        """The checkpoint folder and the 2018 arguments that make ``paused`` load it."""
        if not session.resume_checkpoint:
            return None, []
        name, _, checkpoint = session.resume_checkpoint.partition(":")  # names hold no ':'
        owner, dataset, number = name.split("/")
        source = self.store.get_session(owner, dataset, int(number))
        folder = self.artifacts.local_checkpoint_dir(source.id, checkpoint)
        return folder, ["--pause", "1", "--mode", "train", "--iteration", checkpoint]

    def _dataset_version(self, name: str) -> str:
        """Changes whenever a dataset of that name is registered or replaced (part of cache keys)."""
        dataset = self.store.get_dataset(name)
        version = f":v{dataset.version}" if dataset.version > 1 else ""  # older keys stay valid
        return f"{dataset.id}:{dataset.created_at.isoformat()}:{dataset.size_bytes}{version}"
