"""Settings of the jobs service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from leadstream.settings import Settings


class JobsSettings(Settings):
    """Settings of the job-state tracker."""

    consumer_group: str = "leadstream-jobs"
    metrics_port: int = 9105
    web_port: int = 6066
