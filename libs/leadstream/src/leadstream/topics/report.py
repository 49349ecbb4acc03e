"""What :func:`leadstream.topics.apply` found and did, as data."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum


class Action(StrEnum):
    """A change apply can make."""

    CREATE = "create"
    SET_CONFIG = "set-config"
    ADD_PARTITIONS = "add-partitions"


@dataclass(frozen=True, slots=True)
class ObservedTopic:
    """A topic as it is on the cluster."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]
    overrides: frozenset[str]  # keys set on the topic itself (not broker defaults)


@dataclass(frozen=True, slots=True)
class Change:
    """A difference apply fixes (or, in a dry run, would fix)."""

    topic: str
    action: Action
    setting: str  # a config key, "partitions", or "topic" for a create
    current: str | None
    wanted: str


@dataclass(frozen=True, slots=True)
class Drift:
    """A difference apply cannot or will not fix; a person decides."""

    topic: str
    setting: str
    current: str | None
    wanted: str | None
    reason: str


@dataclass(frozen=True, slots=True)
class ApplyReport:
    """The outcome of one apply: every topic considered, what changed, what drifted."""

    dry_run: bool
    topics: tuple[str, ...]
    changes: tuple[Change, ...]
    unfixable: tuple[Drift, ...]  # fewer partitions wanted, replication factor differs
    unmanaged: tuple[Drift, ...]  # overrides set by hand on keys the catalog does not declare

    @property
    def changed(self) -> bool:
        """Whether anything was (or, in a dry run, would be) changed."""
        return bool(self.changes)

    @property
    def ok(self) -> bool:
        """The cluster matches (or, after this apply, will match) the catalog."""
        return not self.unfixable
