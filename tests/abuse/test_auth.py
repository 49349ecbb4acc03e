"""Broken authentication and object-level authorization: every authenticated route refuses
missing, malformed, unknown, revoked and wrong-scope keys the same way; a job is visible to
the key that created it and to admin keys only, and another key's job answers exactly as a
job that does not exist; idempotency keys are per API key."""

from __future__ import annotations

import time
import uuid

import pytest

from tests.abuse.conftest import assert_clean_error
from tests.integration.test_ingest_fixtures import World

pytestmark = pytest.mark.integration

CSV = b"email\nperson@example.com\n"


def routes(job_id: str) -> list[tuple[str, str, dict[str, str], bytes | None]]:
    """(method, path, headers, body) of every route that needs an API key."""
    return [
        ("POST", "/v1/contacts", {"content-type": "application/json"}, b'{"email": "a@b.c"}'),
        ("POST", "/v1/uploads", {"content-type": "text/csv"}, CSV),
        ("GET", "/v1/jobs", {}, None),
        ("GET", f"/v1/jobs/{job_id}", {}, None),
        ("GET", f"/v1/jobs/{job_id}/events", {}, None),
        ("GET", "/v1/admin/api-keys", {}, None),
    ]


@pytest.fixture(scope="module")
def job_of_ingest_key(world: World) -> str:
    r = world.client.post(
        "/v1/contacts",
        json={"contacts": [{"email": f"owner.{uuid.uuid4().hex[:6]}@example.com"}], "name": "A"},
        headers=world.keys.auth(world.keys.ingest),
    )
    assert r.status_code == 202, r.text
    return str(r.json()["job_id"])


def bad_credentials(world: World) -> list[tuple[list[tuple[bytes, bytes]], str]]:
    token = world.keys.ingest
    return [
        ([], "missing_api_key"),
        ([(b"authorization", b"")], "missing_api_key"),
        ([(b"authorization", b"Bearer")], "missing_api_key"),
        ([(b"authorization", b"Basic " + token.encode())], "missing_api_key"),
        ([(b"authorization", token.encode())], "missing_api_key"),  # no scheme
        ([(b"authorization", b"Bearer " + token[:-1].encode())], "invalid_api_key"),
        ([(b"authorization", b"Bearer " + token.encode() + b"x")], "invalid_api_key"),
        ([(b"authorization", b"Bearer " + token.upper().encode())], "invalid_api_key"),
        ([(b"authorization", b"Bearer lsk_' OR '1'='1")], "invalid_api_key"),
        ([(b"authorization", b"Bearer lsk_" + b"A" * 8000)], "invalid_api_key"),
        ([(b"authorization", b"Bearer lsk_\xff\xfe\xe9")], "invalid_api_key"),
        ([(b"authorization", b"Bearer " + world.keys.revoked.encode())], "revoked_api_key"),
        # The key id is not a credential.
        ([(b"authorization", b"Bearer " + world.keys.ingest_id.encode())], "invalid_api_key"),
    ]


def test_every_authenticated_route_refuses_bad_credentials(
    world: World, job_of_ingest_key: str
) -> None:
    for method, path, headers, body in routes(job_of_ingest_key):
        for credentials, code in bad_credentials(world):
            r = world.client.request(
                method,
                path,
                headers=[*((k.encode(), v.encode()) for k, v in headers.items()), *credentials],
                content=body,
            )
            error = assert_clean_error(r, 401)
            assert error["error"] == code, (method, path, credentials, r.text)
            assert r.headers["www-authenticate"] == "Bearer"
            assert world.keys.ingest not in r.text


def test_an_ingest_key_is_403_on_admin_routes_only(world: World) -> None:
    r = world.client.get("/v1/admin/api-keys", headers=world.keys.auth(world.keys.ingest))
    assert assert_clean_error(r, 403)["error"] == "missing_scope"
    admin = world.client.get("/v1/admin/api-keys", headers=world.keys.auth(world.keys.admin))
    assert admin.status_code == 200
    # Tokens are never listed, and neither are their hashes.
    assert world.keys.ingest not in admin.text
    assert "token" not in admin.text.lower()


def test_another_keys_job_is_indistinguishable_from_no_job(
    world: World, job_of_ingest_key: str
) -> None:
    job_id = job_of_ingest_key
    other = world.keys.auth(world.keys.other)
    missing_id = str(uuid.uuid4())
    for suffix in ("", "/events"):
        theirs = world.client.get(f"/v1/jobs/{job_id}{suffix}", headers=other)
        absent = world.client.get(f"/v1/jobs/{missing_id}{suffix}", headers=other)
        a, b = assert_clean_error(theirs, 404), assert_clean_error(absent, 404)
        assert a["error"] == b["error"] == "job_not_found"
        assert a["reason"] == b["reason"]
        assert job_id not in theirs.text
    listed = world.client.get("/v1/jobs", params={"limit": 200}, headers=other).json()
    assert job_id not in {j["job_id"] for j in listed["jobs"]}
    # The owner and admins see it.
    for token in (world.keys.ingest, world.keys.admin):
        r = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(token))
        assert r.status_code == 200, r.text
        assert r.json()["name"] == "A"
    admin_list = world.client.get(
        "/v1/jobs", params={"limit": 200}, headers=world.keys.auth(world.keys.admin)
    ).json()
    assert job_id in {j["job_id"] for j in admin_list["jobs"]}


def test_a_revoked_key_loses_its_jobs_at_once(world: World) -> None:
    doomed = world.keys.store.create("doomed", ["ingest"])
    auth = world.keys.auth(doomed.token)
    r = world.client.post("/v1/contacts", json={"contacts": [{"email": "d@e.fg"}]}, headers=auth)
    job_id = r.json()["job_id"]
    assert world.client.get(f"/v1/jobs/{job_id}", headers=auth).status_code == 200
    world.keys.store.revoke(doomed.key.key_id)
    # The server caches looked-up keys for api_key_cache_s (5 s) but drops a key when
    # PostgreSQL notifies its revocation: well within that, not after it.
    assert world.settings.api_key_cache_s >= 5
    deadline = time.monotonic() + 2
    while True:
        r = world.client.get(f"/v1/jobs/{job_id}", headers=auth)
        if r.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert assert_clean_error(r, 401)["error"] == "revoked_api_key"


def test_idempotency_keys_are_per_api_key(world: World) -> None:
    """Key B reusing key A's Idempotency-Key (and body) gets its own job, never A's answer."""
    idem = f"shared-{uuid.uuid4().hex}"
    body = {"contacts": [{"email": f"i.{uuid.uuid4().hex[:6]}@example.com"}]}
    a = world.client.post(
        "/v1/contacts",
        json=body,
        headers={**world.keys.auth(world.keys.ingest), "Idempotency-Key": idem},
    )
    b = world.client.post(
        "/v1/contacts",
        json=body,
        headers={**world.keys.auth(world.keys.other), "Idempotency-Key": idem},
    )
    assert a.status_code == b.status_code == 202
    assert "idempotent-replayed" not in b.headers
    assert a.json()["job_id"] != b.json()["job_id"]
    assert set(a.json()["event_ids"]).isdisjoint(b.json()["event_ids"])
    job_a = a.json()["job_id"]
    r = world.client.get(f"/v1/jobs/{job_a}", headers=world.keys.auth(world.keys.other))
    assert r.status_code == 404
