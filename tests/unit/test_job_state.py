"""The job tracker's pure parts: header counting, deltas, state logic, the JobState mapping."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from leadstream.events import EventSettings, Serde
from leadstream.jobs import JobState, JobStatus, headers
from leadstream.runtime import JOB_ID_HEADER, Record
from leadstream_jobs.codec import JobStateCodec
from leadstream_jobs.counter import DELTAS_TOPIC, INPUTS, counter_stage
from leadstream_jobs.counting import (
    INVALID_HEADERS,
    count_job_event,
    count_records,
)
from leadstream_jobs.delta import Delta, JobEventFact
from leadstream_jobs.logic import already_applied, apply_delta, delta_event_id, job_rate

T0 = 1_700_000_000_000  # ms
J = b"job-1"


def hdr(**values: str | bytes) -> list[tuple[str, bytes | None]]:
    out: list[tuple[str, bytes | None]] = [("job_id", J)]
    for k, v in values.items():
        out.append((k.replace("_", "."), v if isinstance(v, bytes) else v.encode()))
    return out


def one(topic: str, hs: Any, ts: int = T0) -> Delta:
    deltas = count_records([(topic, hs, ts)])
    assert list(deltas) == ["job-1"]
    return deltas["job-1"]


def events(*facts: JobEventFact) -> Delta:
    return Delta(events=list(facts))


def apply(state: JobState | None, delta: Delta, offset: int = 0, now: int = T0) -> JobState:
    return apply_delta(state, "job-1", delta, event_id=delta_event_id(0, offset), now_ms=now)


# ---------------------------------------------------------------- counting from headers


def test_each_stage_topic_counts_by_its_headers() -> None:
    assert one("contacts.raw", hdr()).counts == {"contacts.raw": 1}
    assert one("contacts.filtered", hdr()).counts == {"contacts.filtered": 1}
    rejected = one(
        "contacts.rejected", [("job_id", J), ("reason", b"duplicate"), ("stage", b"filter")]
    )
    assert rejected.counts == {"contacts.rejected": 1, "filter.rejected": 1}
    assert rejected.rejected_by_reason == {"duplicate": 1}
    verified = one("contacts.verified", [("job_id", J), ("verdict", b"risky")])
    assert (verified.counts, verified.verdicts) == ({"contacts.verified": 1}, {"risky": 1})
    ready = one("batches.ready", [("job_id", J), ("count", b"250")])
    assert (ready.counts, ready.batched, ready.synced) == ({"batches.ready": 1}, 250, 0)
    synced = one("batches.synced", [("job_id", J), ("count", b"7")])
    assert (synced.counts, synced.batched, synced.synced) == ({"batches.synced": 1}, 0, 7)
    dead = one("dlq.verify", [("job_id", J), ("dlq.stage", b"verify")])
    assert dead.counts == {"dlq.verify": 1}


def test_records_without_a_usable_job_id_are_ignored() -> None:
    assert count_records([("contacts.raw", None, T0)]) == {}
    assert count_records([("contacts.raw", [("reason", b"x")], T0)]) == {}
    assert count_records([("contacts.raw", [("job_id", b"")], T0)]) == {}
    assert count_records([("contacts.raw", [("job_id", b"\xff\xfe")], T0)]) == {}
    assert count_records([("contacts.raw", [("job_id", b"j" * 201)], T0)]) == {}
    assert count_records([("bison.events", [("job_id", J)], T0)]) == {}  # not counted
    assert count_records([("batches.ready", [("count", b"3")], T0)]) == {}


def test_unknown_missing_and_garbage_header_values() -> None:
    def verdict(raw: bytes | None) -> dict[str, int]:
        hs = [("job_id", J)] + ([("verdict", raw)] if raw is not None else [])
        return one("contacts.verified", hs).verdicts

    def reason(raw: bytes | None) -> dict[str, int]:
        hs = [("job_id", J)] + ([("reason", raw)] if raw is not None else [])
        return one("contacts.rejected", hs).rejected_by_reason

    assert verdict(b"deliverable") == {"deliverable": 1}
    assert verdict(b"maybe") == {"other": 1}  # not one of the four verdicts
    assert verdict(None) == {"unspecified": 1}
    assert verdict(b"") == {"unspecified": 1}
    assert verdict(b"no spaces allowed") == {"other": 1}
    assert reason(b"suppressed_domain") == {"suppressed_domain": 1}  # reason codes grow
    assert reason(b"brand_new_rule") == {"brand_new_rule": 1}
    assert reason(None) == {"unspecified": 1}
    assert reason(b"not a code!") == {"invalid": 1}
    assert reason(b"x" * 65) == {"invalid": 1}
    # a stage header that is not a code adds no <stage>.rejected count
    assert one("contacts.rejected", [("job_id", J), ("stage", b"a b")]).counts == {
        "contacts.rejected": 1
    }
    # a dead letter without dlq.stage counts under its topic
    assert one("dlq.filter", hdr()).counts == {"dlq.filter": 1}


@pytest.mark.parametrize("raw", [b"-3", b"abc", b"", b"1e3", b"9" * 13, None])
def test_a_bad_count_header_counts_the_batch_but_no_contacts(raw: bytes | None) -> None:
    hs = [("job_id", J)] + ([("count", raw)] if raw is not None else [])
    delta = one("batches.ready", hs)
    assert delta.counts == {"batches.ready": 1, INVALID_HEADERS: 1}
    assert delta.batched == 0


def test_a_batch_of_several_jobs_uses_job_counts() -> None:
    spread = json.dumps({"a": 3, "b": 5, "c": -1}).encode()
    deltas = count_records([("batches.synced", [("job_counts", spread), ("job_id", b"a")], T0)])
    assert {j: d.synced for j, d in deltas.items()} == {"a": 3, "b": 5, "c": 0}
    assert deltas["c"].counts == {"batches.synced": 1, INVALID_HEADERS: 1}
    # unreadable job_counts: job_id + count still count
    hs = [("job_counts", b"{nope"), ("job_id", J), ("count", b"4")]
    assert one("batches.ready", hs).batched == 4


def test_a_batch_of_records_sums_per_job_with_its_time_span() -> None:
    deltas = count_records(
        [
            ("contacts.raw", [("job_id", b"a")], T0 + 5),
            ("contacts.raw", [("job_id", b"b")], T0 + 1),
            ("contacts.raw", [("job_id", b"a")], T0 + 2),
            ("contacts.verified", [("job_id", b"a"), ("verdict", b"unknown")], T0 + 9),
        ]
    )
    a = deltas["a"]
    assert a.counts == {"contacts.raw": 2, "contacts.verified": 1}
    assert (a.first_ms, a.last_ms) == (T0 + 2, T0 + 9)
    assert deltas["b"].counts == {"contacts.raw": 1}


def test_job_events_are_read_from_the_decoded_record() -> None:
    deltas: dict[str, Delta] = {}
    when = dt.datetime.fromtimestamp(T0 / 1000, tz=dt.UTC)
    count_job_event({"job_id": "j", "event_type": "created", "event_time": when}, deltas)
    count_job_event(
        {"job_id": "j", "event_type": "sealed", "event_time": T0 + 1, "expected_total": 9}, deltas
    )
    count_job_event(
        {"job_id": "j", "event_type": "failed", "event_time": T0, "details": {"error": "boom"}},
        deltas,
    )
    count_job_event({"job_id": "j", "event_type": "cancelled", "event_time": T0}, deltas)
    count_job_event({"job_id": "", "event_type": "created", "event_time": T0}, deltas)
    facts = deltas["j"].events
    assert [(f.event_type, f.event_time) for f in facts] == [
        ("created", T0),
        ("sealed", T0 + 1),
        ("failed", T0),
    ]
    assert facts[1].expected_total == 9
    assert facts[2].error == "boom"


def test_job_id_header_is_the_runtime_s() -> None:
    assert headers.JOB_ID == JOB_ID_HEADER


# ---------------------------------------------------------------- the delta wire format


def test_delta_wire_round_trip_and_clamping() -> None:
    delta = one("batches.ready", [("job_id", J), ("count", b"3")])
    delta.events.append(JobEventFact("sealed", T0, expected_total=3, kind="csv"))
    wire = json.loads(json.dumps(delta.to_wire()))
    assert Delta.from_wire(wire) == delta
    bad = Delta.from_wire(
        {"counts": {"x": -5, "y": "7", "z": True}, "batched": -1, "events": [1, {"type": "x"}]}
    )
    assert bad.counts == {"x": 0, "y": 0, "z": 0}
    assert bad.batched == 0
    assert [e.event_type for e in bad.events] == ["x"]


# ---------------------------------------------------------------- state logic


def test_receiving_then_processing_then_completed() -> None:
    s = apply(None, events(JobEventFact("created", T0, kind="csv")))
    assert (s.status, s.started_at, s.kind, s.expected_total) == (
        JobStatus.RECEIVING,
        T0,
        "csv",
        None,
    )
    assert s.eta_s is None
    s = apply(s, one("contacts.raw", hdr(), T0 + 1000), 1)
    s = apply(s, events(JobEventFact("sealed", T0 + 1500, expected_total=4)), 2)
    assert s.status == JobStatus.PROCESSING
    assert s.received == 1
    s = apply(s, one("contacts.rejected", [("job_id", J), ("reason", b"duplicate")], T0 + 2000), 3)
    assert s.status == JobStatus.PROCESSING
    assert s.rate_per_s == pytest.approx(0.5)  # 1 processed in 2 s
    assert s.eta_s == pytest.approx(6.0)  # 3 left at 0.5/s
    s = apply(
        s, count_records([("contacts.verified", hdr(verdict="deliverable"), T0 + 3000)])["job-1"], 4
    )
    s = apply(s, one("dlq.verify", hdr(dlq_stage="verify"), T0 + 3500), 5)
    assert s.status == JobStatus.PROCESSING
    assert s.processed == 3
    s = apply(s, one("dlq.filter", hdr(), T0 + 4000), 6, now=T0 + 9999)
    assert s.status == JobStatus.COMPLETED
    assert s.completed_at == T0 + 4000
    assert s.updated_at == T0 + 9999
    assert s.rate_per_s == pytest.approx(1.0)
    assert s.eta_s == 0.0
    # batching and syncing go on counting; the rate stays the one at completion
    s = apply(s, one("batches.ready", [("job_id", J), ("count", b"1")], T0 + 60_000), 7)
    assert (s.status, s.batched, s.completed_at) == (JobStatus.COMPLETED, 1, T0 + 4000)
    assert s.rate_per_s == pytest.approx(1.0)
    assert s.counts == {
        "contacts.raw": 1,
        "contacts.rejected": 1,
        "contacts.verified": 1,
        "dlq.verify": 1,
        "dlq.filter": 1,
        "batches.ready": 1,
    }
    assert s.rejected_by_reason == {"duplicate": 1}
    assert s.verdicts == {"deliverable": 1}


def test_dead_letters_after_verify_do_not_complete_a_job() -> None:
    s = apply(None, events(JobEventFact("sealed", T0, expected_total=1)))
    s = apply(s, one("dlq.batch", hdr(dlq_stage="batch")), 1)
    s = apply(s, one("dlq.bison-sync", hdr(dlq_stage="bison-sync")), 2)
    assert s.status == JobStatus.PROCESSING
    assert s.dead_lettered == 2
    assert s.processed == 0


def test_counts_before_the_seal_complete_the_job_when_it_is_sealed() -> None:
    s = apply(
        None, count_records([("contacts.verified", hdr(verdict="risky"), T0 + 10)] * 2)["job-1"]
    )
    assert (s.status, s.started_at) == (JobStatus.RECEIVING, T0 + 10)  # no created event yet
    s = apply(
        s, events(JobEventFact("created", T0), JobEventFact("sealed", T0, expected_total=2)), 1
    )
    assert s.status == JobStatus.COMPLETED
    assert s.started_at == T0  # the created event is earlier than the first record


def test_an_empty_job_completes_when_sealed() -> None:
    s = apply(None, events(JobEventFact("sealed", T0, expected_total=0)))
    assert s.status == JobStatus.COMPLETED
    assert s.eta_s == 0.0
    assert s.rate_per_s == 0.0


def test_failed_is_final_and_keeps_counting() -> None:
    s = apply(None, events(JobEventFact("sealed", T0, expected_total=1)))
    s = apply(s, events(JobEventFact("failed", T0 + 5, error="upload aborted")), 1)
    assert (s.status, s.error, s.completed_at, s.eta_s) == (
        JobStatus.FAILED,
        "upload aborted",
        T0 + 5,
        None,
    )
    s = apply(s, one("contacts.verified", hdr(verdict="risky"), T0 + 9), 2)
    assert s.status == JobStatus.FAILED
    assert s.verified == 1
    assert s.completed_at == T0 + 5


def test_counts_never_go_negative() -> None:
    s = apply(None, one("contacts.raw", hdr()))
    s = apply(
        s,
        Delta(counts={"contacts.raw": -10}, verdicts={"risky": -1}, batched=-4, synced=-2),
        1,
    )
    assert s.counts == {"contacts.raw": 1}
    assert s.verdicts == {"risky": 0}
    assert (s.batched, s.synced) == (0, 0)


def test_rate_and_eta_edges() -> None:
    assert job_rate(0, T0, T0 + 1000) == 0.0
    assert job_rate(5, T0, T0) == 0.0  # no elapsed time
    assert job_rate(5, T0 + 10, T0) == 0.0  # clock skew
    s = apply(None, events(JobEventFact("sealed", T0, expected_total=10)))
    assert (s.status, s.rate_per_s, s.eta_s) == (JobStatus.PROCESSING, 0.0, None)


def test_a_delta_is_recognised_when_delivered_twice() -> None:
    s = apply_delta(None, "j", Delta(), event_id=delta_event_id(3, 41), now_ms=T0)
    assert s.event_id == "jobs.deltas:3:41"
    assert already_applied(s, 3, 41)
    assert already_applied(s, 3, 7)
    assert not already_applied(s, 3, 42)
    assert not already_applied(s, 2, 41)  # another partition: not this job's history
    assert not already_applied(None, 3, 41)
    assert not already_applied(JobState(job_id="j", event_id="something-else"), 3, 1)


# ---------------------------------------------------------------- JobState ↔ Avro record


def test_job_state_record_round_trip() -> None:
    s = apply(None, events(JobEventFact("sealed", T0, expected_total=1, kind="batch")))
    s = apply(s, one("contacts.verified", hdr(verdict="risky"), T0 + 1000), 1)
    record = s.to_record()
    assert JobState.from_record(record) == s
    as_read = dict(record)  # fastavro returns timestamp-millis as aware datetimes
    for key in ("event_time", "started_at", "updated_at", "completed_at"):
        as_read[key] = dt.datetime.fromtimestamp(record[key] / 1000, tz=dt.UTC)
    assert JobState.from_record(as_read) == s
    assert JobState.from_record({**record, "status": "paused"}).status == "paused"


def test_the_table_codec_writes_confluent_framed_job_state() -> None:
    settings = EventSettings(schema_registry_url="mock://jobs-unit", topic_prefix="u.")
    with Serde(settings, auto_register=True) as serde:
        codec = JobStateCodec(codec=serde.codec("jobs.state"))
        state = apply(None, one("contacts.raw", hdr()))
        data = codec.dumps(state)
        assert data[0] == 0  # magic byte, then the schema id
        assert codec.loads(data) == state
        assert serde.deserialize(data, "u.jobs.state")["job_id"] == "job-1"
        with pytest.raises(TypeError):
            codec.dumps({"job_id": "x"})


# ---------------------------------------------------------------- the counter stage


def test_the_counter_sends_one_delta_per_job_with_the_batch_s_last_record() -> None:
    settings = EventSettings(topic_prefix="p.")
    stage = counter_stage(settings)
    assert stage.consumer_group == "leadstream-jobs"
    assert "dlq.jobs" not in INPUTS
    assert {"contacts.raw", "jobs.events", "dlq.filter", "batches.synced"} <= set(INPUTS)

    def rec(topic: str, job: bytes | None, offset: int) -> Record:
        hs = {"job_id": job} if job else {}
        return Record(f"p.{topic}", 0, offset, b"k", {}, hs, T0 + offset)

    records = [
        rec("contacts.raw", b"a", 0),
        rec("contacts.raw", None, 1),
        rec("contacts.filtered", b"b", 2),
        Record(
            "p.jobs.events",
            0,
            3,
            b"a",
            {"job_id": "a", "event_type": "sealed", "event_time": T0, "expected_total": 1},
            {},
            T0,
        ),
    ]
    out = stage.handler(records)
    assert [len(o) for o in out] == [0, 0, 0, 2]
    by_key = {o.key: o for o in out[-1]}
    assert set(by_key) == {"a", "b"}
    assert all(o.topic == DELTAS_TOPIC for o in out[-1])
    assert by_key["a"].headers == {"job_id": "a"}
    a = Delta.from_wire(json.loads(json.dumps(by_key["a"].value)))
    assert a.counts == {"contacts.raw": 1}
    assert [e.expected_total for e in a.events] == [1]
    assert stage.handler([]) == []
