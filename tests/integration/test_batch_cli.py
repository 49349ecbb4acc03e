"""``leadstream campaigns`` on a real PostgreSQL database (no broker needed): rules, caps,
held contacts and re-routes, flushes, batches, and the leads Email Bison refused."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from leadstream.cli.main import app
from leadstream.db import make_engine
from leadstream.db.batches import BatchStore, Hold, Member
from leadstream.db.bison_leads import UploadStore
from leadstream.db.campaigns import CampaignStore
from leadstream.infra import InfraSettings
from leadstream.settings import Settings
from tests.support.databases import scratch_database
from tests.support.fake_bison.harness import batch_contact

pytestmark = pytest.mark.integration


@pytest.fixture
def db() -> Iterator[tuple[dict[str, str], sa.Engine]]:
    cfg = InfraSettings()
    base = Settings(
        database_url=f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:{cfg.postgres_port}/"
        f"{cfg.postgres_database}",
        database_password=cfg.postgres_password,
    )
    with scratch_database(base) as fresh:
        env = {
            "LEADSTREAM_DATABASE_URL": fresh.database_url,
            "LEADSTREAM_DATABASE_PASSWORD": fresh.database_password.get_secret_value(),
        }
        engine = make_engine(fresh, pool_size=2)
        try:
            yield env, engine
        finally:
            engine.dispose()


def cli(env: dict[str, str], *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(app, ["campaigns", *args], env={**env, "COLUMNS": "300"})
    assert result.exit_code == code, result.output
    return result.output


def test_rules_add_list_remove(db: tuple[dict[str, str], sa.Engine]) -> None:
    env, engine = db
    out = cli(
        env,
        "rules",
        "add",
        "42",
        "--tag",
        "Auto",
        "--country",
        "us",
        "--field",
        "policy=life",
        "--priority",
        "10",
        "--name",
        "auto US",
    )
    assert "tags_any=auto countries=us fields=" in out
    cli(env, "rules", "add", "77", "--default")
    assert "a default rule already exists" in cli(env, "rules", "add", "78", "--default", code=2)
    assert "at least one condition" in cli(env, "rules", "add", "79", code=2)
    assert "name=value" in cli(env, "rules", "add", "79", "--field", "oops", code=2)
    rules = CampaignStore(engine).rules()
    assert [(r.campaign_id, r.is_default, r.priority) for r in rules] == [
        ("42", False, 10),
        ("77", True, 100),
    ]
    listed = cli(env, "rules", "list")
    assert rules[0].rule_id in listed
    assert "default" in listed
    assert "2 rules" in listed
    cli(env, "rules", "remove", rules[0].rule_id)
    assert "no rule" in cli(env, "rules", "remove", rules[0].rule_id, code=1)
    assert [r.campaign_id for r in CampaignStore(engine).rules()] == ["77"]


def test_caps_and_campaigns(db: tuple[dict[str, str], sa.Engine]) -> None:
    env, engine = db
    CampaignStore(engine).upsert_remote([{"id": 42, "name": "Q4 auto", "status": "active"}])
    cli(env, "cap", "42", "200")
    cli(env, "cap", "43", "5")
    assert CampaignStore(engine).daily_caps() == {"42": 200, "43": 5}
    listed = cli(env, "list")
    assert "Q4 auto" in listed
    assert "200" in listed
    cli(env, "cap", "43")
    assert CampaignStore(engine).daily_caps() == {"42": 200}


def test_held_reroute_flush_batches_failures(db: tuple[dict[str, str], sa.Engine]) -> None:
    env, engine = db
    store = BatchStore(engine)
    contact = batch_contact(f"held.{uuid.uuid4().hex[:6]}@example.com")
    now = datetime.now(UTC)
    with store.unit() as unit:
        unit.hold(
            [
                Hold(
                    contact["contact_id"],
                    "no_route",
                    contact["verified_event_id"],
                    None,
                    {"batch_contact": contact, "source": "api"},
                    detail="no rule matched",
                )
            ]
        )
        batch = unit.create_batch("b-1", "e-1", "42", None, now)
        unit.add_members(batch, [Member("c-1", "v-1", None, batch_contact("x@example.com"))])
    held = cli(env, "held")
    assert contact["email"] in held
    assert "no_route" in held
    assert "1 held" in held
    assert "1 held contacts will be placed again" in cli(env, "reroute", "--campaign", "42")
    [h] = store.holds()
    assert (h.reroute_campaign_id, h.reroute_requested_at is not None) == ("42", True)
    assert "closed 1 open batches" in cli(env, "flush")
    assert "flush" in cli(env, "batches")
    with store.unit() as unit:
        [closed] = unit.outbox()
    assert (closed.batch_id, closed.closed_reason) == ("b-1", "flush")
    uploads = UploadStore(engine)
    up = uploads.begin(
        batch_id="b-1", campaign_id="42", dry_run=False, source=("t", 0, 1), contacts=[contact]
    )
    uploads.mark_each(
        "b-1",
        {up.items[0].contact_id: "leads.0.email: invalid"},
        column="upsert_status",
        status="failed",
    )
    lines = cli(env, "failures", "--json").strip().splitlines()
    assert [json.loads(line)["error"] for line in lines] == ["leads.0.email: invalid"]
    assert "1 refused leads" in cli(env, "failures")
