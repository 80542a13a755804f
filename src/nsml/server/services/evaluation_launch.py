"""Starting a checkpoint's script for an evaluation, on the server's runner.

The script runs in a fresh copy of the session's source as shipped (never its work
dir), with the checkpoint mounted read-only and no dataset at all, and only in a
sandbox unless the operator chose otherwise. What is said to it once it runs is
``nsml.evaluation.driver``'s business.
"""

from __future__ import annotations

import sys
from pathlib import Path

from nsml.artifacts import ArtifactStore, BadArchive
from nsml.evaluation.driver import EvaluationFailed, ReplyBudget, evaluation_argv
from nsml.runners import Runner, RunSpec
from nsml.runners.base import EvaluationProcess
from nsml.runners.environments import EnvironmentFailed
from nsml.server.errors import BadRequest, ConflictError
from nsml.server.services.sessions import SessionService
from nsml.server.settings import ServerSettings
from nsml.store import Session


class EvaluationLauncher:
    def __init__(
        self, artifacts: ArtifactStore, runner: Runner, settings: ServerSettings, sessions: SessionService
    ) -> None:
        self.artifacts = artifacts
        self.runner = runner
        self.settings = settings
        self.sessions = sessions

    @property
    def replies(self) -> ReplyBudget:
        """The operator's limits on the size of ``infer``'s replies."""
        return ReplyBudget(self.settings.eval_reply_bytes_per_input, self.settings.max_eval_reply_bytes)

    def check(self, session: Session, checkpoint: str, batch_size: int) -> None:
        """Refuse, before anything starts, an evaluation that could not (or may not) run."""
        if not 1 <= batch_size <= 100_000:
            raise BadRequest("the batch size must be between 1 and 100000")
        self.sessions.get_checkpoint(session, checkpoint)
        if not self.runner.sandboxed and not self.settings.allow_unsandboxed_eval:
            raise ConflictError(
                f"submissions are only evaluated in a sandbox, and {self.settings.sandbox_problem}; "
                "the operator may start the server with --allow-unsandboxed to evaluate without one"
            )

    def start(self, session: Session, checkpoint: str, folder: Path) -> tuple[EvaluationProcess, Path]:
        """The running script, working in ``folder``/work, and the file its output goes to."""
        work = folder / "work"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            self.artifacts.unpack_source(session.id, work, max_bytes=self.settings.max_unpacked_bytes)
        except BadArchive as exc:
            raise EvaluationFailed(f"the shipped source could not be unpacked: {exc}") from None
        spec = RunSpec(
            session_id=session.id,
            name=session.name,
            argv=evaluation_argv(sys.executable, session, checkpoint),
            work_dir=work,
            env={"NSML_ON_PLATFORM": "1", "NSML_SESSION": session.name, "NSML_DATASET_NAME": session.dataset},
            log_path=folder / "log.txt",
            checkpoint_dir=self.artifacts.local_checkpoint_dir(session.id, checkpoint),
            limits=self.sessions.resources.for_evaluation(session),
            source_archive=self.artifacts.local_source_archive(session.id),
        )
        try:
            return self.runner.start_evaluation(spec), spec.log_path
        except EnvironmentFailed as exc:
            raise EvaluationFailed(str(exc)) from None
