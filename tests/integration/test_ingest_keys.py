"""``leadstream keys create|list|revoke`` against a real database, and the API honouring it."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner, Result

from leadstream.cli.main import app
from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import World, running_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack) as w:
        yield w


def cli(w: World, *args: str) -> Result:
    """The ``leadstream`` command, in process (the same typer app the console script runs)."""
    env = {
        "LEADSTREAM_KAFKA_BOOTSTRAP": w.settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": w.settings.schema_registry_url,
        "LEADSTREAM_TOPIC_PREFIX": w.settings.topic_prefix,
        "LEADSTREAM_DATABASE_URL": w.settings.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": w.settings.database_password.get_secret_value(),
        "COLUMNS": "200",
    }
    return CliRunner().invoke(app, ["keys", *args], env=env)


def test_create_use_list_and_revoke_a_key(world: World) -> None:
    made = cli(world, "create", "--name", "crm sync", "--scope", "ingest", "--json")
    assert made.exit_code == 0, made.output
    key = json.loads(made.stdout)
    token, key_id = key["token"], key["key_id"]
    assert token.startswith("lsk_")
    assert len(token) > 40
    auth = {"Authorization": f"Bearer {token}"}
    accepted = world.client.post("/v1/contacts", json={"email": "a@b.c"}, headers=auth)
    assert accepted.status_code == 202

    listed = cli(world, "list", "--json")
    assert listed.exit_code == 0
    rows = {k["key_id"]: k for k in json.loads(listed.stdout)}
    assert rows[key_id]["name"] == "crm sync"
    assert rows[key_id]["revoked_at"] is None
    assert token not in listed.stdout  # tokens are never shown again
    human = cli(world, "list")
    assert key_id in human.stdout

    revoked = cli(world, "revoke", key_id)
    assert revoked.exit_code == 0, revoked.output
    # The server keeps a looked-up key for api_key_cache_s (5 s), but drops it as soon as
    # PostgreSQL notifies the revocation: well within the cache's time.
    assert world.settings.api_key_cache_s >= 5
    deadline = time.monotonic() + 2
    while True:
        r = world.client.post("/v1/contacts", json={"email": "a@b.c"}, headers=auth)
        if r.status_code != 202 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert (r.status_code, r.json()["error"]) == (401, "revoked_api_key")
    assert json.loads(cli(world, "list", "--json").stdout)[-1]["revoked_at"] is not None
    audit = [world.serde.deserialize(m.value(), m.topic()) for m in world.read("audit.events")]
    # audit.events is keyed by event id: the two events may sit on different partitions.
    mine = sorted((a["action"], a["target_type"]) for a in audit if a["target_id"] == key_id)
    assert mine == [("apikey.created", "api_key"), ("apikey.revoked", "api_key")]
    assert all(a["actor"].startswith("operator:") for a in audit)


def test_cli_refuses_unknown_scopes_and_keys(world: World) -> None:
    bad = cli(world, "create", "--name", "x", "--scope", "root")
    assert bad.exit_code == 2
    assert "scopes must be among" in bad.output
    missing = cli(world, "revoke", "key_doesnotexist")
    assert missing.exit_code == 1
    assert "no key" in missing.output


def test_admin_scope_key_from_cli_sees_admin_routes(world: World) -> None:
    made = json.loads(cli(world, "create", "--name", "ops", "--scope", "admin", "--json").stdout)
    r = world.client.get("/v1/admin/api-keys", headers={"Authorization": f"Bearer {made['token']}"})
    assert r.status_code == 200
    assert made["key_id"] in {k["key_id"] for k in r.json()["keys"]}
