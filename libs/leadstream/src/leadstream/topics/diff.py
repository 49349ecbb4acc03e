"""Compare a planned topic with the observed one: pure, no Kafka client."""

from __future__ import annotations

from leadstream.topics.report import Action, Change, Drift, ObservedTopic
from leadstream.topics.spec import TopicPlan


def diff(
    plan: TopicPlan, observed: ObservedTopic | None
) -> tuple[list[Change], list[Drift], list[Drift]]:
    """The changes to make, the drift that cannot be fixed, and unmanaged overrides."""
    if observed is None:
        wanted = f"{plan.partitions} partitions, replication {plan.replication_factor}"
        return [Change(plan.name, Action.CREATE, "topic", None, wanted)], [], []
    changes: list[Change] = []
    unfixable: list[Drift] = []
    if plan.partitions > observed.partitions:
        changes.append(
            Change(
                plan.name,
                Action.ADD_PARTITIONS,
                "partitions",
                str(observed.partitions),
                str(plan.partitions),
            )
        )
    elif plan.partitions < observed.partitions:
        unfixable.append(
            Drift(
                plan.name,
                "partitions",
                str(observed.partitions),
                str(plan.partitions),
                "Kafka cannot remove partitions; recreate the topic or raise the setting",
            )
        )
    if plan.replication_factor != observed.replication_factor:
        unfixable.append(
            Drift(
                plan.name,
                "replication_factor",
                str(observed.replication_factor),
                str(plan.replication_factor),
                "needs a partition reassignment (kafka-reassign-partitions)",
            )
        )
    for key, wanted in sorted(plan.config.items()):
        current = observed.config.get(key)
        if current != wanted:
            changes.append(Change(plan.name, Action.SET_CONFIG, key, current, wanted))
    unmanaged = [
        Drift(
            plan.name, key, observed.config.get(key), None, "set on the topic, not in the catalog"
        )
        for key in sorted(observed.overrides - plan.config.keys())
    ]
    return changes, unfixable, unmanaged
