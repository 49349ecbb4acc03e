"""The job-state port: what the job endpoints need from the job tracker's ``jobs.state``.

The adapter is ``leadstream.jobs.JobStateView`` (tails the compacted topic). The port is kept
this small so tests and a process without the tracker can hand in something else.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol


class JobStateLike(Protocol):
    """The fields of a job's state the API shows."""

    @property
    def status(self) -> str: ...
    @property
    def expected_total(self) -> int | None: ...
    @property
    def counts(self) -> Mapping[str, int]: ...
    @property
    def rejected_by_reason(self) -> Mapping[str, int]: ...
    @property
    def verdicts(self) -> Mapping[str, int]: ...
    @property
    def batched(self) -> int: ...
    @property
    def synced(self) -> int: ...
    @property
    def started_at(self) -> int: ...
    @property
    def updated_at(self) -> int: ...
    @property
    def completed_at(self) -> int | None: ...
    @property
    def rate_per_s(self) -> float: ...
    @property
    def eta_s(self) -> float | None: ...
    @property
    def error(self) -> str | None: ...


class JobStates(Protocol):
    def get(self, job_id: str) -> JobStateLike | None: ...

    def close(self) -> None: ...


class NoJobStates:
    """No tracker view (e.g. the view is disabled): the API answers from Postgres alone."""

    def get(self, job_id: str) -> JobStateLike | None:
        return None

    def close(self) -> None:
        return None
