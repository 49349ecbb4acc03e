"""Make the cluster match the catalog: create, grow, re-configure; report what it cannot fix."""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from confluent_kafka import KafkaError, KafkaException

# confluent-kafka re-exports these without __all__, which strict mypy does not count as export.
from confluent_kafka.admin import (  # type: ignore[attr-defined]
    AdminClient,
    AlterConfigOpType,
    ConfigEntry,
    ConfigResource,
    ConfigSource,
    NewPartitions,
    NewTopic,
    ResourceType,
)

from leadstream.topics.catalog import CATALOG
from leadstream.topics.diff import diff
from leadstream.topics.errors import TopicAdminError
from leadstream.topics.report import Action, ApplyReport, Change, Drift, ObservedTopic
from leadstream.topics.settings import TopicSettings
from leadstream.topics.spec import TopicPlan, TopicSpec

_TOPIC_OVERRIDE = ConfigSource.DYNAMIC_TOPIC_CONFIG  # (the client reports sources as ints)
_POLL_S = 0.1


def admin_client(settings: TopicSettings) -> AdminClient:
    """An admin client for the configured cluster."""
    return AdminClient({"bootstrap.servers": settings.kafka_bootstrap})


def plan(settings: TopicSettings, catalog: Sequence[TopicSpec] = CATALOG) -> list[TopicPlan]:
    """Every topic of the catalog as it should exist for these settings."""
    return [spec.plan(settings) for spec in catalog]


def apply(
    settings: TopicSettings,
    *,
    dry_run: bool = False,
    catalog: Sequence[TopicSpec] = CATALOG,
    admin: AdminClient | None = None,
    timeout_s: float = 30.0,
) -> ApplyReport:
    """Create missing topics, add partitions, reset drifted config; idempotent.

    Fewer partitions or another replication factor than the cluster has cannot be fixed
    by an admin call: they are reported in ``unfixable`` and left alone.
    """
    plans = plan(settings, catalog)
    client = admin or admin_client(settings)
    observed = observe(client, [p.name for p in plans], timeout_s)
    changes: list[Change] = []
    unfixable: list[Drift] = []
    unmanaged: list[Drift] = []
    for topic_plan in plans:
        fix, cannot, extra = diff(topic_plan, observed.get(topic_plan.name))
        changes += fix
        unfixable += cannot
        unmanaged += extra
    if changes and not dry_run:
        _execute(client, {p.name: p for p in plans}, changes, timeout_s)
        _await(client, [p for p in plans if p.name in {c.topic for c in changes}], timeout_s)
    return ApplyReport(
        dry_run=dry_run,
        topics=tuple(p.name for p in plans),
        changes=tuple(changes),
        unfixable=tuple(unfixable),
        unmanaged=tuple(unmanaged),
    )


def observe(
    client: AdminClient, names: Iterable[str], timeout_s: float
) -> dict[str, ObservedTopic]:
    """The current partitions, replication and config of those of ``names`` that exist."""
    try:
        metadata = client.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise TopicAdminError(f"cannot list topics: {exc}") from exc
    present = {name: metadata.topics[name] for name in names if name in metadata.topics}
    if not present:
        return {}
    resources = [ConfigResource(ResourceType.TOPIC, name) for name in present]
    described = client.describe_configs(resources, request_timeout=timeout_s)
    observed: dict[str, ObservedTopic] = {}
    for resource, future in described.items():
        entries: Mapping[str, ConfigEntry] = _result(future, f"describe {resource.name}", timeout_s)
        partitions = present[resource.name].partitions
        observed[resource.name] = ObservedTopic(
            name=resource.name,
            partitions=len(partitions),
            replication_factor=max((len(p.replicas) for p in partitions.values()), default=0),
            config={k: e.value for k, e in entries.items() if e.value is not None},
            overrides=frozenset(
                k for k, e in entries.items() if ConfigSource(e.source) is _TOPIC_OVERRIDE
            ),
        )
    return observed


def _execute(
    client: AdminClient, plans: Mapping[str, TopicPlan], changes: list[Change], timeout_s: float
) -> None:
    creates = [plans[c.topic] for c in changes if c.action is Action.CREATE]
    grows = [
        NewPartitions(c.topic, int(c.wanted)) for c in changes if c.action is Action.ADD_PARTITIONS
    ]
    configs: dict[str, list[ConfigEntry]] = {}
    for c in changes:
        if c.action is Action.SET_CONFIG:
            entry = ConfigEntry(c.setting, c.wanted, incremental_operation=AlterConfigOpType.SET)
            configs.setdefault(c.topic, []).append(entry)
    futures: list[tuple[str, Future[Any]]] = []
    if creates:
        new = [
            NewTopic(p.name, p.partitions, p.replication_factor, config=dict(p.config))
            for p in creates
        ]
        for name, fut in client.create_topics(new, request_timeout=timeout_s).items():
            futures.append((f"create {name}", fut))
    if grows:
        for name, fut in client.create_partitions(grows, request_timeout=timeout_s).items():
            futures.append((f"add partitions to {name}", fut))
    if configs:
        resources = [
            ConfigResource(ResourceType.TOPIC, name, incremental_configs=entries)
            for name, entries in configs.items()
        ]
        altered = client.incremental_alter_configs(resources, request_timeout=timeout_s)
        for resource, fut in altered.items():
            futures.append((f"alter config of {resource.name}", fut))
    failures: list[str] = []
    for what, fut in futures:
        try:
            _result(fut, what, timeout_s)
        except TopicAdminError as exc:
            if exc.code != KafkaError.TOPIC_ALREADY_EXISTS:  # a concurrent apply won the race
                failures.append(str(exc))
    if failures:
        raise TopicAdminError("; ".join(failures))


def _await(client: AdminClient, plans: Sequence[TopicPlan], timeout_s: float) -> None:
    """Wait until the cluster shows the changes: brokers apply topic config and metadata
    a moment after the admin call returns, and a second apply must then find nothing to do."""
    deadline = time.monotonic() + timeout_s
    pending: list[Change] = []
    while time.monotonic() < deadline:
        try:
            observed = observe(client, [p.name for p in plans], timeout_s)
        except TopicAdminError:  # a just-created topic may not be describable yet
            observed = {}
        pending = [c for p in plans for c in diff(p, observed.get(p.name))[0]]
        if not pending:
            return
        time.sleep(_POLL_S)
    shown = ", ".join(f"{c.topic} {c.setting}" for c in pending[:5])
    raise TopicAdminError(f"after {timeout_s:g}s the cluster still does not show: {shown}")


def _result(future: Future[Any], what: str, timeout_s: float) -> Any:
    try:
        return future.result(timeout=timeout_s)
    except KafkaException as exc:
        error = exc.args[0] if exc.args else None
        code = error.code() if isinstance(error, KafkaError) else None
        raise TopicAdminError(f"{what}: {exc}", code=code) from exc
    except TimeoutError as exc:
        raise TopicAdminError(f"{what}: no answer within {timeout_s:g}s") from exc
