"""Typed settings from ``JOBPULSE_*`` environment variables (see API.md, "Configuration")."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import AliasChoices, Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["Settings"]


class Settings(BaseSettings):
    """Every knob jobpulse has; unset backends mean the embedded ones."""

    model_config = SettingsConfigDict(env_prefix="JOBPULSE_", extra="ignore", frozen=True)

    data_dir: Path = Path(".jobpulse")

    # Backends: unset means embedded (SQLite file, SQLite queue, in-process events).
    mongodb_url: str | None = None
    mongodb_database: str = "jobpulse"
    sqs_endpoint_url: str | None = None
    aws_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("JOBPULSE_AWS_REGION", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    sqs_queue_prefix: str = "jobpulse-"
    sqs_create_queues: bool = True  # false: only verify that the queues exist
    redis_url: str | None = None
    redis_channel_prefix: str = "jobpulse:"
    #: finished jobs, their events and logs are deleted this many days after they finished (both
    #: stores; MongoDB also by TTL); 0 or unset: kept forever
    retention_days: float | None = Field(default=30.0, ge=0)

    # Auth.
    api_keys: str | None = None  # "token=subject:role,…"
    jwt_secret: str | None = None
    metrics_token: str | None = None
    #: ``jobpulse worker`` serves ``/metrics`` and ``/healthz`` on this port (on ``host``); unset: none.
    #: Starts, completions, failures and run times are counted where jobs run, so in distributed
    #: mode only the workers have them.
    worker_metrics_port: int | None = Field(default=None, ge=1, le=65535)
    # Signs the job tokens of external processors (claimJob); unset: derived from the JWT secret,
    # else generated and kept in the data directory (set it when several API processes run).
    job_token_secret: str | None = None

    # Workers.
    worker_concurrency: int = Field(default=4, ge=1)
    #: the lease (and message visibility) a claim holds without a heartbeat; workers beat every third
    visibility_timeout: float = Field(default=30, gt=0)
    #: per-type leases, "type=seconds,…" (over the type's own ``lease_seconds``)
    type_lease_seconds: str = ""
    wait_time_seconds: float = Field(default=20, ge=0, le=20)
    max_messages: int = Field(default=10, ge=1, le=10)
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    #: workers write their registry record this often; silent for 3 intervals: LOST
    worker_heartbeat_seconds: float = Field(default=10.0, gt=0)
    backoff_base_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=3600.0, ge=0)
    job_modules: str = ""  # extra modules that register job types, comma-separated
    # Job types run by external processors (claimJob), declared without code: "name:description,…".
    external_types: str = ""

    # Sweeper: PENDING jobs never sent (or due) are sent by any process running it.
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_grace_seconds: float = Field(default=10.0, ge=0)
    scheduler_enabled: bool = True  # run the schedule loop in serve, api and worker processes
    scheduler_poll_seconds: float = Field(default=1.0, gt=0)  # longest wait before looking again
    schedule_misfire_grace_seconds: float = Field(default=1.0, ge=0)  # older ticks were missed

    # Operations (issue 15): stats per minute (each process flushes its counts this often) and
    # retention (every process deletes expired jobs, a batch per write, this often).
    stats_flush_seconds: float = Field(default=5.0, gt=0)
    retention_interval_seconds: float = Field(default=60.0, gt=0)
    retention_batch: int = Field(default=200, ge=1)

    # Limits.
    max_payload_bytes: int = Field(default=262_144, gt=0)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    #: permessage-deflate on websockets. Off: events are small JSON, and each compressed socket
    #: would keep its own zlib state and spend delivery CPU on it for little gain (bench/README.md).
    ws_compression: bool = False
    max_batch_size: int = Field(default=1000, gt=0)
    max_query_depth: int = Field(default=10, gt=0)
    max_query_tokens: int = Field(default=2000, gt=0)
    max_aliases: int = Field(default=30, gt=0)
    idempotency_window_hours: float = Field(default=24, gt=0)
    #: jobs each token subject may submit per period across all API processes ("100/1s",
    #: "10/minute"); unset: no limit (core/submit_rate.py)
    rate_limit: str | None = None
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=30.0, gt=0)

    # Large payloads and results (README, "Large payloads and results (S3)"): JSON values over the
    # threshold are kept in S3 (or, on the embedded store, files under the data directory) and the
    # job holds a reference.
    s3_bucket: str | None = None
    s3_endpoint_url: str | None = None
    s3_prefix: str = "jobpulse/"
    s3_threshold_bytes: int = Field(default=65_536, ge=0)
    s3_inline_max_bytes: int = Field(default=8 * 1024 * 1024, gt=0)  # larger: `result` null, use resultUrl
    s3_presign_seconds: int = Field(default=3600, ge=1, le=604_800)
    s3_read_buckets: str = ""  # more buckets `image_resize` may read s3:// inputs from, comma-separated
    s3_cache_bytes: int = Field(default=64 * 1024 * 1024, ge=0)  # resolved values kept per process
    embedded_blobs: bool = True  # on the SQLite store without S3: large values in <data_dir>/blobs
    cloudwatch_endpoint_url: str | None = None  # where SQS's queue-age metric is read (unset: AWS's)

    # Alerts (README, "Alerts"): a webhook POST and an ERROR log line, once per condition per cool-down.
    alert_webhook_url: str | None = None
    alert_timeout_seconds: float = Field(default=5.0, gt=0)
    alert_cooldown_seconds: float = Field(default=900.0, ge=0)
    alert_failure_rate: float | None = Field(default=None, ge=0, le=100)  # percent; unset: off
    alert_window_seconds: float = Field(default=300.0, gt=0)
    alert_min_samples: int = Field(default=20, ge=1)
    alert_queue_age_seconds: float | None = Field(default=None, gt=0)  # unset: off
    alert_check_interval_seconds: float = Field(default=30.0, gt=0)
    alert_queue_depth: int | None = Field(default=None, ge=0)  # waiting in a queue; unset: off
    alert_slow_seconds: float | None = Field(default=None, gt=0)  # a type's p95 run time; unset: off

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    #: how long ``serve``, ``api`` and ``worker`` wait for a backend that is down at start, then exit 2
    startup_timeout: float = Field(default=30.0, ge=0)
    log_format: str = "auto"  # auto | json | console

    @field_validator("type_lease_seconds")
    @classmethod
    def _leases_well_formed(cls, value: str) -> str:
        for entry in filter(None, (e.strip() for e in value.split(","))):
            name, _, seconds = entry.partition("=")
            try:
                ok = bool(name.strip()) and float(seconds) > 0
            except ValueError:
                ok = False
            if not ok:
                raise ValueError(f"expected type=seconds (seconds > 0), got {entry!r}")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit_well_formed(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        from core.submit_rate import parse_rate_limit  # imports ``limits``: only when set

        parse_rate_limit(value)
        return value.strip()

    @property
    def job_module_names(self) -> list[str]:
        return [name.strip() for name in self.job_modules.split(",") if name.strip()]

    @property
    def type_lease_overrides(self) -> dict[str, float]:
        """``type_lease_seconds`` parsed; a malformed entry is refused when the settings load."""
        leases: dict[str, float] = {}
        for entry in filter(None, (e.strip() for e in self.type_lease_seconds.split(","))):
            name, _, seconds = entry.partition("=")
            leases[name.strip()] = float(seconds)
        return leases

    @property
    def s3_read_bucket_names(self) -> list[str]:
        return [name.strip() for name in self.s3_read_buckets.split(",") if name.strip()]

    @property
    def retention(self) -> timedelta | None:
        """How long finished jobs are kept; ``None``: forever."""
        return timedelta(days=self.retention_days) if self.retention_days else None

    @property
    def database_path(self) -> Path:
        """The embedded SQLite file (jobs, events and the queue in one database)."""
        return self.data_dir / "jobpulse.sqlite3"
