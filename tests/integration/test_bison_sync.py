"""bison-sync uploads on the real broker, PostgreSQL and Redis, against the fake Email Bison
on a loopback port: lead ids recorded, per-lead refusals shown and not retried, chunking,
replays, 5xx/429 handling, dry run, and the scheduled campaign sync."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from leadstream.bison import BisonClient
from leadstream.db.bison_leads import UploadStore
from leadstream.db.campaigns import CampaignStore
from leadstream.db.contact_events import SyncRunStore
from leadstream.settings import Settings
from leadstream_bison_sync.jobs import CampaignSync
from leadstream_bison_sync.scheduler import Job, RedisLock, Scheduler
from tests.support.fake_bison import Fault
from tests.support.fake_bison.harness import batch_contact, batch_ready
from tests.support.fake_bison.sync_env import SyncEnv, sync_env

pytestmark = pytest.mark.integration


@pytest.fixture
def env(settings: Settings) -> Iterator[SyncEnv]:
    with sync_env(settings) as e:
        yield e


def people(n: int, tag: str = "p", **fields: Any) -> list[dict[str, Any]]:
    run = uuid.uuid4().hex[:6]
    return [
        batch_contact(f"{tag}{i}.{run}@acme.example", custom_fields={"policy": "auto"}, **fields)
        for i in range(n)
    ]


def test_upload_records_lead_ids_and_shows_refusals_without_retrying(env: SyncEnv) -> None:
    fake, ws = env.fake, env.workspace
    other = fake.add_campaign(ws, "Already running")
    target = fake.add_campaign(ws, "Target")
    good = people(7)
    busy = people(1, "busy")
    with BisonClient(env.server.url, env.key) as client:  # a lead already in another sequence
        client.create_custom_variable("policy")
        lead = client.upsert_leads(
            [{"email": busy[0]["email"], "first_name": "B", "last_name": "Z"}]
        )
        client.attach_leads(str(other), [str(lead[0]["id"])])
    invalid = batch_contact("not-an-email")
    nameless = batch_contact(f"nameless.{uuid.uuid4().hex[:6]}@acme.example", first_name=None)
    contacts = [*good[:3], invalid, *busy, nameless, *good[3:]]
    ready = batch_ready(str(target), contacts)
    env.publish_ready(ready)
    service = env.service(env.configured(bison_upsert_chunk=4, bison_attach_chunk=3))
    env.run(service)

    [synced] = env.synced(expect=1)
    results = {r["email"]: r for r in synced.value["results"]}
    assert [r["email"] for r in synced.value["results"]] == [c["email"] for c in contacts]
    assert {results[c["email"]]["status"] for c in good} == {"attached"}
    assert results[invalid["email"]]["status"] == "failed"
    assert "valid email" in results[invalid["email"]]["error"]
    assert results[nameless["email"]]["status"] == "failed"
    assert "first_name" in results[nameless["email"]]["error"]
    assert results[busy[0]["email"]]["status"] == "skipped"
    assert "other sequences" in results[busy[0]["email"]]["error"]
    assert synced.headers["count"] == b"7"
    assert synced.headers["job_id"] == b"job-1"
    assert synced.key == ready["batch_id"]
    assert (synced.value["dry_run"], synced.value["attempt"]) == (False, 1)
    # lead ids are in PostgreSQL and are the fake's ids
    ids = dict(env.rows("SELECT email, lead_id FROM bison_leads"))
    for c in good:
        remote = fake.lead(ws, c["email"])
        assert remote is not None
        assert ids[c["email"]] == str(remote.id) == results[c["email"]]["lead_id"]
        assert fake.created_count(c["email"]) == 1
    assert sorted(fake.attach_sends(target).values()) == [1] * 7
    # refusals are recorded and shown, never retried
    shown = {f["email"]: f["error"] for f in UploadStore(env.engine).failures()}
    assert set(shown) == {invalid["email"], nameless["email"], busy[0]["email"]}
    calls = len(fake.requests())
    env.publish_ready(ready)  # the same batch again, at a new offset
    env.run(service)
    assert env.synced(expect=2, timeout=3) == [synced]
    assert len(fake.requests()) == calls


def test_5xx_and_429_are_retried_and_the_batch_completes(env: SyncEnv) -> None:
    target = env.fake.add_campaign(env.workspace, "Target")
    contacts = people(6)
    env.fake.inject(Fault(path="create-or-update", status=503, times=2))
    env.fake.inject(Fault(path="attach-leads", status=429, times=1, retry_after="1"))
    env.fake.inject(Fault(path="attach-leads", status=502, times=1, when="after"))  # applied
    env.publish_ready(batch_ready(str(target), contacts))
    env.run(env.service(env.configured(bison_attach_chunk=3)))
    [synced] = env.synced(expect=1)
    assert {r["status"] for r in synced.value["results"]} == {"attached"}
    assert sorted(env.fake.attach_sends(target).values()) == [1] * 6  # 502-after was checked
    assert all(env.fake.created_count(c["email"]) == 1 for c in contacts)
    statuses = [s.status for s in env.fake.requests("attach-leads|/api/leads")]
    assert 429 in statuses
    assert 502 in statuses


def test_5xx_that_outlasts_the_retries_dead_letters_the_batch(env: SyncEnv) -> None:
    target = env.fake.add_campaign(env.workspace, "Target")
    env.fake.inject(Fault(path="create-or-update", status=500, times=1000))
    env.publish_ready(batch_ready(str(target), people(2)))
    settings = env.configured(bison_max_attempts=2)
    service = env.service(settings)
    from leadstream.runtime import RuntimeConfig, StageRunner

    config = RuntimeConfig(
        instance_id="dl-0",
        batch_size=5,
        poll_timeout_s=0.2,
        max_retry_attempts=2,
        retry_base_s=0.1,
        retry_cap_s=0.2,
    )
    result = StageRunner(service.stage, settings, env.serde, config).run(idle_timeout_s=4)
    assert result.dead_lettered == 1
    assert result.retries == 2
    assert env.synced(expect=0, timeout=1) == []


def test_dry_run_records_what_it_would_send_and_still_emits(env: SyncEnv) -> None:
    contacts = people(3)
    ready = batch_ready("77", contacts)
    env.publish_ready(ready)
    service = env.service(env.configured(bison_dry_run=True, bison_attach_chunk=2))
    assert service.client is None
    env.run(service)
    [synced] = env.synced(expect=1)
    assert synced.value["dry_run"] is True
    assert {r["status"] for r in synced.value["results"]} == {"dry_run"}
    assert synced.headers["count"] == b"3"
    sent = UploadStore(env.engine).dry_run_requests(ready["batch_id"])
    assert [(r["method"], r["path"]) for r in sent] == [
        ("POST", "/api/custom-variables"),
        ("POST", "/api/leads/create-or-update/multiple"),
        ("POST", "/api/campaigns/77/leads/attach-leads"),
        ("POST", "/api/campaigns/77/leads/attach-leads"),
    ]
    assert [lead["email"] for lead in sent[1]["body"]["leads"]] == [c["email"] for c in contacts]
    assert sent[1]["body"]["existing_lead_behavior"] == "patch"
    assert env.fake.requests() == []


def test_campaign_sync_survives_a_5xx_page(env: SyncEnv) -> None:
    fake, ws = env.fake, env.workspace
    ids = [fake.add_campaign(ws, f"C{i}") for i in range(20)]
    draft = fake.add_campaign(ws, "Draft", status="draft")
    fake.inject(Fault(path="/api/campaigns$", query="page=2", status=503, times=2))
    service = env.service()
    assert service.scheduler is not None
    runs = {"job": "campaigns", "outcome": "ok"}
    ok_before = REGISTRY.get_sample_value("leadstream_bison_scheduler_runs_total", runs) or 0.0
    assert service.scheduler.tick() == ["campaigns"]
    assert service.scheduler.tick() == []  # not due again for 15 minutes
    assert REGISTRY.get_sample_value("leadstream_bison_scheduler_runs_total", runs) == (
        ok_before + 1
    )
    assert REGISTRY.get_sample_value("leadstream_bison_scheduler_lock_held") == 1
    stored = {c.campaign_id: c for c in CampaignStore(env.engine).campaigns()}
    assert set(stored) == {str(i) for i in [*ids, draft]}
    assert stored[str(ids[0])].stats is not None
    assert stored[str(draft)].stats is None  # drafts have no stats (400)
    [run] = SyncRunStore(env.engine).runs()
    assert (run["job"], run["last_status"], run["runs"]) == ("campaigns", "ok", 1)
    page2 = [s.status for s in fake.requests("/api/campaigns$") if "page=2" in s.query]
    assert page2 == [503, 503, 200]


def test_a_page_that_keeps_failing_is_reported_and_the_rest_is_kept(env: SyncEnv) -> None:
    fake, ws = env.fake, env.workspace
    ids = [fake.add_campaign(ws, f"C{i}") for i in range(31)]
    fake.inject(Fault(path="/api/campaigns$", query="page=2", status=500, times=1000))
    sync = CampaignSync(service_client(env), CampaignStore(env.engine))
    problem = sync(lambda: True)
    assert problem is not None
    assert "campaigns page 2" in problem
    stored = {c.campaign_id for c in CampaignStore(env.engine).campaigns()}
    assert stored == {str(i) for i in ids[:15] + ids[30:]}


def service_client(env: SyncEnv) -> BisonClient:
    service = env.service()
    assert service.client is not None
    return service.client


def test_one_scheduler_among_instances(env: SyncEnv) -> None:
    ran: list[str] = []
    lock_key = f"leadstream:test:{uuid.uuid4().hex}:lock"
    runs = SyncRunStore(env.engine)

    def job(name: str) -> Job:
        return Job(name, 0, lambda _hb: ran.append(name))  # type: ignore[func-returns-value]

    a = Scheduler(RedisLock(env.redis, lock_key, 5), runs, [job("a")])
    b = Scheduler(RedisLock(env.redis, lock_key, 5), runs, [job("b")])
    assert a.tick() == ["a"]
    assert b.tick() == []  # a holds the lock
    assert a.tick() == ["a"]
    a.lock.release()
    assert b.tick() == ["b"]
    assert ran == ["a", "a", "b"]
    assert datetime.now(UTC) >= runs.last_started()["b"]
    b.lock.release()
