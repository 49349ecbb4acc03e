"""Mass assignment and injection: server-owned fields in a contact are refused; SQL-looking
and exotic Unicode text travels verbatim through ingest, the filter stage and PostgreSQL
(bound parameters everywhere: the tables are still there); ``$``-keys and dotted names in
request-log fields reach MongoDB through the audit stage as plain values."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from pymongo import MongoClient

from leadstream.db import make_engine
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream_audit.documents import REQUEST_LOGS
from leadstream_audit.handler import audit_stage
from leadstream_audit.store import MongoAuditStore, mongo_client
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_filter.fields import clean_name, clean_text
from tests.abuse.conftest import assert_clean_error
from tests.integration.test_ingest_fixtures import World

pytestmark = pytest.mark.integration

SQL = "Robert'); DROP TABLE contacts; --"
UNICODE = "Zoë 😀 中文 \u202eevil\u202c ﷽ e\u0301"


def email() -> str:
    return f"inj.{uuid.uuid4().hex[:8]}@example.com"


@pytest.mark.parametrize(
    "field",
    ["job_id", "status", "verdict", "source", "id", "event_id", "request_id", "api_key_id"],
)
def test_server_owned_fields_in_a_contact_are_refused(world: World, field: str) -> None:
    address = email()
    r = world.client.post(
        "/v1/contacts",
        json={"email": address, field: "forged"},
        headers=world.keys.auth(world.keys.ingest),
    )
    body = assert_clean_error(r, 422)
    assert body["error"] == "invalid_request"
    assert any(e["loc"].endswith(field) and e["type"] == "extra_forbidden" for e in body["errors"])
    assert "forged" not in r.text  # the input is never echoed


@pytest.mark.parametrize(
    "body",
    [
        {"contacts": [{"email": "a@b.cd"}], "job_id": "forged"},
        {"contacts": [{"email": "a@b.cd"}], "api_key_id": "forged"},
        {"contacts": [{"email": "a@b.cd", "source": "forged"}]},
        {"email": "a@b.cd", "source_details": {"api_key_id": "forged"}},
        {"email": "a@b.cd", "source_details": {"ip_address": "forged"}},
        {"email": "a@b.cd", "consent": {"granted": True, "verdict": "forged"}},
    ],
)
def test_nested_and_batch_mass_assignment_is_refused(world: World, body: dict[str, Any]) -> None:
    r = world.client.post("/v1/contacts", json=body, headers=world.keys.auth(world.keys.ingest))
    assert assert_clean_error(r, 422)["error"] == "invalid_request"


def test_registrations_refuse_server_owned_fields(world: World) -> None:
    for field in ("request_id", "status", "phone_e164", "event_id"):
        r = world.client.post("/v1/registrations", json={"phone": "07400 123456", field: "forged"})
        assert r.status_code in (422, 429), r.text  # the shared limiter may answer first
        assert_clean_error(r)


def test_nul_characters_are_refused_at_the_edge(world: World) -> None:
    auth = world.keys.auth(world.keys.ingest)
    for body in (
        {"email": "a\u0000@b.cd"},
        {"email": "a@b.cd", "first_name": "A\u0000"},
        {"email": "a@b.cd", "custom_fields": {"k\u0000": "v"}},
        {"email": "a@b.cd", "tags": ["t\u0000"]},
        {"contacts": [{"email": "a@b.cd"}], "name": "\u0000"},
    ):
        r = world.client.post("/v1/contacts", json=body, headers=auth)
        assert assert_clean_error(r, 422)["error"] == "invalid_request", body
    r = world.client.post(
        "/v1/uploads",
        params={"name": "job\u0000"},
        content=b"email\na@b.cd\n",
        headers={**auth, "content-type": "text/csv"},
    )
    assert assert_clean_error(r, 422)["error"] == "bad_text"
    r = world.client.post(
        "/v1/uploads",
        content=b"email,first_name\na@b.cd,A\x00B\nc@d.ef,C\n",
        headers={**auth, "content-type": "text/csv"},
    )
    assert r.status_code == 202, r.text
    assert (r.json()["rows_accepted"], r.json()["rows_rejected"]) == (1, 1)
    assert r.json()["errors"][0]["column"] == "first_name"
    r = world.client.post(
        "/v1/uploads",
        content=b"email,note\x00s\na@b.cd,x\n",
        headers={**auth, "content-type": "text/csv"},
    )
    assert assert_clean_error(r, 422)["error"] == "bad_encoding"


def test_sql_and_unicode_text_is_stored_verbatim(world: World) -> None:
    """Through ingest (the jobs table), the filter stage (the contacts table) and back."""
    auth = world.keys.auth(world.keys.ingest)
    contacts = [
        {
            "email": email(),
            "first_name": SQL,
            "last_name": UNICODE,
            "company": "'; SELECT pg_sleep(10); --",
            "custom_fields": {"'; DROP TABLE jobs; --": "1 OR 1=1", "$where": "x", "a.b": "y"},
            "tags": ["' OR ''='"],
        }
        for _ in range(3)
    ]
    job_name = "'; DROP TABLE jobs; -- " + UNICODE
    r = world.client.post(
        "/v1/contacts", json={"contacts": contacts, "name": job_name}, headers=auth
    )
    assert r.status_code == 202, r.text
    job_id = r.json()["job_id"]
    job = world.client.get(f"/v1/jobs/{job_id}", headers=auth).json()
    assert job["name"] == job_name
    raw = [e for e in world.decoded("contacts.raw") if e.value["job_id"] == job_id]
    assert sorted(e.value["first_name"] for e in raw) == [SQL] * 3
    assert {e.value["last_name"] for e in raw} == {UNICODE}
    assert raw[0].value["custom_fields"]["'; DROP TABLE jobs; --"] == "1 OR 1=1"
    assert raw[0].value["custom_fields"]["$where"] == "x"

    # The real filter stage writes them to PostgreSQL.
    fs = FilterSettings.model_validate(
        {k: v for k, v in dict(world.settings).items() if k in FilterSettings.model_fields}
    )
    engine = make_engine(fs, pool_size=2)
    try:
        runner = StageRunner(
            build_stage(fs, engine),
            fs,
            world.serde,
            RuntimeConfig(instance_id="abuse-filter", batch_size=500, poll_timeout_s=0.2),
        )
        result = runner.run(idle_timeout_s=3)
        assert result.dead_lettered == 0
        with engine.connect() as conn:
            rows = conn.execute(
                sa.text(
                    "SELECT email, first_name, last_name, company FROM contacts WHERE job_id = :job"
                ),
                {"job": job_id},
            ).all()
            tables = set(
                conn.execute(
                    sa.text("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                ).scalars()
            )
    finally:
        engine.dispose()
    assert sorted(r.email for r in rows) == sorted(c["email"] for c in contacts)
    # As the filter cleans names (edge punctuation, NFC), nothing else: no SQL ran.
    assert {(r.first_name, r.last_name, r.company) for r in rows} == {
        (clean_name(SQL), clean_name(UNICODE), clean_text("'; SELECT pg_sleep(10); --"))
    }
    assert clean_name(SQL) == "Robert'); DROP TABLE contacts"
    assert {"contacts", "jobs", "api_keys"} <= tables
    # API key names too.
    key = world.keys.store.create("'; DROP TABLE api_keys; --", ["ingest"])
    names = {k.key_id: k.name for k in world.keys.store.list()}
    assert names[key.key.key_id] == "'; DROP TABLE api_keys; --"


def test_dollar_and_dotted_names_reach_mongodb_as_plain_values(world: World) -> None:
    request_id = f"mongo-{uuid.uuid4().hex[:8]}"
    r = world.client.get(
        "/v1/jobs",
        params={"$where": "sleep(1000)", "a.b": "1", "$gt": "", "limit": "5"},
        headers={
            **world.keys.auth(world.keys.ingest),
            "X-Request-ID": request_id,
            "User-Agent": '{"$where": "this.a == 1", "a.b": {"$ne": null}}',
            "Referer": "https://x.example/?$regex=.*&a.b=1",
        },
    )
    assert r.status_code == 200, r.text
    settings = world.settings
    store = MongoAuditStore(mongo_client(settings.mongo_url, 5000), settings.mongo_database)
    try:
        runner = StageRunner(
            audit_stage(store, settings),
            settings,
            world.serde,
            RuntimeConfig(instance_id="abuse-audit", batch_size=500, poll_timeout_s=0.2),
        )
        result = runner.run(idle_timeout_s=3)
        assert result.dead_lettered == 0
    finally:
        store.close()
    with MongoClient(settings.mongo_url, tz_aware=True) as client:
        coll = client[settings.mongo_database][REQUEST_LOGS]
        docs = list(coll.find({"request_id": request_id}))
        total = coll.count_documents({})
    assert len(docs) == 1
    doc = docs[0]
    assert doc["user_agent"] == '{"$where": "this.a == 1", "a.b": {"$ne": null}}'
    assert doc["referrer"] == "https://x.example/?$regex=.*&a.b=1"
    assert isinstance(doc["query"], str)
    assert "%24where=sleep%281000%29" in doc["query"]
    assert "a.b=1" in doc["query"]
    # Every field name is the schema's own, none from the request.
    assert not [k for k in doc if k.startswith("$") or "." in k]
    assert total >= 1
