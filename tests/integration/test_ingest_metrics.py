"""The ingest API's /metrics counts requests by route template, method and status, and times
them, exactly as many as were served (its registry belongs to the app, so the numbers are this
test's own)."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import World, running_world

pytestmark = pytest.mark.integration

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(world: World) -> Samples:
    text = world.client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def get(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)


def test_requests_are_counted_and_timed_by_route_template(stack: Stack) -> None:
    with running_world(stack) as world:
        auth = world.keys.auth(world.keys.ingest)
        before = scrape(world)
        for _ in range(3):  # one template for every job id
            r = world.client.get(f"/v1/jobs/{uuid.uuid4()}", headers=auth)
            assert r.status_code == 404
        for _ in range(2):
            assert world.client.post("/v1/contacts", json={}).status_code == 401
        r = world.client.post(
            "/v1/contacts", json={"email": f"m.{uuid.uuid4().hex[:8]}@example.com"}, headers=auth
        )
        assert r.status_code == 202
        assert world.client.get("/v1/no-such-route").status_code == 404
        after = scrape(world)

    def delta(name: str, **labels: str) -> float:
        return get(after, name, **labels) - get(before, name, **labels)

    requests = "leadstream_http_requests_total"
    jobs = {"route": "/v1/jobs/{job_id}", "method": "GET"}
    contacts = {"route": "/v1/contacts", "method": "POST"}
    assert delta(requests, **jobs, status="404") == 3
    assert delta(requests, **contacts, status="401") == 2
    assert delta(requests, **contacts, status="202") == 1
    assert delta(requests, route="<unmatched>", method="GET", status="404") == 1
    assert delta("leadstream_http_request_seconds_count", **jobs) == 3
    assert delta("leadstream_http_request_seconds_count", **contacts) == 3
    assert delta("leadstream_http_request_seconds_sum", **contacts) > 0
    assert delta("leadstream_http_request_seconds_bucket", **contacts, le="+Inf") == 3
    assert delta("leadstream_ingest_contacts_accepted_total", source="api") == 1
    # the scrape itself is the one request in flight while /metrics is rendered
    assert get(after, "leadstream_http_requests_in_flight") == 1
