"""Replay: run a stage again over records it has already handled (after a fix or a rule change).

A replay selects records of a stage's input topics — a time range, an offset range of one
partition, and/or the records of one job — and makes the stage handle them again, by one of two
methods, chosen by :func:`plan` and explained in :attr:`ReplayPlan.reason`:

``reset``
    Rewind the stage's consumer group (``alter_consumer_group_offsets``) to the first selected
    offset of each partition. Nothing is copied: the stage re-reads its input in place. Kafka
    refuses to alter the offsets of a group that has members, so this needs the stage stopped;
    it cannot pick records inside a range (no job filter); and it re-reads everything from the
    start offset up to the group's current position, so it is chosen only when the selection
    reaches that position (and does not begin after it, which would skip records).

``republish``
    Copy the selected records to the end of the same topic and partition, with the original key,
    value and headers plus ``replay.id`` and ``replay.of`` (``<topic>:<partition>:<offset>`` of
    the original). Works while the stage runs, and for a job filter. The copies and the progress
    (consumer group ``leadstream-replay-<stage>-<replay id>``) are committed in one Kafka
    transaction per chunk, with that group's name as transactional id: a replay that crashes, or
    is run again with the same ``replay_id``, resumes after the last committed chunk and never
    publishes a record twice; two runs at once fence each other. Copies made by earlier replays
    (``replay.of`` set) are never selected: their originals are.

Downstream, the stage runtime carries ``replay.id`` from an input to its outputs, and the job
counter ignores marked contact outcomes (they were counted on the first pass). A reset marks
nothing: its outputs are counted again (see ``docs/operations.md``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from confluent_kafka import (
    Consumer,
    ConsumerGroupTopicPartitions,
    IsolationLevel,
    KafkaError,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient, OffsetSpec  # type: ignore[attr-defined]

from leadstream.errors import LeadStreamError
from leadstream.runtime.records import (
    JOB_ID_HEADER,
    REPLAY_ID_HEADER,
    REPLAY_OF_HEADER,
    header_list,
)
from leadstream.settings import Settings

log = logging.getLogger(__name__)
Method = Literal["reset", "republish"]
MethodChoice = Literal["auto", "reset", "republish"]

STAGE_INPUTS: Mapping[str, tuple[str, ...]] = {
    "filter": ("contacts.raw",),
    "verify": ("contacts.filtered",),
    "batch": ("contacts.verified",),
    "bison-sync": ("batches.ready", "bison.events"),
    "audit": ("audit.requests", "audit.events"),
    "registrations": ("registrations",),
}
"""The stages that can be replayed, with their input topics (logical names). ``jobs`` is not
here: job state is derived exactly once from the stage outputs; replaying the counter would count
them again."""

JOB_COUNTS_HEADER = "job_counts"
CHUNK_RECORDS = 1000
"""Records re-published per Kafka transaction (progress is durable after each)."""


class ReplayError(LeadStreamError):
    """A replay that cannot be planned or carried out as asked."""


@dataclass(frozen=True)
class Selection:
    """What to replay. A time range and an offset range exclude each other; ``job_id`` narrows
    either (or the whole retained topic)."""

    since_ms: int | None = None
    until_ms: int | None = None
    partition: int | None = None
    from_offset: int | None = None
    to_offset: int | None = None  # inclusive
    job_id: str | None = None
    topic: str | None = None  # one input of a stage that has several (logical name)

    def check(self) -> None:
        offsets = self.from_offset is not None or self.to_offset is not None
        if offsets and (self.since_ms is not None or self.until_ms is not None):
            raise ReplayError("give a time range (--since/--until) or an offset range, not both")
        if offsets and self.partition is None:
            raise ReplayError("an offset range needs --partition (offsets are per partition)")
        if self.from_offset is not None and self.from_offset < 0:
            raise ReplayError("--from-offset must be >= 0")
        if (
            self.from_offset is not None
            and self.to_offset is not None
            and self.to_offset < self.from_offset
        ):
            raise ReplayError("--to-offset is before --from-offset")
        if (
            self.since_ms is not None
            and self.until_ms is not None
            and self.until_ms <= self.since_ms
        ):
            raise ReplayError("--until is not after --since")
        if self.job_id is not None and not self.job_id.strip():
            raise ReplayError("--job is empty")


@dataclass
class PartitionPlan:
    """One partition's share: offsets ``[start, end)`` and the records selected in it."""

    topic: str
    partition: int
    start: int
    end: int
    records: int = 0
    with_job: int = 0  # selected records that carry a job id (the job tracker counts them)
    position: int | None = None  # the stage group's committed offset at planning time
    unhandled: int = 0  # selected records at or after it: the stage has not handled them yet


@dataclass
class ReplayPlan:
    replay_id: str
    stage: str
    group: str
    method: Method
    reason: str
    group_state: str
    members: int
    selection: Selection
    partitions: list[PartitionPlan] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resumed: bool = False  # a republish that continues an earlier run of the same replay id

    @property
    def total(self) -> int:
        return sum(p.records for p in self.partitions)

    @property
    def progress_group(self) -> str:
        return progress_group(self.group, self.replay_id)

    def to_dict(self) -> dict[str, Any]:
        s = self.selection
        return {
            "replay_id": self.replay_id,
            "stage": self.stage,
            "group": self.group,
            "method": self.method,
            "reason": self.reason,
            "group_state": self.group_state,
            "members": self.members,
            "resumed": self.resumed,
            "selection": {
                "since_ms": s.since_ms,
                "until_ms": s.until_ms,
                "partition": s.partition,
                "from_offset": s.from_offset,
                "to_offset": s.to_offset,
                "job_id": s.job_id,
                "topic": s.topic,
            },
            "total": self.total,
            "partitions": [
                {
                    "topic": p.topic,
                    "partition": p.partition,
                    "start": p.start,
                    "end": p.end,
                    "records": p.records,
                    "with_job": p.with_job,
                    "unhandled": p.unhandled,
                }
                for p in self.partitions
            ],
            "warnings": list(self.warnings),
        }


@dataclass(frozen=True)
class ReplayResult:
    replay_id: str
    method: Method
    records: int  # re-published, or to be re-read by the stage (reset)
    partitions: int


def progress_group(stage_group: str, replay_id: str) -> str:
    """The consumer group that records how far a re-publishing replay got."""
    return stage_group.replace("leadstream-", "leadstream-replay-", 1) + f"-{replay_id}"


# --------------------------------------------------------------------------- time parsing

_RELATIVE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_when(text: str, now: dt.datetime | None = None) -> int:
    """Epoch milliseconds of ``text``: ``now``, a relative age (``90s``, ``15m``, ``2h``,
    ``1d``, ``1w`` ago) or an ISO 8601 time (naive means UTC)."""
    now = now or dt.datetime.now(dt.UTC)
    raw = text.strip()
    if raw.lower() == "now":
        return int(now.timestamp() * 1000)
    m = _RELATIVE.match(raw)
    if m:
        age = float(m.group(1)) * _UNIT_S[m.group(2).lower()]
        return int((now.timestamp() - age) * 1000)
    try:
        when = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ReplayError(
            f"cannot read time {text!r}: use ISO 8601 (2026-01-31T12:00:00Z) or an age "
            "like 90s, 15m, 2h, 1d, 1w"
        ) from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    return int(when.timestamp() * 1000)


# --------------------------------------------------------------------------- planning


def _admin(settings: Settings) -> AdminClient:
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def _group_members(admin: AdminClient, group: str) -> tuple[str, int]:
    try:
        desc = admin.describe_consumer_groups([group])[group].result(10)
    except KafkaException:
        return "unknown", 0
    return str(desc.state).rsplit(".", 1)[-1].lower(), len(desc.members)


def _committed(
    admin: AdminClient, group: str, parts: Sequence[TopicPartition]
) -> dict[tuple[str, int], int]:
    if not parts:
        return {}
    req = [ConsumerGroupTopicPartitions(group, list(parts))]
    try:
        result = admin.list_consumer_group_offsets(req)[group].result(10)
    except KafkaException:
        return {}
    return {
        (tp.topic, tp.partition): tp.offset
        for tp in result.topic_partitions or []
        if tp.offset >= 0
    }


def _list_offsets(
    admin: AdminClient, parts: Sequence[TopicPartition], spec: Any
) -> dict[tuple[str, int], int]:
    if not parts:
        return {}
    # read_committed: "latest" is the last stable offset, so a range never ends inside an open
    # transaction (a read_committed reader could not get past it until it ends).
    futures = admin.list_offsets(
        {tp: spec for tp in parts}, isolation_level=IsolationLevel.READ_COMMITTED
    )
    return {(tp.topic, tp.partition): f.result(10).offset for tp, f in futures.items()}


def _partitions(admin: AdminClient, topics: Sequence[str]) -> list[TopicPartition]:
    meta = admin.list_topics(timeout=10)
    out: list[TopicPartition] = []
    for name in topics:
        t = meta.topics.get(name)
        if t is None or t.error is not None:
            raise ReplayError(f"topic {name} does not exist (run `leadstream topics apply`)")
        out += [TopicPartition(name, p) for p in sorted(t.partitions)]
    return out


def stage_topics(settings: Settings, stage: str, topic: str | None = None) -> list[str]:
    """The physical input topics of ``stage`` (or the one named, which must be an input)."""
    if stage not in STAGE_INPUTS:
        if stage == "jobs":
            raise ReplayError(
                "the jobs counter is not replayed: job state is derived exactly once from the "
                "stage outputs; replay the stage whose outcomes changed instead"
            )
        raise ReplayError(f"unknown stage {stage!r}; one of: {', '.join(STAGE_INPUTS)}")
    inputs = STAGE_INPUTS[stage]
    if topic is not None:
        if topic not in inputs:
            raise ReplayError(f"{topic} is not an input of {stage} ({', '.join(inputs)})")
        inputs = (topic,)
    return [settings.topic(t) for t in inputs]


def plan(
    settings: Settings,
    stage: str,
    selection: Selection,
    *,
    method: MethodChoice = "auto",
    replay_id: str | None = None,
) -> ReplayPlan:
    """Resolve the selection to offsets, choose the method (and say why), count the records."""
    selection.check()
    topics = stage_topics(settings, stage, selection.topic)
    group = settings.topic(f"leadstream-{stage}")
    offsets = selection.from_offset is not None or selection.to_offset is not None
    if offsets and len(topics) > 1:
        raise ReplayError(f"{stage} reads {len(topics)} topics: name one with --topic")
    replay_id = replay_id or uuid.uuid4().hex[:12]
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", replay_id):
        raise ReplayError("a replay id is 1-64 letters, digits, '.', '_' or '-'")
    admin = _admin(settings)
    parts = _partitions(admin, topics)
    if selection.partition is not None:
        parts = [tp for tp in parts if tp.partition == selection.partition]
        if not parts:
            raise ReplayError(f"no partition {selection.partition} in {', '.join(topics)}")
    earliest = _list_offsets(admin, parts, OffsetSpec.earliest())  # type: ignore[no-untyped-call]
    latest = _list_offsets(admin, parts, OffsetSpec.latest())  # type: ignore[no-untyped-call]

    def at_time(ms: int | None, default: dict[tuple[str, int], int]) -> dict[tuple[str, int], int]:
        if ms is None:
            return default
        spec = OffsetSpec.for_timestamp(ms)
        found = _list_offsets(admin, parts, spec)
        # -1: no record at or after that time — the partition's end.
        return {k: (v if v >= 0 else latest[k]) for k, v in found.items()}

    starts = at_time(selection.since_ms, earliest)
    ends = at_time(selection.until_ms, latest)
    ranges: list[PartitionPlan] = []
    for tp in parts:
        k = (tp.topic, tp.partition)
        start, end = max(starts[k], earliest[k]), min(ends[k], latest[k])
        if selection.from_offset is not None:
            start = max(start, selection.from_offset)
        if selection.to_offset is not None:
            end = min(end, selection.to_offset + 1)
        ranges.append(PartitionPlan(tp.topic, tp.partition, start, max(start, end)))

    state, members = _group_members(admin, group)
    committed = _committed(admin, group, parts)
    for r in ranges:
        r.position = committed.get((r.topic, r.partition))
    chosen, reason = _choose(method, selection, state, members, ranges, committed)
    out = ReplayPlan(replay_id, stage, group, chosen, reason, state, members, selection)
    if chosen == "reset":
        for r in ranges:  # the stage re-reads from start up to where it is now
            position = committed.get((r.topic, r.partition), r.start)  # none: empty range
            r.end = max(r.start, min(r.end, position))
    else:
        done = _committed(admin, progress_group(group, replay_id), parts)
        for r in ranges:
            reached = done.get((r.topic, r.partition))
            if reached is not None and reached > r.start:
                r.start = min(reached, r.end)
                out.resumed = True
    out.partitions = [r for r in ranges if r.end > r.start]
    _count(settings, out)
    out.partitions = [r for r in out.partitions if r.records > 0 or chosen == "reset"]
    with_job = sum(r.with_job for r in out.partitions)
    if chosen == "reset" and with_job:
        out.warnings.append(
            f"{with_job} of these records carry a job id: a reset marks nothing, so the job "
            "tracker counts their outcomes again (use --method republish to avoid that)"
        )
    unhandled = sum(r.unhandled for r in out.partitions)
    if chosen == "republish" and unhandled:
        out.warnings.append(
            f"{unhandled} of these records are at or after {group}'s position (or it has none): "
            "the stage has not handled them yet, so it will handle them twice (original and "
            "copy); let it catch up first, or narrow the range"
        )
    if out.resumed:
        out.warnings.append(
            f"replay {replay_id} ran before: only what it has not published yet is counted"
        )
    return out


def _choose(
    method: MethodChoice,
    selection: Selection,
    state: str,
    members: int,
    ranges: Sequence[PartitionPlan],
    committed: Mapping[tuple[str, int], int],
) -> tuple[Method, str]:
    """The method, and why. A forced method that cannot work raises :class:`ReplayError`."""
    if selection.job_id is not None:
        why = "a job filter picks records inside the range; a group reset can only move offsets"
        if method == "reset":
            raise ReplayError(f"cannot reset for a job: {why}")
        return "republish", why
    if members > 0:
        why = (
            f"the stage is running ({members} member(s) in its group); Kafka alters the offsets "
            "of a group with no members only"
        )
        if method == "reset":
            raise ReplayError(f"cannot reset: {why}; stop the stage first")
        return "republish", why
    blockers: list[str] = []
    for r in ranges:
        if r.end <= r.start:
            continue
        pos = committed.get((r.topic, r.partition))
        where = f"{r.topic}[{r.partition}]"
        if pos is None:
            blockers.append(f"{where}: the group has no committed offset (nothing handled yet)")
        elif r.start > pos:
            blockers.append(
                f"{where}: the range starts at {r.start}, after the group's position {pos} "
                "(a reset would skip records)"
            )
        elif r.end < pos:
            blockers.append(
                f"{where}: the range ends at {r.end}, before the group's position {pos} "
                "(a reset would re-read records outside the range)"
            )
    if method == "republish":
        return "republish", "asked for (--method republish)"
    if blockers:
        why = "a group reset would not replay exactly the range: " + "; ".join(blockers[:3])
        if len(blockers) > 3:
            why += f"; and {len(blockers) - 3} more"
        if method == "reset":
            raise ReplayError(f"cannot reset: {why}")
        return "republish", why
    prefix = "asked for (--method reset); " if method == "reset" else ""
    return "reset", (
        f"{prefix}the stage is stopped (group {state}, no members): its offsets are rewound "
        "and it re-reads the records in place, no copies"
    )


# --------------------------------------------------------------------------- reading


def _consumer(settings: Settings, group: str) -> Consumer:
    return Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
        }
    )


def _bytes(x: str | bytes | None) -> bytes | None:
    return x.encode() if isinstance(x, str) else x


class JobMatcher:
    """Does a record belong to a job: its ``job_id`` header, a ``job_counts`` header (batches
    of several jobs), or else the ``job_id`` field of its Avro value (decoded only then)."""

    def __init__(self, settings: Settings, job_id: str) -> None:
        self.settings = settings
        self.job_id = job_id
        self._serde: Any = None

    def __call__(
        self, topic: str, headers: Sequence[tuple[str, bytes]], value: bytes | None
    ) -> bool:
        hs = dict(headers)
        if hs.get(JOB_ID_HEADER):
            return hs[JOB_ID_HEADER].decode("utf-8", "replace") == self.job_id
        if JOB_COUNTS_HEADER in hs:
            return f'"{self.job_id}"' in hs[JOB_COUNTS_HEADER].decode("utf-8", "replace")
        if not value:
            return False
        if self._serde is None:
            from leadstream.events import Serde  # only when a record has no job header

            self._serde = Serde(self.settings)
        try:
            decoded = self._serde.deserialize(value, topic)
        except Exception:
            return False
        return bool(decoded.get("job_id") == self.job_id)

    def close(self) -> None:
        if self._serde is not None:
            self._serde.close()


def _scan(
    consumer: Consumer,
    ranges: Sequence[PartitionPlan],
    on_record: Callable[[PartitionPlan, Message], None],
    timeout_s: float = 30.0,
) -> None:
    """Feed every committed record in the ranges to ``on_record``, in offset order per
    partition."""
    todo = {(r.topic, r.partition): r for r in ranges if r.end > r.start}
    consumer.assign([TopicPartition(t, p, r.start) for (t, p), r in todo.items()])
    last = time.monotonic()
    while todo:
        msgs = consumer.consume(500, 0.5)
        if not msgs:
            # Transaction markers occupy offsets: a partition is done when its position
            # reaches the end of its range.
            for tp in consumer.position([TopicPartition(t, p) for t, p in todo]):
                if tp.offset >= todo[(tp.topic, tp.partition)].end:
                    _finish(consumer, todo, tp.topic, tp.partition)
            if todo and time.monotonic() - last > timeout_s:
                missing = ", ".join(f"{t}[{p}]" for t, p in todo)
                raise ReplayError(f"no progress reading {missing} for {timeout_s:.0f} s")
            continue
        last = time.monotonic()
        for m in msgs:
            err = m.error()
            if err is not None:
                if err.code() == KafkaError._PARTITION_EOF:
                    continue
                raise KafkaException(err)
            k = (m.topic() or "", m.partition() or 0)
            r = todo.get(k)
            if r is None:
                continue
            off = m.offset() or 0
            if off >= r.end:
                _finish(consumer, todo, *k)
                continue
            on_record(r, m)
            if off + 1 >= r.end:
                _finish(consumer, todo, *k)


def _finish(consumer: Consumer, todo: dict[tuple[str, int], PartitionPlan], t: str, p: int) -> None:
    todo.pop((t, p), None)
    consumer.incremental_unassign([TopicPartition(t, p)])


def _is_copy(headers: Sequence[tuple[str, bytes]]) -> bool:
    """A record an earlier replay re-published: its original is selected instead (copying
    copies would multiply a replayed record, and a rerun would copy its own output)."""
    return any(k == REPLAY_OF_HEADER for k, _ in headers)


def _count(settings: Settings, out: ReplayPlan) -> None:
    """Count the selected records per partition (read_committed: aborted records and
    transaction markers are not counted)."""
    matcher = JobMatcher(settings, out.selection.job_id) if out.selection.job_id else None

    def count(r: PartitionPlan, m: Message) -> None:
        headers = header_list(m.headers())
        if out.method == "republish" and _is_copy(headers):
            return
        if matcher is not None and not matcher(r.topic, headers, m.value()):
            return
        r.records += 1
        if any(k in (JOB_ID_HEADER, JOB_COUNTS_HEADER) and v for k, v in headers):
            r.with_job += 1
        if r.position is None or (m.offset() or 0) >= r.position:
            r.unhandled += 1

    consumer = _consumer(settings, f"{out.group}-replay-scan-{uuid.uuid4().hex[:8]}")
    try:
        _scan(consumer, out.partitions, count)
    finally:
        consumer.close()
        if matcher is not None:
            matcher.close()


# --------------------------------------------------------------------------- carrying out


def execute(
    settings: Settings,
    the_plan: ReplayPlan,
    on_progress: Callable[[int], None] | None = None,
) -> ReplayResult:
    """Carry out a plan. ``on_progress(n)`` is called with the records done so far."""
    if the_plan.method == "reset":
        result = _reset(settings, the_plan)
    else:
        result = _republish(settings, the_plan, on_progress)
    if on_progress is not None:
        on_progress(result.records)
    return result


def execute_audited(
    settings: Settings,
    the_plan: ReplayPlan,
    on_progress: Callable[[int], None] | None = None,
    *,
    actor: str,
    request_id: str | None = None,
) -> ReplayResult:
    """:func:`execute`, recorded on ``audit.events``: ``replay.started``, then
    ``replay.finished`` (with the records) or ``replay.failed`` (with the error)."""
    audit(settings, the_plan, "replay.started", actor, request_id=request_id)
    try:
        result = execute(settings, the_plan, on_progress)
    except Exception as exc:
        audit(
            settings,
            the_plan,
            "replay.failed",
            actor,
            outcome="failed",
            request_id=request_id,
            extra={"error": f"{type(exc).__name__}: {exc}"[:500]},
        )
        raise
    audit(
        settings,
        the_plan,
        "replay.finished",
        actor,
        request_id=request_id,
        extra={"records": str(result.records)},
    )
    return result


def audit(
    settings: Settings,
    the_plan: ReplayPlan,
    action: str,
    actor: str,
    *,
    outcome: str = "ok",
    request_id: str | None = None,
    extra: Mapping[str, str] | None = None,
) -> bool:
    """One ``AuditEvent`` about a replay (best effort: a replay is not stopped because the
    audit trail is unreachable; the failure is logged). True when the broker acknowledged it."""
    from leadstream.events import Serde  # the registry is needed only here

    s = the_plan.selection
    details = {
        "stage": the_plan.stage,
        "method": the_plan.method,
        "reason": the_plan.reason[:500],
        "total": str(the_plan.total),
        **{k: str(v) for k, v in vars(s).items() if v is not None},
        **(extra or {}),
    }
    event_id = str(uuid.uuid4())
    record: dict[str, Any] = {
        "event_id": event_id,
        "job_id": s.job_id,
        "source": "replay",
        "event_time": int(time.time() * 1000),
        "actor": actor,
        "action": action,
        "target_type": "stage",
        "target_id": the_plan.replay_id,
        "request_id": request_id,
        "outcome": outcome,
        "details": details,
    }
    failed: list[object] = []
    try:
        with Serde(settings) as serde:
            data = serde.serialize(record, "audit.events")
        producer = Producer(
            {
                "bootstrap.servers": settings.kafka_bootstrap,
                "enable.idempotence": True,
                "acks": "all",
                "message.timeout.ms": 10_000,
            }
        )
        producer.produce(
            settings.topic("audit.events"),
            data,
            event_id.encode(),
            on_delivery=lambda e, _m: failed.append(e) if e is not None else None,
        )
        if producer.flush(15) or failed:
            raise RuntimeError(f"not acknowledged: {failed[0] if failed else 'timeout'}")
    except Exception as exc:
        log.warning(
            "%s of replay %s not recorded on audit.events: %s", action, the_plan.replay_id, exc
        )
        return False
    return True


def _reset(settings: Settings, p: ReplayPlan) -> ReplayResult:
    admin = _admin(settings)
    _, members = _group_members(admin, p.group)
    if members:
        raise ReplayError(
            f"the stage started since the plan ({members} member(s) in {p.group}): plan again"
        )
    parts = [TopicPartition(r.topic, r.partition, r.start) for r in p.partitions]
    if not parts:
        return ReplayResult(p.replay_id, "reset", 0, 0)
    request = [ConsumerGroupTopicPartitions(p.group, parts)]
    try:
        result = admin.alter_consumer_group_offsets(request)[p.group].result(30)
    except KafkaException as exc:
        raise ReplayError(f"Kafka refused to rewind {p.group}: {exc}") from exc
    failed = [tp for tp in result.topic_partitions or [] if tp.error is not None]
    if failed:
        raise ReplayError(f"Kafka refused to rewind {p.group}: {failed[0].error}")
    return ReplayResult(p.replay_id, "reset", p.total, len(parts))


def republish_headers(
    headers: Sequence[tuple[str, bytes]], replay_id: str, of: str
) -> list[tuple[str, str | bytes | None]]:
    """The original headers (earlier replay marks dropped) plus this replay's marks."""
    kept: list[tuple[str, str | bytes | None]] = [
        (k, v) for k, v in headers if k not in (REPLAY_ID_HEADER, REPLAY_OF_HEADER)
    ]
    kept.append((REPLAY_ID_HEADER, replay_id.encode()))
    kept.append((REPLAY_OF_HEADER, of.encode()))
    return kept


@dataclass
class _Txn:
    published: int = 0
    in_txn: int = 0
    open: bool = False


def _republish(
    settings: Settings, p: ReplayPlan, on_progress: Callable[[int], None] | None
) -> ReplayResult:
    group = p.progress_group
    producer = Producer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            # Stable per replay: a second run of the same replay fences the first.
            "transactional.id": group,
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 20,
        }
    )
    producer.init_transactions(30)
    # Where each partition restarts: the progress group's committed offset, else the plan's
    # start (a plan made before a crashed run may be older than the progress).
    done = _committed(
        _admin(settings), group, [TopicPartition(r.topic, r.partition) for r in p.partitions]
    )
    ranges = []
    for r in p.partitions:
        start = max(r.start, done.get((r.topic, r.partition), 0))
        ranges.append(PartitionPlan(r.topic, r.partition, min(start, r.end), r.end))
    if not ranges:
        return ReplayResult(p.replay_id, "republish", 0, 0)
    matcher = JobMatcher(settings, p.selection.job_id) if p.selection.job_id else None
    consumer = _consumer(settings, group)
    positions: dict[tuple[str, int], int] = {}
    state = _Txn()

    def commit(offsets: list[TopicPartition]) -> None:
        if not state.open:
            producer.begin_transaction()
        producer.send_offsets_to_transaction(offsets, consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(60)
        state.open, state.in_txn = False, 0
        if on_progress is not None:
            on_progress(state.published)

    def forward(r: PartitionPlan, m: Message) -> None:
        off = m.offset() or 0
        headers = header_list(m.headers())
        positions[(r.topic, r.partition)] = off + 1
        if _is_copy(headers):
            return
        if matcher is not None and not matcher(r.topic, headers, m.value()):
            return
        if not state.open:
            producer.begin_transaction()
            state.open = True
        marked = republish_headers(headers, p.replay_id, f"{r.topic}:{r.partition}:{off}")
        while True:
            try:
                producer.produce(
                    r.topic,
                    key=_bytes(m.key()),
                    value=_bytes(m.value()),
                    partition=r.partition,  # the original's partition: per-key order holds
                    headers=marked,
                )
                break
            except BufferError:
                producer.poll(0.1)
        state.published += 1
        state.in_txn += 1
        if state.in_txn >= CHUNK_RECORDS:
            commit([TopicPartition(t, part, o) for (t, part), o in positions.items()])

    try:
        _scan(consumer, ranges, forward)
        # Every range read to its end: commit the ends (trailing transaction markers too), so
        # a rerun of this replay finds nothing left.
        commit([TopicPartition(r.topic, r.partition, r.end) for r in ranges])
    except BaseException:
        if state.open:
            with contextlib.suppress(KafkaException):
                producer.abort_transaction(30)
        raise
    finally:
        consumer.close()
        if matcher is not None:
            matcher.close()
    return ReplayResult(p.replay_id, "republish", state.published, len(ranges))
