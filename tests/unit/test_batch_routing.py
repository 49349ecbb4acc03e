"""Routing rules: which campaign a contact goes to (pure; a table of cases)."""

from __future__ import annotations

import pytest

from leadstream.db.campaigns import InvalidRuleError, RoutingRule, RuleMatch
from leadstream_batch.routing import NoRoute, Routable, Route, route

RULES = [
    RoutingRule("r-src", "10", RuleMatch.of(source="csv"), priority=50),
    RoutingRule("r-tag", "20", RuleMatch.of(tags_any=["Auto", "home"]), priority=60),
    RoutingRule("r-all", "30", RuleMatch.of(tags_all=["vip", "auto"]), priority=10),
    RoutingRule("r-job", "40", RuleMatch.of(job_id="job-7"), priority=70),
    RoutingRule("r-geo", "50", RuleMatch.of(countries=["US", "usa"], states=["TX"]), priority=80),
    RoutingRule("r-fld", "60", RuleMatch.of(fields={"policy_type": "Life"}), priority=90),
    RoutingRule("r-off", "70", RuleMatch.of(source="api"), priority=1, enabled=False),
]
DEFAULT = RoutingRule("r-def", "99", RuleMatch(), is_default=True)


def c(source: str = "api", **kw: object) -> Routable:
    return Routable(source=source, **kw)  # type: ignore[arg-type]


CASES = [
    ("source", c("csv"), "r-src"),
    ("tags any, case-insensitive", c(tags=("AUTO",)), "r-tag"),
    ("all tags beats any (priority)", c("csv", tags=("vip", "Auto")), "r-all"),
    ("all tags needs every tag", c(tags=("vip",)), None),
    ("job", c(job_id="job-7"), "r-job"),
    ("country and state", c(country="us", state="tx"), "r-geo"),
    ("country alone is not enough", c(country="US", state="CA"), None),
    ("custom field, case-insensitive value", c(custom_fields={"policy_type": "LIFE "}), "r-fld"),
    ("custom field missing", c(custom_fields={"other": "life"}), None),
    ("disabled rule never matches", c("api"), None),
    ("first by priority: source 50 before tags 60", c("csv", tags=("home",)), "r-src"),
]


@pytest.mark.parametrize(("why", "contact", "rule"), CASES, ids=[x[0] for x in CASES])
def test_routing_table(why: str, contact: Routable, rule: str | None) -> None:
    decision = route(contact, RULES)
    if rule is None:
        assert isinstance(decision, NoRoute), why
    else:
        assert isinstance(decision, Route), why
        assert decision.rule_id == rule, why
        assert decision.campaign_id == next(r.campaign_id for r in RULES if r.rule_id == rule)


@pytest.mark.parametrize(("why", "contact", "rule"), CASES, ids=[x[0] for x in CASES])
def test_default_rule_takes_what_nothing_matched(
    why: str, contact: Routable, rule: str | None
) -> None:
    decision = route(contact, [DEFAULT, *RULES])  # wherever it sits in the list
    assert isinstance(decision, Route)
    assert decision.rule_id == (rule or "r-def"), why


def test_no_rules_holds_with_a_reason() -> None:
    decision = route(c(), [])
    assert isinstance(decision, NoRoute)
    assert decision.reason == "no_route"


def test_match_round_trips_json_and_rejects_unknown_conditions() -> None:
    m = RuleMatch.of(source="csv", tags_any=["B", "a", "a"], fields={" f ": "X"})
    assert m.tags_any == ("a", "b")
    assert RuleMatch.from_json(m.to_json()) == m
    assert RuleMatch().to_json() == {}
    assert m.describe() == "source=csv tags_any=a,b fields={'f': 'x'}"
    with pytest.raises(InvalidRuleError):
        RuleMatch.from_json({"colour": "red"})
    with pytest.raises(InvalidRuleError):
        RuleMatch.of(fields={" ": "x"})
