"""Settings of the jobs service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from leadstream.events import EventSettings


class JobsSettings(EventSettings):
    """Settings of the job-state tracker.

    The counter (the stage runtime's loop) consumes as ``leadstream-jobs`` (the stage name fixes
    it; :attr:`consumer_group` must keep that value), the faust table app as
    ``<consumer_group>-table``. Runtime tunables (batch size, instance id) are
    ``LEADSTREAM_RUNTIME_*``.
    """

    consumer_group: str = "leadstream-jobs"
    metrics_port: int = Field(
        default=9105, description="Unused: /metrics is served on web_port by the faust web server."
    )
    web_port: int = Field(default=6066, description="faust web server: /healthz and /metrics.")
    web_host: str = Field(default="127.0.0.1", description="Address the web server binds.")
    data_dir: Path = Field(
        default=Path(".local/jobs"),
        description="faust's data directory (relative to the working directory; gitignored).",
    )
    commit_interval_s: float = Field(
        default=1.0, gt=0, description="How often the table commits: the staleness of jobs.state."
    )
    session_timeout_s: float = Field(
        default=10.0, gt=0, description="Consumer session timeout of the table app."
    )
    stall_limit_s: float = Field(
        default=120.0,
        gt=0,
        description="Deltas counted and none applied by the table for this long restart the "
        "service in place (leadstream_jobs/watch.py).",
    )
    restart_patience_s: float = Field(
        default=600.0,
        ge=0,
        description="After a crash of a running service, start-up failures (Kafka still down) "
        "are retried in place for this long before the service gives up and exits.",
    )
    startup_timeout_s: float = Field(
        default=30.0,
        gt=0,
        description="How long start-up waits for Kafka to list and create the tracker's topics.",
    )
