"""The status page's figures without I/O: a job's phase, progress, stalled flag and what an
anonymous caller does not get; each stage's outputs and its out rate."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leadstream.ops.status import PartitionLag, PipelineStatus, StageStatus, TopicStatus
from leadstream.settings import Settings
from leadstream_ingest.job_view import JobOut
from leadstream_ingest.pipeline_status import outputs_of, summarize
from leadstream_ingest.status_view import phase_of, processed_of, summarize_job

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def job(**changes: Any) -> JobOut:
    base: dict[str, Any] = {
        "job_id": "j1",
        "kind": "upload",
        "name": "acme-leads.csv",
        "source": "upload",
        "status": "processing",
        "created_at": NOW - timedelta(seconds=90),
        "sealed_at": NOW - timedelta(seconds=80),
        "expected_total": 10,
        "received": 10,
        "counts": {},
        "rejected_by_reason": {},
        "verdicts": {},
        "batched": 0,
        "synced": 0,
        "rate_per_s": 0.0,
        "eta_s": None,
        "updated_at": NOW - timedelta(seconds=1),
        "completed_at": None,
        "error": None,
        "details": {},
    }
    return JobOut(**{**base, **changes})


def test_processed_counts_terminal_outcomes_only() -> None:
    counts = {
        "contacts.raw": 10,
        "contacts.filtered": 6,
        "contacts.rejected": 2,
        "contacts.verified": 3,
        "dlq.filter": 1,
        "dlq.verify": 1,
        "dlq.batch": 5,
    }
    assert processed_of(counts) == 2 + 3 + 1 + 1


@pytest.mark.parametrize(
    ("status", "counts", "phase"),
    [
        ("receiving", {"contacts.raw": 3}, "receiving"),
        ("processing", {}, "queued"),
        ("processing", {"contacts.filtered": 4, "filter.rejected": 1}, "filtering"),
        (
            "processing",
            {"contacts.filtered": 8, "filter.rejected": 1, "dlq.filter": 1},
            "verifying",
        ),
        ("completed", {"contacts.verified": 10}, "completed"),
        ("failed", {}, "failed"),
    ],
)
def test_phase(status: str, counts: dict[str, int], phase: str) -> None:
    assert phase_of(job(status=status, counts=counts)) == phase


def test_summary_progress_elapsed_eta() -> None:
    counts = {"contacts.rejected": 1, "contacts.verified": 3}
    s = summarize_job(job(counts=counts, eta_s=12.0, rate_per_s=0.5), NOW, redact=False)
    assert (s.processed, s.progress, s.elapsed_s, s.eta_s) == (4, 0.4, 90.0, 12.0)
    assert (s.active, s.stalled, s.name) == (True, False, "acme-leads.csv")
    unknown = summarize_job(job(status="receiving", expected_total=None), NOW, redact=False)
    assert (unknown.progress, unknown.phase) == (None, "receiving")
    empty = summarize_job(job(expected_total=0, status="completed"), NOW, redact=False)
    assert (empty.progress, empty.eta_s, empty.active) == (1.0, None, False)


def test_completed_job_elapsed_stops_at_completion() -> None:
    done = job(status="completed", completed_at=NOW - timedelta(seconds=30), eta_s=0.0)
    s = summarize_job(done, NOW, redact=False)
    assert (s.elapsed_s, s.eta_s, s.active) == (60.0, None, False)


def test_a_running_job_without_progress_for_ten_minutes_is_stalled() -> None:
    old = job(updated_at=NOW - timedelta(minutes=11))
    assert summarize_job(old, NOW, redact=False).stalled
    assert not summarize_job(
        job(status="completed", updated_at=old.updated_at), NOW, redact=False
    ).stalled


def test_anonymous_summaries_have_no_names_or_errors() -> None:
    failed = job(status="failed", error="row 3: bad value 'jane@acme.com'")
    s = summarize_job(failed, NOW, redact=True)
    assert (s.name, s.error) == (None, None)
    assert summarize_job(failed, NOW, redact=False).error == failed.error


def test_stage_outputs_from_the_catalog() -> None:
    assert outputs_of("filter") == ["contacts.filtered", "contacts.rejected"]
    assert outputs_of("verify") == ["contacts.rejected", "contacts.verified"]
    assert outputs_of("batch") == ["batches.ready"]
    assert outputs_of("bison-sync") == ["batches.synced", "bison.events"]
    assert outputs_of("audit") == []


def test_summarize_adds_out_rates_and_dead_letter_rates() -> None:
    settings = Settings(topic_prefix="p.")
    stage = StageStatus(
        "filter", "p.leadstream-filter", "stable", 2, [PartitionLag("p.contacts.raw", 0, 5, 9)], 3
    )
    stage.rate_in = 4.0
    status = PipelineStatus(
        [stage, StageStatus("audit", "p.leadstream-audit", "empty", 0)],
        [
            TopicStatus("p.contacts.filtered", 100, 2.5),
            TopicStatus("p.contacts.rejected", 10, 0.5),
            TopicStatus("p.dlq.filter", 3, 0.25),
        ],
        0.0,
    )
    flt, audit = summarize(status, settings)
    assert (flt.lag, flt.instances, flt.rate_in, flt.rate_out) == (4, 2, 4.0, 3.0)
    assert (flt.dead_letters, flt.dead_letter_rate) == (3, 0.25)
    assert (audit.rate_out, audit.dead_letter_rate, audit.outputs) == (None, None, ())
    first = PipelineStatus([stage], [TopicStatus("p.contacts.filtered", 100, None)], 0.0)
    assert summarize(first, settings)[0].rate_out is None  # one sample: no rate yet
