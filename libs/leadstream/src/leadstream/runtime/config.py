"""Tunables of the stage runtime (environment prefix ``LEADSTREAM_RUNTIME_``)."""

from __future__ import annotations

import os
import socket

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_instance_id() -> str:
    return f"{socket.gethostname()}-{os.getpid()}"


class RuntimeConfig(BaseSettings):
    """How a stage polls, batches, retries and commits.

    ``instance_id`` names this process's transactional id. Give each instance a *stable* one
    (``LEADSTREAM_RUNTIME_INSTANCE_ID``: e.g. the replica index) so a restarted instance
    fences its predecessor at once and aborts the transaction it left open, instead of every
    read_committed reader waiting for ``transaction_timeout_ms``.
    """

    model_config = SettingsConfigDict(env_prefix="LEADSTREAM_RUNTIME_", extra="ignore", frozen=True)

    instance_id: str = Field(default_factory=_default_instance_id)
    batch_size: int = 1000
    poll_timeout_s: float = 0.5
    transaction_timeout_ms: int = 10_000
    max_retry_attempts: int = 5
    retry_base_s: float = 0.5
    retry_cap_s: float = 30.0
    session_timeout_ms: int = 10_000
    max_poll_interval_ms: int = 300_000
    lag_interval_s: float = 10.0
    """How often the consumer-lag gauge is refreshed (from the client's own numbers)."""
    group_stuck_s: float = 60.0
    """A consumer out of its group this long (librdkafka's statistics) is replaced."""
    static_membership: bool = False
    """Join the consumer group as a static member (``group.instance.id`` = group + instance
    id). A restarted instance then gets its partitions back at once, without a rebalance and
    without waiting for the dead one's session to time out; the price is that an instance
    that stops for good keeps its partitions for ``session_timeout_ms`` (static members do
    not leave the group). Only with a stable ``instance_id`` (the service launcher sets
    both)."""
    gc_gen0_threshold: int = Field(default=50_000, ge=0)
    """While the loop runs, the garbage collector's first-generation threshold (Python's
    default is 700 container allocations): a batch allocates thousands of dicts and lists, and
    collections every 700 of them cost ~15% of the filter's handler time. 0 leaves the
    interpreter's setting alone. The previous thresholds are restored when ``run()`` ends."""
