"""Typed settings from ``JOBPULSE_*`` environment variables (see API.md, "Configuration")."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field
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
    retention_days: float | None = None  # finished jobs and their events expire after this (MongoDB TTL)

    # Auth.
    api_keys: str | None = None  # "token=subject:role,…"
    jwt_secret: str | None = None
    metrics_token: str | None = None

    # Workers.
    worker_concurrency: int = Field(default=4, ge=1)
    visibility_timeout: float = Field(default=300, gt=0)
    wait_time_seconds: float = Field(default=20, ge=0, le=20)
    max_messages: int = Field(default=10, ge=1, le=10)
    shutdown_grace_seconds: float = Field(default=30, ge=0)
    backoff_base_seconds: float = Field(default=2.0, ge=0)
    backoff_max_seconds: float = Field(default=3600.0, ge=0)
    job_modules: str = ""  # extra modules that register job types, comma-separated

    # Sweeper: PENDING jobs never sent (or due) are sent by any process running it.
    sweep_interval_seconds: float = Field(default=5.0, gt=0)
    sweep_grace_seconds: float = Field(default=10.0, ge=0)

    # Limits.
    max_payload_bytes: int = Field(default=262_144, gt=0)
    max_request_bytes: int = Field(default=8 * 1024 * 1024, gt=0)
    max_batch_size: int = Field(default=1000, gt=0)
    max_query_depth: int = Field(default=10, gt=0)
    max_query_tokens: int = Field(default=2000, gt=0)
    max_aliases: int = Field(default=30, gt=0)
    idempotency_window_hours: float = Field(default=24, gt=0)
    webhook_allow_private: bool = False
    webhook_timeout_seconds: float = Field(default=30.0, gt=0)

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "INFO"
    log_format: str = "auto"  # auto | json | console

    @property
    def job_module_names(self) -> list[str]:
        return [name.strip() for name in self.job_modules.split(",") if name.strip()]

    @property
    def database_path(self) -> Path:
        """The embedded SQLite file (jobs, events and the queue in one database)."""
        return self.data_dir / "jobpulse.sqlite3"
