"""Server settings, fixed at start-up."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from nsml.sizes import GIB, MIB


def _default_concurrency() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1)


@dataclass
class ServerSettings:
    home: Path
    db_url: str = ""
    host: str = "127.0.0.1"
    port: int = 0
    local_user: str = "user"
    max_concurrent: int = field(default_factory=_default_concurrency)
    max_upload_mb: int = 200
    max_checkpoint_mb: int = 4096
    max_json_mb: int = 32  # any request body that is not an upload
    token_ttl_hours: float = 160.0
    credits_enforced: bool = False
    credit_interval_s: float = 10.0
    gpus: tuple[str, ...] = ()  # GPU ids of this host sessions may use
    max_gpus_per_session: int = 8  # what one session may ask for (NSML_MAX_GPUS_PER_SESSION)
    public_url: str = ""  # filled in once the port is bound
    sandbox: str = "auto"  # "auto": bubblewrap when it works; "on": required; "off"
    allow_unsandboxed_eval: bool = False
    sandboxed: bool = False  # resolved at start-up
    sandbox_problem: str = ""  # why the sandbox is not in use
    api_socket: Path | None = None  # Unix socket that sandboxed sessions reach the API on
    runner: str = "local"  # "local": this host; "ray": a Ray cluster
    ray_address: str = ""  # the cluster's GCS address, e.g. 10.0.0.5:6379
    ray_cpus_per_session: float = 1.0
    # what a session or evaluation may use (0: not limited); see nsml.server.services.limits
    default_memory_bytes: int = 4 * GIB  # nsml run --memory, when not given
    max_memory_bytes: int = 0  # the most --memory may ask for; 0: the host's RAM
    default_shm_bytes: int = 512 * MIB  # nsml run --shm-size, when not given
    max_shm_bytes: int = 8 * GIB
    tmp_bytes: int = 1 * GIB  # /tmp of every run
    max_pids: int = 1024  # processes and threads of one run
    work_quota_bytes: int = 10 * GIB  # what a session's work dir may hold
    log_limit_bytes: int = 100 * MIB  # one run's log output
    eval_memory_bytes: int = 4 * GIB  # an evaluation's memory
    default_cpus: float = 0.0  # a hard CPU cap when -c is not given; 0: none (a fair share only)
    # fair share: running sessions and evaluations one owner may have at once (0: no cap)
    max_sessions_per_user: int = 0  # NSML_MAX_SESSIONS_PER_USER
    max_evaluations_per_user: int = 0  # NSML_MAX_EVALUATIONS_PER_USER
    # submissions per user per 24 h that a new competition starts with (0: none), so the
    # public board is not an oracle on the test labels from the first minute
    default_daily_limit: int = 5  # NSML_DEFAULT_DAILY_LIMIT
    # storage (NSML_STORAGE_QUOTA_MB, NSML_MAX_UNPACKED_MB): checkpoints, cache entries and
    # uploads of one account together; 0: no quota. The unpack cap holds whatever the quota.
    storage_quota_mb: int = 0
    max_unpacked_mb: int = 16384
    max_source_mb: int = 1024  # what shipped source may unpack to (NSML_MAX_SOURCE_MB)
    max_download_mb: int = 1024  # what one `nsml download` of a session's outputs carries
    # evaluation replies (NSML_EVAL_REPLY_BYTES_PER_INPUT, NSML_MAX_EVAL_REPLY_MB)
    eval_reply_bytes_per_input: int = 4096
    max_eval_reply_mb: int = 16
    # the janitor (NSML_JANITOR_INTERVAL_S, NSML_STALE_UPLOAD_S, NSML_STALE_ENV_S); 0: no janitor
    janitor_interval_s: float = 600.0
    stale_upload_s: float = 6 * 3600.0
    stale_env_s: float = 7 * 86400.0
    # a running session with no report and no CPU use this long is flagged idle and its
    # owner notified (NSML_IDLE_AFTER_S); 0: never
    idle_after_s: float = 1800.0
    # artifacts in an S3-protocol bucket shared by servers (NSML_ARTIFACTS=s3://BUCKET/PREFIX,
    # NSML_S3_ENDPOINT_URL for MinIO, Ceph or moto); "": files under ``home`` only
    artifacts_url: str = ""
    s3_endpoint_url: str = ""
    # several servers on one database (NSML_SERVER_ID, NSML_LEASE_S): this server's id
    # ("" picks one fixed per host and home) and how long its lease lasts unrenewed
    server_id: str = ""
    lease_s: float = 20.0
    # how long this server trusts a user token it checked (NSML_AUTH_CACHE_S; 0: never).
    # A logout, disable, role or team change made here takes effect at once; one made
    # through another server of the same database, within this many seconds.
    auth_cache_s: float = 10.0

    def __post_init__(self) -> None:
        self.home = Path(self.home)
        if not self.db_url:
            self.db_url = f"sqlite:///{self.home / 'nsml.db'}"

    @property
    def max_upload_bytes(self) -> int:
        return self.max_upload_mb * 1024 * 1024

    @property
    def max_checkpoint_bytes(self) -> int:
        return self.max_checkpoint_mb * 1024 * 1024

    @property
    def storage_quota_bytes(self) -> int:
        return self.storage_quota_mb * 1024 * 1024

    @property
    def max_unpacked_bytes(self) -> int:
        return self.max_unpacked_mb * 1024 * 1024

    @property
    def max_download_bytes(self) -> int:
        return self.max_download_mb * 1024 * 1024

    @property
    def max_source_bytes(self) -> int:
        return self.max_source_mb * 1024 * 1024

    @property
    def max_eval_reply_bytes(self) -> int:
        return self.max_eval_reply_mb * 1024 * 1024
