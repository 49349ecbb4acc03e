"""The pure parts of ``leadstream.ops.replay``: times, selections, the method choice, the
headers of a copy; and the job counter ignoring replayed contact outcomes."""

from __future__ import annotations

import datetime as dt

import pytest

from leadstream.ops import replay as rp
from leadstream.settings import Settings
from leadstream_audit.handler import COLLECTIONS
from leadstream_batch.service import INPUTS as BATCH_INPUTS
from leadstream_bison_sync.service import INPUTS as BISON_INPUTS
from leadstream_filter.app import INPUT as FILTER_INPUT
from leadstream_ingest.registration_writer import INPUT as REGISTRATIONS_INPUT
from leadstream_jobs.counting import count_records
from leadstream_verify.app import INPUT as VERIFY_INPUT

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
NOW_MS = int(NOW.timestamp() * 1000)


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("now", NOW_MS),
        ("2h", NOW_MS - 7_200_000),
        ("90s", NOW_MS - 90_000),
        ("1.5d", NOW_MS - 129_600_000),
        ("1w", NOW_MS - 604_800_000),
        ("2026-03-01T11:00:00Z", NOW_MS - 3_600_000),
        ("2026-03-01T11:00:00", NOW_MS - 3_600_000),  # naive is UTC
        ("2026-03-01T13:00:00+02:00", NOW_MS - 3_600_000),
    ],
)
def test_parse_when(text: str, ms: int) -> None:
    assert rp.parse_when(text, NOW) == ms


def test_parse_when_refuses_garbage() -> None:
    with pytest.raises(rp.ReplayError, match="ISO 8601"):
        rp.parse_when("yesterday-ish", NOW)


@pytest.mark.parametrize(
    ("selection", "message"),
    [
        (rp.Selection(since_ms=1, from_offset=0, partition=0), "not both"),
        (rp.Selection(from_offset=3), "needs --partition"),
        (rp.Selection(partition=0, from_offset=5, to_offset=4), "before --from-offset"),
        (rp.Selection(since_ms=5, until_ms=5), "not after --since"),
        (rp.Selection(job_id=" "), "empty"),
    ],
)
def test_selections_that_make_no_sense(selection: rp.Selection, message: str) -> None:
    with pytest.raises(rp.ReplayError, match=message):
        selection.check()


def ranges(*spans: tuple[int, int]) -> list[rp.PartitionPlan]:
    return [rp.PartitionPlan("t", p, a, b) for p, (a, b) in enumerate(spans)]


def test_method_choice() -> None:
    committed = {("t", 0): 10, ("t", 1): 10}
    stopped = rp.Selection()
    assert (
        rp._choose("auto", stopped, "empty", 0, ranges((0, 10), (5, 12)), committed)[0] == "reset"
    )
    method, why = rp._choose("auto", stopped, "stable", 2, ranges((0, 10)), committed)
    assert (method, "2 member(s)" in why) == ("republish", True)
    method, why = rp._choose("auto", stopped, "empty", 0, ranges((0, 8)), committed)
    assert (method, "before the group's position" in why) == ("republish", True)
    method, why = rp._choose("auto", stopped, "empty", 0, ranges((11, 12)), committed)
    assert (method, "skip records" in why) == ("republish", True)
    method, why = rp._choose("auto", stopped, "empty", 0, ranges((0, 1)), {})
    assert (method, "no committed offset" in why) == ("republish", True)
    job = rp.Selection(job_id="j")
    assert rp._choose("auto", job, "empty", 0, ranges((0, 10)), committed)[0] == "republish"
    assert rp._choose("republish", stopped, "empty", 0, ranges((0, 10)), committed)[0] == (
        "republish"
    )
    for bad, sel, members, spans in [
        ("a job filter", job, 0, ((0, 10),)),
        ("stop the stage", stopped, 1, ((0, 10),)),
        ("outside the range", stopped, 0, ((0, 8),)),
    ]:
        with pytest.raises(rp.ReplayError, match=bad):
            rp._choose("reset", sel, "empty", members, ranges(*spans), committed)


def test_a_copy_keeps_the_original_headers_and_is_marked_once() -> None:
    original = [("job_id", b"j"), ("trace", b"x"), ("replay.id", b"old"), ("replay.of", b"a:0:1")]
    assert rp.republish_headers(original, "new", "t:2:7") == [
        ("job_id", b"j"),
        ("trace", b"x"),
        ("replay.id", b"new"),
        ("replay.of", b"t:2:7"),
    ]


def test_stage_inputs_are_the_services_inputs() -> None:
    assert {
        "filter": (FILTER_INPUT,),
        "verify": (VERIFY_INPUT,),
        "batch": tuple(BATCH_INPUTS),
        "bison-sync": tuple(BISON_INPUTS),
        "audit": tuple(COLLECTIONS),
        "registrations": (REGISTRATIONS_INPUT,),
    } == rp.STAGE_INPUTS
    with pytest.raises(rp.ReplayError, match="not replayed"):
        rp.stage_topics(Settings(), "jobs")


def test_progress_group_name() -> None:
    assert rp.progress_group("p.leadstream-verify", "r1") == "p.leadstream-replay-verify-r1"


def test_the_job_counter_skips_replayed_contact_outcomes_but_counts_batches() -> None:
    job = [("job_id", b"j")]
    marked = [*job, ("replay.id", b"r1")]
    deltas = count_records(
        [
            ("contacts.verified", [*job, ("verdict", b"deliverable")], 1),
            ("contacts.verified", [*marked, ("verdict", b"risky")], 2),
            ("contacts.rejected", marked, 3),
            ("dlq.verify", [*marked, ("dlq.stage", b"verify")], 4),
            ("batches.ready", [*marked, ("count", b"2")], 5),
        ]
    )
    d = deltas["j"]
    assert d.counts.get("contacts.verified") == 1
    assert "contacts.rejected" not in d.counts
    assert "dlq.verify" not in d.counts
    assert d.verdicts == {"deliverable": 1}
    assert d.batched == 2  # a batch a replay closed is a new batch
