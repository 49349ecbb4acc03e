"""Which campaign a verified contact goes to (pure: rules in, decision out).

Rules are tried by priority (lower first; equal priorities in the order given — the store
lists them by age); the first whose every condition holds wins, and the default rule takes
what none matched. A contact no rule matches is held
with reason ``no_route`` until an operator adds a rule and re-routes it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol


class MatchLike(Protocol):
    @property
    def source(self) -> str | None: ...
    @property
    def tags_any(self) -> Sequence[str]: ...
    @property
    def tags_all(self) -> Sequence[str]: ...
    @property
    def job_id(self) -> str | None: ...
    @property
    def countries(self) -> Sequence[str]: ...
    @property
    def states(self) -> Sequence[str]: ...
    @property
    def fields(self) -> Mapping[str, str]: ...


class RuleLike(Protocol):
    """A routing rule (``leadstream.db.campaigns.RoutingRule`` fits)."""

    @property
    def rule_id(self) -> str: ...
    @property
    def campaign_id(self) -> str: ...
    @property
    def match(self) -> MatchLike: ...
    @property
    def priority(self) -> int: ...
    @property
    def is_default(self) -> bool: ...
    @property
    def enabled(self) -> bool: ...


@dataclass(frozen=True, slots=True)
class Routable:
    """The attributes rules look at."""

    source: str
    tags: tuple[str, ...] = ()
    job_id: str | None = None
    country: str | None = None
    state: str | None = None
    custom_fields: Mapping[str, str] | None = None


@dataclass(frozen=True, slots=True)
class Route:
    campaign_id: str
    rule_id: str | None


@dataclass(frozen=True, slots=True)
class NoRoute:
    reason: str = "no_route"
    detail: str = "no routing rule matched and there is no default rule"


def _norm(value: str | None) -> str:
    return (value or "").strip().lower()


def matches(match: MatchLike, c: Routable) -> bool:
    """Every condition that is set holds (an empty match holds for everything)."""
    if match.source and _norm(match.source) != _norm(c.source):
        return False
    if match.job_id and match.job_id != c.job_id:
        return False
    tags = {_norm(t) for t in c.tags}
    if match.tags_any and not tags.intersection(match.tags_any):
        return False
    if match.tags_all and not set(match.tags_all) <= tags:
        return False
    if match.countries and _norm(c.country) not in match.countries:
        return False
    if match.states and _norm(c.state) not in match.states:
        return False
    fields = c.custom_fields or {}
    return all(_norm(fields.get(name)) == want for name, want in match.fields.items())


def route(contact: Routable, rules: Sequence[RuleLike]) -> Route | NoRoute:
    """The first enabled rule that matches, else the default rule, else :class:`NoRoute`."""
    default: RuleLike | None = None
    for rule in sorted(rules, key=lambda r: r.priority):
        if not rule.enabled:
            continue
        if rule.is_default:
            default = default or rule
        elif matches(rule.match, contact):
            return Route(rule.campaign_id, rule.rule_id)
    if default is not None:
        return Route(default.campaign_id, default.rule_id)
    return NoRoute()
