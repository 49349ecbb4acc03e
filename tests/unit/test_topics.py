"""The topic catalog and the pure diff that apply is built on (no Kafka)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from leadstream.errors import ConfigError
from leadstream.settings import Settings
from leadstream.topics import (
    CATALOG,
    DLQ_STAGES,
    Action,
    Kind,
    ObservedTopic,
    TopicSettings,
    UnknownTopicError,
    diff,
    dlq_topic,
    topic,
)
from leadstream.topics.spec import DAY_MS

SETTINGS = TopicSettings(topic_prefix="p.")
STAGES = {"filter", "verify", "batch", "bison-sync", "jobs", "audit", "registrations"}
TOPICS = {
    "contacts.raw", "contacts.filtered", "contacts.rejected", "contacts.verified",
    "batches.ready", "batches.synced", "bison.events", "registrations", "audit.requests",
    "audit.events", "jobs.state", "jobs.events",
}  # fmt: skip


def _retention(name: str) -> int:
    return int(topic(name).plan(SETTINGS).config["retention.ms"])


def test_catalog_names_are_unique_and_valid_kafka_names() -> None:
    names = [spec.name for spec in CATALOG]
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z0-9._-]{1,200}", n) for n in names)
    assert {n for n in names if not n.startswith("dlq.")} == TOPICS


def test_every_stage_has_a_dead_letter_topic_without_a_schema() -> None:
    assert set(DLQ_STAGES) == STAGES
    for stage in STAGES:
        spec = dlq_topic(stage)
        assert spec.name == f"dlq.{stage}"
        assert spec.kind is Kind.DLQ
        assert spec.value_schema is None
        assert spec.subject is None
    assert {s.name for s in CATALOG if s.kind is Kind.DLQ} == {f"dlq.{s}" for s in STAGES}


def test_every_other_topic_carries_a_schema_and_a_key() -> None:
    for spec in CATALOG:
        if spec.kind is not Kind.DLQ:
            assert spec.value_schema, spec.name
            assert spec.subject == f"{spec.name}-value"
        assert spec.key
        assert spec.producers
        assert spec.consumers


def test_jobs_state_is_compacted_with_compaction_tuning() -> None:
    config = topic("jobs.state").plan(SETTINGS).config
    assert config["cleanup.policy"] == "compact"
    assert "retention.ms" not in config
    assert int(config["segment.ms"]) <= DAY_MS
    assert 0 < float(config["min.cleanable.dirty.ratio"]) <= 0.5
    assert int(config["max.compaction.lag.ms"]) <= 7 * DAY_MS
    assert int(config["delete.retention.ms"]) >= 60 * 60 * 1000


def test_contacts_raw_keeps_the_longest_retention() -> None:
    raw = _retention("contacts.raw")
    assert raw >= 90 * DAY_MS
    deleting = [s.name for s in CATALOG if s.kind is not Kind.STATE]
    assert all(raw >= _retention(n) for n in deleting)
    assert _retention("contacts.raw") > _retention("contacts.filtered")


def test_audit_topics_are_shorter_than_stage_topics() -> None:
    for name in ("audit.requests", "audit.events"):
        assert _retention(name) < _retention("contacts.verified")


def test_plans_follow_the_settings() -> None:
    settings = TopicSettings(
        topic_prefix="t1.",
        topic_partitions=12,
        topic_dlq_partitions=2,
        topic_replication_factor=3,
        topic_min_insync_replicas=2,
        topic_replay_retention_days=100,
    )
    raw = topic("contacts.raw").plan(settings)
    assert (raw.name, raw.logical, raw.partitions, raw.replication_factor) == (
        "t1.contacts.raw",
        "contacts.raw",
        12,
        3,
    )
    assert raw.config["min.insync.replicas"] == "2"
    assert raw.config["retention.ms"] == str(100 * DAY_MS)
    assert dlq_topic("verify").plan(settings).partitions == 2
    assert all(s.plan(settings).config["min.insync.replicas"] == "2" for s in CATALOG)


def test_defaults_are_local_sized() -> None:
    settings = TopicSettings.of(Settings(topic_prefix="x."))
    assert settings.topic_prefix == "x."
    plan = topic("contacts.raw").plan(settings)
    assert (plan.partitions, plan.replication_factor, plan.config["min.insync.replicas"]) == (
        6,
        1,
        "1",
    )


def test_min_insync_replicas_cannot_exceed_replication() -> None:
    with pytest.raises(ConfigError):
        TopicSettings(topic_replication_factor=1, topic_min_insync_replicas=2)


def test_unknown_topic_is_a_typed_error() -> None:
    with pytest.raises(UnknownTopicError):
        topic("contacts.nope")


# --- diff: the decision apply makes -----------------------------------------------------------


def _observed(name: str = "p.contacts.raw", **change: object) -> ObservedTopic:
    plan = topic("contacts.raw").plan(SETTINGS)
    values: dict[str, object] = {
        "name": name,
        "partitions": plan.partitions,
        "replication_factor": plan.replication_factor,
        "config": dict(plan.config),
        "overrides": frozenset(plan.config),
    }
    values.update(change)
    return ObservedTopic(**values)  # type: ignore[arg-type]


def test_diff_creates_a_missing_topic() -> None:
    changes, unfixable, unmanaged = diff(topic("contacts.raw").plan(SETTINGS), None)
    assert [(c.action, c.topic) for c in changes] == [(Action.CREATE, "p.contacts.raw")]
    assert unfixable == unmanaged == []


def test_diff_of_a_matching_topic_is_empty() -> None:
    assert diff(topic("contacts.raw").plan(SETTINGS), _observed()) == ([], [], [])


def test_diff_resets_drifted_config() -> None:
    plan = topic("contacts.raw").plan(SETTINGS)
    drifted = _observed(config={**plan.config, "retention.ms": "1000"})
    changes, unfixable, _ = diff(plan, drifted)
    assert [(c.action, c.setting, c.current, c.wanted) for c in changes] == [
        (Action.SET_CONFIG, "retention.ms", "1000", plan.config["retention.ms"])
    ]
    assert unfixable == []


def test_diff_adds_partitions_but_never_removes_them() -> None:
    plan = topic("contacts.raw").plan(SETTINGS)
    changes, unfixable, _ = diff(plan, _observed(partitions=3))
    assert [(c.action, c.current, c.wanted) for c in changes] == [
        (Action.ADD_PARTITIONS, "3", str(plan.partitions))
    ]
    assert unfixable == []
    changes, unfixable, _ = diff(plan, _observed(partitions=9))
    assert changes == []
    assert [(d.setting, d.current, d.wanted) for d in unfixable] == [("partitions", "9", "6")]


def test_diff_reports_replication_drift_as_unfixable() -> None:
    changes, unfixable, _ = diff(
        topic("contacts.raw").plan(SETTINGS), _observed(replication_factor=3)
    )
    assert changes == []
    assert [d.setting for d in unfixable] == ["replication_factor"]


def test_diff_reports_unmanaged_overrides() -> None:
    plan = topic("contacts.raw").plan(SETTINGS)
    observed = _observed(
        config={**plan.config, "segment.bytes": "1024"},
        overrides=frozenset({*plan.config, "segment.bytes"}),
    )
    changes, unfixable, unmanaged = diff(plan, observed)
    assert (changes, unfixable) == ([], [])
    assert [(d.setting, d.current) for d in unmanaged] == [("segment.bytes", "1024")]


def test_docs_describe_every_topic_and_schema() -> None:
    docs = (Path(__file__).resolve().parents[2] / "docs" / "events.md").read_text()
    for spec in CATALOG:
        assert f"`{spec.name}`" in docs, spec.name
        if spec.value_schema:
            assert f"| {spec.value_schema} |" in docs, spec.value_schema
