"""The topic catalog: every topic LeadStream uses, declared once, in one place."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from types import MappingProxyType

from leadstream.topics.errors import UnknownTopicError
from leadstream.topics.spec import BATCH_MAX_MESSAGE_BYTES, Kind, TopicSpec

EMAIL_KEY = "email_normalized (UTF-8 string)"
_BIG: Mapping[str, str] = MappingProxyType({"max.message.bytes": str(BATCH_MAX_MESSAGE_BYTES)})
_NONE: Mapping[str, str] = MappingProxyType({})

# Stages that dead-letter records they cannot decode or process: dlq.<stage>.
DLQ_STAGES: tuple[str, ...] = (
    "filter",
    "verify",
    "batch",
    "bison-sync",
    "jobs",
    "audit",
    "registrations",
)


def _stream(
    name: str,
    kind: Kind,
    schema: str,
    *,
    key: str,
    producers: tuple[str, ...],
    consumers: tuple[str, ...],
    about: str,
    config: Mapping[str, str] = _NONE,
) -> TopicSpec:
    return TopicSpec(name, kind, schema, key, producers, consumers, about, config)


_STREAMS: tuple[TopicSpec, ...] = (
    _stream(
        "contacts.raw", Kind.REPLAY, "ContactSubmitted",
        key="lower-cased trimmed email (UTF-8 string)",
        producers=("ingest", "upstream producers"), consumers=("filter", "jobs"),
        about="Contacts as submitted; the replay source.",
    ),
    _stream(
        "contacts.filtered", Kind.STREAM, "ContactFiltered",
        key=EMAIL_KEY, producers=("filter",), consumers=("verify", "jobs"),
        about="Normalized, unique, unsuppressed contacts.",
    ),
    _stream(
        "contacts.rejected", Kind.STREAM, "ContactRejected",
        key="email_normalized, else lower-cased trimmed email",
        producers=("filter", "verify"), consumers=("jobs",),
        about="Contacts refused by a stage, with the reason and the original fields.",
    ),
    _stream(
        "contacts.verified", Kind.STREAM, "ContactVerified",
        key=EMAIL_KEY, producers=("verify",), consumers=("batch", "jobs"),
        about="Contacts with their deliverability verdict.",
    ),
    _stream(
        "batches.ready", Kind.STREAM, "BatchReady",
        key="batch_id", producers=("batch",), consumers=("bison-sync", "jobs"),
        about="Closed campaign batches to upload.", config=_BIG,
    ),
    _stream(
        "batches.synced", Kind.STREAM, "BatchSynced",
        key="batch_id", producers=("bison-sync",), consumers=("jobs",),
        about="Per-contact results of an upload.", config=_BIG,
    ),
    _stream(
        "bison.events", Kind.STREAM, "BisonEvent",
        key="lead email lower-cased, else workspace id",
        producers=("ingest (webhook receiver)", "bison-sync (poll)"), consumers=("bison-sync",),
        about="Email Bison events: replies, bounces, unsubscribes.",
    ),
    _stream(
        "registrations", Kind.STREAM, "Registration",
        key="phone_e164", producers=("ingest",), consumers=("registration writer",),
        about="Landing-page registrations.",
    ),
    _stream(
        "audit.requests", Kind.AUDIT, "RequestLog",
        key="request_id", producers=("ingest",), consumers=("audit",),
        about="HTTP request log.",
    ),
    _stream(
        "audit.events", Kind.AUDIT, "AuditEvent",
        key="event_id", producers=("every service",), consumers=("audit",),
        about="Auditable actions (replays, DLQ redrives, API keys, suppressions).",
    ),
    _stream(
        "jobs.events", Kind.REPLAY, "JobEvent",
        key="job_id", producers=("ingest",), consumers=("jobs",),
        about="Job created / sealed with its expected total.",
    ),
    _stream(
        "jobs.state", Kind.STATE, "JobState",
        key="job_id", producers=("jobs",), consumers=("ingest (job status)", "jobs"),
        about="Latest state of every job (compacted table changelog).",
    ),
)  # fmt: skip

_DLQS: tuple[TopicSpec, ...] = tuple(
    TopicSpec(
        name=f"dlq.{stage}",
        kind=Kind.DLQ,
        value_schema=None,
        key="the original record's key",
        producers=(f"{stage} (stage runtime)",),
        consumers=("operators", "ingest (DLQ admin)"),
        description=f"Records the {stage} stage could not decode or process: the original "
        "bytes; headers name the source topic, partition, offset, stage and error.",
    )
    for stage in DLQ_STAGES
)

CATALOG: tuple[TopicSpec, ...] = _STREAMS + _DLQS
_BY_NAME = {spec.name: spec for spec in CATALOG}


def topic(name: str) -> TopicSpec:
    """The catalog entry of a logical topic name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnknownTopicError(f"{name!r} is not in the topic catalog") from None


def dlq_topic(stage: str) -> TopicSpec:
    """The dead-letter topic of a stage."""
    return topic(f"dlq.{stage}")


def schema_topics(catalog: Sequence[TopicSpec] = CATALOG) -> Iterator[TopicSpec]:
    """The topics that carry an Avro value."""
    return (spec for spec in catalog if spec.value_schema is not None)
