"""The status page at ``/ui`` in a real browser (Debian's Chromium, headless, driven by
Playwright) against the ingest app on the real stack: it asks for a key, then shows the
stages with their lag and dead letters and a running job with its progress, phase and ETA,
exactly as ``GET /v1/status`` gives them, and follows the job live until it completes.

A screenshot of the page with the job in progress is saved under pytest's ``tmp_path`` and
copied to ``test-artifacts/status-page.png`` (not versioned).
"""

from __future__ import annotations

import dataclasses
import json
import shutil
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import ConsoleMessage, Page, Route, expect, sync_playwright

from leadstream.infra import Stack
from leadstream.jobs import JobState
from tests.integration.test_ingest_fixtures import Server, World, running_world
from tests.support.kafka import produce

pytestmark = pytest.mark.integration

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
WAIT_MS = 30_000  # Chromium on a small, busy machine is slow to start and to render


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w


def _publish_state(world: World, state: JobState) -> None:
    topic = world.settings.topic("jobs.state")
    produce(
        world.settings,
        topic,
        [(state.job_id.encode(), world.serde.serialize(state.to_record(), topic), None)],
    )


def _submit_job(world: World, n: int, name: str | None = None) -> str:
    contacts = [{"email": f"p{i}.{uuid.uuid4().hex[:6]}@example.com"} for i in range(n)]
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": contacts, "name": name},
        headers=world.keys.auth(world.keys.ingest),
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def _rate(value: float | None) -> str:
    """What the page shows for a rate (app.js ``rate``)."""
    if value is None:
        return "–"
    return f"{value:.1f}" if value < 10 else f"{round(value):,}"


def _console_problem(message: ConsoleMessage, into: list[str]) -> None:
    """Console errors, but for the expected 401 of the first, key-less status request
    (Chromium logs every failed load); a CSP violation or a script error is a problem."""
    expected = "401" in message.text and message.location.get("url", "").endswith("/v1/status")
    if message.type == "error" and not expected:
        into.append(message.text)


class StatusFeed:
    """Every ``/v1/status`` body the page received; ``freeze()`` makes the page get the last
    one again and again, so the DOM can be compared with exactly what it rendered."""

    def __init__(self, page: Page) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.frozen: dict[str, Any] | None = None
        self.served_frozen = 0
        page.route("**/v1/status", self._handle)

    def _handle(self, route: Route) -> None:
        if self.frozen is not None:
            self.served_frozen += 1
            route.fulfill(status=200, json=self.frozen)
            return
        response = route.fetch()
        if response.status == 200:
            self.bodies.append(response.json())
        route.fulfill(response=response)

    def freeze(self) -> dict[str, Any]:
        assert self.bodies, "the page received no status"
        self.frozen = self.bodies[-1]
        self.served_frozen = 0
        return self.frozen

    def thaw(self) -> None:
        self.frozen = None


def test_status_page_shows_stages_and_follows_a_live_job(world: World, tmp_path: Path) -> None:
    # The page itself is public and holds no data; the data needs a key.
    page_response = world.client.get("/ui")
    assert page_response.status_code == 200
    assert "script-src 'self'" in page_response.headers["content-security-policy"]
    assert world.client.get("/v1/status").status_code == 401

    # A job of 7 contacts (on contacts.raw, which no filter consumes here: lag 7), two dead
    # letters of filter, and the tracker's state: 3 of 7 done, filtering, ETA 8 s.
    job_id = _submit_job(world, 7, name="spring list")
    dlq = world.settings.topic("dlq.filter")
    produce(world.settings, dlq, [(b"k", b"not avro", None), (b"k", b"not avro", None)])
    now = int(time.time() * 1000)
    state = JobState(
        job_id=job_id,
        status="processing",
        started_at=now - 6000,
        updated_at=now,
        event_time=now,
        event_id=f"state-{job_id}-1",
        kind="batch",
        expected_total=7,
        counts={
            "contacts.raw": 7,
            "contacts.filtered": 2,
            "contacts.rejected": 1,
            "filter.rejected": 1,
            "contacts.verified": 2,
        },
        rejected_by_reason={"duplicate": 1},
        verdicts={"deliverable": 2},
        rate_per_s=0.5,
        eta_s=8.0,
    )
    _publish_state(world, state)

    shot = tmp_path / "status-page.png"
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(locale="en-US", viewport={"width": 1200, "height": 900})
            page.set_default_timeout(WAIT_MS)
            problems: list[str] = []
            page.on("console", lambda m: _console_problem(m, problems))
            page.on("pageerror", lambda e: problems.append(str(e)))
            feed = StatusFeed(page)
            page.goto(f"{world.server.url}/ui")

            # No key yet: the page asks for one (and shows no data).
            expect(page.locator("#key-form")).to_be_visible(timeout=WAIT_MS)
            expect(page.locator("#stages")).to_be_hidden()
            page.fill("#key-input", world.keys.ingest)
            page.click("#key-form button[type=submit]")

            row = page.locator(f'#job-rows tr[data-job-id="{job_id}"]')
            filter_row = page.locator('#stage-rows tr[data-stage="filter"]')
            expect(row.locator(".progress-text")).to_have_text("3 / 7 (42%)", timeout=WAIT_MS)
            expect(filter_row.locator('[data-field="lag"]')).to_have_text("7", timeout=WAIT_MS)
            expect(filter_row.locator('[data-field="dead_letters"]')).to_have_text(
                "2", timeout=WAIT_MS
            )

            # Rates need two Kafka samples: wait for them (0.0 here, no stage consumes).
            expect(filter_row.locator('[data-field="rate_in"]')).not_to_have_text("–")

            # Compare the page with exactly the status it rendered.
            status = feed.freeze()
            served = feed.served_frozen
            deadline = time.monotonic() + WAIT_MS / 1000
            while feed.served_frozen < served + 1 and time.monotonic() < deadline:
                page.wait_for_timeout(100)  # lets Playwright serve the page's next poll
            assert feed.served_frozen > served, "the page stopped polling"
            expect(page.locator("#connection")).to_have_attribute("data-state", "live")
            page.screenshot(path=str(shot), full_page=True)
            _assert_page_shows(page, status, job_id)

            # The status is the truth of the stack, not just what the page was given.
            stages = {s["stage"]: s for s in status["stages"]}
            assert set(stages) == {"filter", "verify", "batch", "bison-sync", "audit"}
            assert (stages["filter"]["lag"], stages["filter"]["dead_letters"]) == (7, 2)
            assert (stages["verify"]["lag"], stages["verify"]["dead_letters"]) == (0, 0)
            assert (stages["filter"]["rate_in"], stages["filter"]["rate_out"]) == (0.0, 0.0)
            assert stages["filter"]["outputs"] == ["contacts.filtered", "contacts.rejected"]
            job = next(j for j in status["jobs"] if j["job_id"] == job_id)
            assert (job["processed"], job["expected_total"], job["phase"]) == (3, 7, "filtering")
            assert (job["name"], job["eta_s"], job["active"]) == ("spring list", 8.0, True)
            assert status["running"] >= 1

            # Live: the tracker completes the job; the page follows without a reload.
            feed.thaw()
            done_counts = {**state.counts, "contacts.filtered": 6, "contacts.verified": 6}
            done = dataclasses.replace(
                state,
                status="completed",
                counts=done_counts,
                updated_at=now + 4000,
                event_time=now + 4000,
                completed_at=now + 4000,
                event_id=f"state-{job_id}-2",
                eta_s=0.0,
            )
            _publish_state(world, done)
            expect(row).to_have_attribute("data-status", "completed", timeout=WAIT_MS)
            expect(row.locator(".progress-text")).to_have_text("7 / 7 (100%)")
            expect(page.locator(f'#banner li[data-job-id="{job_id}"]')).to_have_count(0)
            assert not problems, problems
        finally:
            browser.close()

    ARTIFACTS.mkdir(exist_ok=True)
    shutil.copyfile(shot, ARTIFACTS / "status-page.png")
    assert shot.stat().st_size > 10_000  # a rendered page, not a blank one
    print(f"status page screenshot: {shot} (copy: {ARTIFACTS / 'status-page.png'})")


def _assert_page_shows(page: Page, status: dict[str, Any], job_id: str) -> None:
    """Every stage and every job of ``status`` is on the page with its numbers."""
    rows = page.locator("#stage-rows tr")
    expect(rows).to_have_count(len(status["stages"]))
    for stage in status["stages"]:
        row = page.locator(f'#stage-rows tr[data-stage="{stage["stage"]}"]')
        shown = {
            f: row.locator(f'[data-field="{f}"]').inner_text()
            for f in ("state", "instances", "lag", "dead_letters", "rate_in", "rate_out")
        }
        assert shown == {
            "state": stage["state"],
            "instances": f"{stage['instances']:,}",
            "lag": f"{stage['lag']:,}",
            "dead_letters": f"{stage['dead_letters']:,}",
            "rate_in": _rate(stage["rate_in"]),
            "rate_out": _rate(stage["rate_out"]),
        }, stage["stage"]

    expect(page.locator("#job-rows tr")).to_have_count(len(status["jobs"]))
    for job in status["jobs"]:
        row = page.locator(f'#job-rows tr[data-job-id="{job["job_id"]}"]')
        text = row.locator(".progress-text")
        assert text.get_attribute("data-processed") == str(job["processed"])
        assert text.get_attribute("data-total") == json.dumps(job["expected_total"])
        assert row.get_attribute("data-status") == job["status"]
        shown_progress = row.locator("progress").evaluate("p => p.position")
        assert shown_progress == pytest.approx(-1 if job["progress"] is None else job["progress"])

    job = next(j for j in status["jobs"] if j["job_id"] == job_id)
    row = page.locator(f'#job-rows tr[data-job-id="{job_id}"]')
    assert row.locator('[data-field="phase"]').inner_text() == job["phase"]
    assert row.locator('[data-field="eta"]').inner_text() == "8s"
    assert row.locator(".job-name").inner_text() == "spring list (batch)"

    banner = page.locator(f'#banner li[data-job-id="{job_id}"]')
    expect(page.locator("#banner h2")).to_have_text("Data update in progress")
    assert banner.locator('[data-field="phase"]').inner_text().endswith(job["phase"])
    assert "3 / 7 (42%)" in banner.locator('[data-field="progress"]').inner_text()
    assert banner.locator('[data-field="eta"]').inner_text().endswith("ETA 8s")


def test_status_can_be_public_with_counts_only(world: World) -> None:
    job_id = _submit_job(world, 2, name="a customer's file.csv")
    public = world.settings.model_copy(update={"status_public": True})
    with Server(public) as server, httpx.Client(base_url=server.url, timeout=60) as client:
        anonymous = client.get("/v1/status")
        assert anonymous.status_code == 200, anonymous.text
        body = anonymous.json()
        assert body["anonymous"] is True
        job = next(j for j in body["jobs"] if j["job_id"] == job_id)
        assert (job["name"], job["expected_total"]) == (None, 2)
        wrong = client.get("/v1/status", headers={"Authorization": "Bearer lsk_nope"})
        assert wrong.status_code == 401
        keyed = client.get("/v1/status", headers=world.keys.auth(world.keys.ingest)).json()
        assert keyed["anonymous"] is False
        mine = next(j for j in keyed["jobs"] if j["job_id"] == job_id)
        assert mine["name"] == "a customer's file.csv"
    other = world.client.get("/v1/status", headers=world.keys.auth(world.keys.other)).json()
    assert job_id not in [j["job_id"] for j in other["jobs"]]
    admin = world.client.get("/v1/status", headers=world.keys.auth(world.keys.admin)).json()
    assert job_id in [j["job_id"] for j in admin["jobs"]]
