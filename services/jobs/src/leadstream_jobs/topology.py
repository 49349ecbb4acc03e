"""The tracker's topics: checks the catalog topics it needs and creates its internal one.

``jobs.deltas`` (internal to the tracker, JSON deltas keyed by job id) must have as many
partitions as ``jobs.state``: the table writes a job's state to the partition its deltas
come from.
"""

from __future__ import annotations

from leadstream.errors import LeadStreamError
from leadstream.topics import Kind, TopicSettings, TopicSpec, admin_client, apply, observe
from leadstream_jobs.counter import DELTAS_TOPIC, INPUTS

STATE_TOPIC = "jobs.state"

DELTAS = TopicSpec(
    name=DELTAS_TOPIC,
    kind=Kind.STREAM,
    value_schema=None,
    key="job_id",
    producers=("jobs (counter)",),
    consumers=("jobs (table)",),
    description="Per-job count deltas of the job tracker (internal, JSON).",
    # The counter's producer (the stage runtime) compresses with lz4, which aiokafka (faust)
    # cannot read without an extra library; the broker stores this topic as gzip instead.
    config={"compression.type": "gzip"},
)


class TopologyError(LeadStreamError):
    """The topics the tracker needs are missing or do not fit together."""


def ensure_topics(settings: TopicSettings, timeout_s: float = 30.0) -> int:
    """Create ``jobs.deltas`` if needed; check the inputs and ``jobs.state`` exist.

    Returns the partition count shared by ``jobs.deltas`` and ``jobs.state``.
    """
    client = admin_client(settings)
    report = apply(settings, catalog=(DELTAS,), admin=client, timeout_s=timeout_s)
    if not report.ok:
        raise TopologyError(f"{settings.topic(DELTAS_TOPIC)}: {report.unfixable}")
    needed = [settings.topic(t) for t in (*INPUTS, STATE_TOPIC, DELTAS_TOPIC)]
    observed = observe(client, needed, timeout_s)
    missing = [t for t in needed if t not in observed]
    if missing:
        raise TopologyError(
            f"missing topics: {', '.join(missing)}; run `leadstream topics apply` first"
        )
    state = observed[settings.topic(STATE_TOPIC)].partitions
    deltas = observed[settings.topic(DELTAS_TOPIC)].partitions
    if state != deltas:
        raise TopologyError(
            f"{settings.topic(DELTAS_TOPIC)} has {deltas} partitions and "
            f"{settings.topic(STATE_TOPIC)} {state}: they must be equal"
        )
    return state
