"""The admin API for campaign routing: rules, caps, held contacts and flushes, on the real
ingest app and database — and the batch service's router reading what the API stored."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest

from leadstream.db import make_engine
from leadstream.db.batches import BatchStore, Hold, Member
from leadstream.db.campaigns import CampaignStore, RoutingRule
from leadstream.infra import Stack
from leadstream_batch.routing import NoRoute, Routable, Route, route
from tests.integration.test_ingest_fixtures import World, running_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w


@pytest.fixture
def admin(world: World) -> dict[str, str]:
    return world.keys.auth(world.keys.admin)


@pytest.fixture(autouse=True)
def no_rules(world: World) -> Iterator[None]:
    yield
    engine = make_engine(world.settings, pool_size=1)
    try:
        store = CampaignStore(engine)
        for rule in store.rules():
            store.remove_rule(rule.rule_id)
    finally:
        engine.dispose()


def stored_rules(world: World) -> list[RoutingRule]:
    """The enabled rules, read as the batch service reads them."""
    engine = make_engine(world.settings, pool_size=1)
    try:
        return CampaignStore(engine).rules(enabled_only=True)
    finally:
        engine.dispose()


ROUTES = [
    ("GET", "/v1/admin/routing-rules", None),
    ("POST", "/v1/admin/routing-rules", {"campaign_id": "7", "default": True}),
    ("DELETE", "/v1/admin/routing-rules/r-abc", None),
    ("GET", "/v1/admin/campaigns", None),
    ("PUT", "/v1/admin/campaigns/7/daily-cap", {"leads_per_day": 5}),
    ("GET", "/v1/admin/held", None),
    ("POST", "/v1/admin/held/reroute", {}),
    ("POST", "/v1/admin/batches/flush", None),
]


@pytest.mark.parametrize(("method", "path", "body"), ROUTES)
def test_every_route_needs_an_admin_key(world: World, method: str, path: str, body: object) -> None:
    anonymous = world.client.request(method, path, json=body)
    assert (anonymous.status_code, anonymous.json()["error"]) == (401, "missing_api_key")
    ingest = world.client.request(
        method, path, json=body, headers=world.keys.auth(world.keys.ingest)
    )
    assert (ingest.status_code, ingest.json()["error"]) == (403, "missing_scope")
    revoked = world.client.request(
        method, path, json=body, headers=world.keys.auth(world.keys.revoked)
    )
    assert revoked.status_code == 401


def test_rules_added_over_the_api_route_contacts_in_the_batch_service(
    world: World, admin: dict[str, str]
) -> None:
    cars = world.client.post(
        "/v1/admin/routing-rules",
        json={
            "campaign_id": "101",
            "conditions": {"tags_any": ["Auto", "cars"], "countries": ["US"]},
            "priority": 10,
            "name": "car buyers",
        },
        headers=admin,
    )
    assert cars.status_code == 201, cars.text
    made = cars.json()
    assert made["rule_id"].startswith("r-")
    assert made["conditions"] == {"tags_any": ["auto", "cars"], "countries": ["us"]}
    assert made["description"] == "tags_any=auto,cars countries=us"
    csv = world.client.post(
        "/v1/admin/routing-rules",
        json={"campaign_id": "102", "conditions": {"source": "csv", "fields": {"tier": "Gold"}}},
        headers=admin,
    )
    assert csv.status_code == 201, csv.text
    fallback = world.client.post(
        "/v1/admin/routing-rules", json={"campaign_id": "100", "default": True}, headers=admin
    )
    assert fallback.status_code == 201, fallback.text

    listed = world.client.get("/v1/admin/routing-rules", headers=admin).json()["rules"]
    assert [r["campaign_id"] for r in listed] == ["101", "102", "100"]  # tried in this order
    assert listed[-1]["default"] is True

    # What the batch service reads (enabled rules from Postgres) routes by the API's rules.
    rules = stored_rules(world)
    assert route(Routable(source="api", tags=("CARS",), country="us"), rules) == Route(
        "101", made["rule_id"]
    )
    gold = Routable(source="csv", custom_fields={"tier": "gold"})
    assert route(gold, rules) == Route("102", csv.json()["rule_id"])
    assert route(Routable(source="api"), rules) == Route("100", fallback.json()["rule_id"])

    gone = world.client.delete(
        f"/v1/admin/routing-rules/{fallback.json()['rule_id']}", headers=admin
    )
    assert gone.status_code == 204
    assert isinstance(route(Routable(source="api"), stored_rules(world)), NoRoute)
    again = world.client.delete(
        f"/v1/admin/routing-rules/{fallback.json()['rule_id']}", headers=admin
    )
    assert (again.status_code, again.json()["error"]) == (404, "rule_not_found")


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"campaign_id": "1"}, "give at least one condition"),
        ({"campaign_id": "1", "default": True, "conditions": {"source": "api"}}, "no conditions"),
        ({"campaign_id": "1", "conditions": {"fields": {" ": "x"}}}, "field name"),
    ],
)
def test_invalid_rules_are_refused_with_a_reason(
    world: World, admin: dict[str, str], body: dict[str, object], reason: str
) -> None:
    r = world.client.post("/v1/admin/routing-rules", json=body, headers=admin)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_rule"
    assert reason in r.json()["reason"]
    assert stored_rules(world) == []


def test_unknown_conditions_and_fields_are_refused(world: World, admin: dict[str, str]) -> None:
    r = world.client.post(
        "/v1/admin/routing-rules",
        json={"campaign_id": "1", "conditions": {"city": "Paris"}},
        headers=admin,
    )
    assert r.status_code == 422
    assert "city" in r.text
    mass = world.client.post(
        "/v1/admin/routing-rules",
        json={"campaign_id": "1", "default": True, "rule_id": "r-mine", "enabled": False},
        headers=admin,
    )
    assert mass.status_code == 422
    assert stored_rules(world) == []


def test_a_second_default_rule_is_a_conflict_explained(world: World, admin: dict[str, str]) -> None:
    first = world.client.post(
        "/v1/admin/routing-rules", json={"campaign_id": "1", "default": True}, headers=admin
    )
    assert first.status_code == 201
    second = world.client.post(
        "/v1/admin/routing-rules", json={"campaign_id": "2", "default": True}, headers=admin
    )
    assert second.status_code == 422
    assert "a default rule already exists" in second.json()["reason"]


def test_daily_caps_held_contacts_reroute_and_flush(world: World, admin: dict[str, str]) -> None:
    cap = world.client.put(
        "/v1/admin/campaigns/555/daily-cap", json={"leads_per_day": 40}, headers=admin
    )
    assert cap.status_code == 200, cap.text
    engine = make_engine(world.settings, pool_size=1)
    try:
        assert CampaignStore(engine).daily_caps()["555"] == 40
        campaigns = world.client.get("/v1/admin/campaigns", headers=admin).json()["campaigns"]
        assert {c["campaign_id"]: c["daily_lead_cap"] for c in campaigns}["555"] == 40
        negative = world.client.put(
            "/v1/admin/campaigns/555/daily-cap", json={"leads_per_day": -1}, headers=admin
        )
        assert negative.status_code == 422
        cleared = world.client.put(
            "/v1/admin/campaigns/555/daily-cap", json={"leads_per_day": None}, headers=admin
        )
        assert cleared.status_code == 200
        assert "555" not in CampaignStore(engine).daily_caps()

        batches = BatchStore(engine)
        now = datetime.now(UTC)
        with batches.unit() as unit:
            unit.hold(
                [
                    Hold(
                        contact_id=f"c-{i}",
                        reason="no_route" if i < 2 else "daily_cap",
                        verified_event_id=f"e-{i}",
                        job_id="job-1",
                        contact={"batch_contact": {"email": f"p{i}@example.com"}},
                        campaign_id=None if i < 2 else "555",
                        hold_until=None if i < 2 else date(2030, 1, 1),
                    )
                    for i in range(3)
                ]
            )
        held = world.client.get("/v1/admin/held", headers=admin).json()["held"]
        assert sorted((h["contact_id"], h["reason"], h["email"]) for h in held) == [
            ("c-0", "no_route", "p0@example.com"),
            ("c-1", "no_route", "p1@example.com"),
            ("c-2", "daily_cap", "p2@example.com"),
        ]
        only = world.client.get("/v1/admin/held?reason=daily_cap", headers=admin).json()["held"]
        assert [h["contact_id"] for h in only] == ["c-2"]
        bad = world.client.get("/v1/admin/held?reason=whatever", headers=admin)
        assert bad.status_code == 422

        moved = world.client.post(
            "/v1/admin/held/reroute",
            json={"reason": "no_route", "campaign_id": "777"},
            headers=admin,
        )
        assert (moved.status_code, moved.json()) == (202, {"count": 2})
        marked = {h.contact_id: h for h in batches.holds()}
        assert marked["c-0"].reroute_campaign_id == "777"
        assert marked["c-1"].reroute_requested_at is not None
        assert marked["c-2"].reroute_requested_at is None
        empty = world.client.post("/v1/admin/held/reroute", json={"contact_ids": []}, headers=admin)
        assert empty.status_code == 422

        with batches.unit() as unit:
            for campaign in ("555", "556"):
                batch = unit.create_batch(f"b-{campaign}", f"ev-{campaign}", campaign, None, now)
                member = Member(f"m-{campaign}", f"v-{campaign}", "job-1", {"email": "x@y.z"})
                unit.add_members(batch, [member])
        none = world.client.post("/v1/admin/batches/flush?campaign_id=nope", headers=admin)
        assert (none.status_code, none.json()) == (200, {"count": 0})
        one = world.client.post("/v1/admin/batches/flush?campaign_id=555", headers=admin)
        assert (one.status_code, one.json()) == (200, {"count": 1})
        closed = {b["batch_id"]: b for b in batches.batches()}
        assert (closed["b-555"]["status"], closed["b-555"]["closed_reason"]) == ("closed", "flush")
        assert closed["b-556"]["status"] == "open"
        rest = world.client.post("/v1/admin/batches/flush", headers=admin)
        assert rest.json() == {"count": 1}
    finally:
        engine.dispose()


def test_changes_are_recorded_on_the_audit_trail(world: World, admin: dict[str, str]) -> None:
    made = world.client.post(
        "/v1/admin/routing-rules",
        json={"campaign_id": "9", "conditions": {"job_id": "job-42"}},
        headers=admin,
    )
    assert made.status_code == 201
    rule_id = made.json()["rule_id"]
    assert world.client.delete(f"/v1/admin/routing-rules/{rule_id}", headers=admin).status_code
    mine: list[tuple[str, str]] = []
    for _ in range(50):  # fire and forget: the producer sends within milliseconds
        audit = [e.value for e in world.decoded("audit.events")]
        mine = sorted((a["action"], a["actor"]) for a in audit if a["target_id"] == rule_id)
        if len(mine) == 2:
            break
        time.sleep(0.1)
    actor = f"api_key:{world.keys.admin_id}"
    assert mine == [("rule.created", actor), ("rule.removed", actor)]


@pytest.mark.parametrize(
    "raw",
    [
        '{"campaign_id": "1", "conditions": {"source": "a\\u0000b"}}',
        '{"campaign_id": "1", "conditions": {"fields": {"tier": "\\ud800"}}}',
        '{"campaign_id": "\\u0007", "default": true}',
    ],
)
def test_values_postgres_cannot_store_are_client_errors(
    world: World, admin: dict[str, str], raw: str
) -> None:
    r = world.client.post(
        "/v1/admin/routing-rules",
        content=raw.encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    assert 400 <= r.status_code < 500, r.text
    assert "SQL" not in r.text
    assert stored_rules(world) == []
