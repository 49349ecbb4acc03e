"""Hostile and malformed requests on every route: each gets a 4xx in the API's error shape,
never a 5xx, and no error body carries a stack trace, SQL, a library name or an internal
address (the pattern is in ``conftest.LEAKS``)."""

# ruff: noqa: E501 (a table of requests reads best one per line)
from __future__ import annotations

from typing import Any

import pytest

from tests.abuse.conftest import assert_clean_error
from tests.integration.test_ingest_fixtures import WEBHOOK_SECRET, World

pytestmark = pytest.mark.integration

JSON = {"content-type": "application/json"}
NUL = "\u0000"
HOOK = f"/v1/webhooks/bison/{WEBHOOK_SECRET}"

# (method, path, query, headers, body, auth)
# fmt: off
CASES: list[tuple[str, str, dict[str, Any], dict[str, str], bytes | None, bool]] = [
    # Bodies that are not the JSON asked for.
    ("POST", "/v1/contacts", {}, JSON, b"", True),
    ("POST", "/v1/contacts", {}, JSON, b"null", True),
    ("POST", "/v1/contacts", {}, JSON, b"[]", True),
    ("POST", "/v1/contacts", {}, JSON, b'"a@b.c"', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"email": 1e999999}', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"email": NaN}', True),
    ("POST", "/v1/contacts", {}, JSON, b"[" * 100_000 + b"]" * 100_000, True),
    ("POST", "/v1/contacts", {}, JSON, b'{"a":' * 50_000 + b"1" + b"}" * 50_000, True),
    ("POST", "/v1/contacts", {}, JSON, b"\xff\xfe{\x00", True),
    ("POST", "/v1/contacts", {}, JSON, b'{"email": "a@b.c", "email": "d@e.f", "x": 1}', True),
    ("POST", "/v1/contacts", {}, {"content-type": "text/plain"}, b'{"email": "a@b.c"}', True),
    ("POST", "/v1/contacts", {}, {"content-type": "application/xml"}, b"<a/>", True),
    # Text the database or the Avro encoder cannot hold: NUL, lone surrogates.
    ("POST", "/v1/contacts", {}, JSON, b'{"email": "a\\u0000@b.c"}', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"email": "a@b.c", "first_name": "\\ud800"}', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"contacts": [{"email": "a@b.c"}], "name": "\\u0000"}', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"contacts": [{"email": "a@b.c"}], "name": "\\udfff"}', True),
    ("POST", "/v1/contacts", {}, JSON, b'{"email": "a@b.c", "custom_fields": {"\\u0000": "x"}}', True),
    ("POST", "/v1/contacts", {}, {**JSON, "Idempotency-Key": "k" * 256}, b'{"email": "a@b.c"}', True),
    # Uploads: broken multipart, bad options, hostile names.
    ("POST", "/v1/uploads", {}, {"content-type": "multipart/form-data; boundary=zz"}, b"--zz\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.csv\"\r\n\r\nemail\r\na@b.c", True),
    ("POST", "/v1/uploads", {}, {"content-type": "multipart/form-data"}, b"--\r\n", True),
    ("POST", "/v1/uploads", {"mapping": "{not json"}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"mapping": '{"email": "custom:$where"}'}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"delimiter": "\u0000"}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"encoding": "../../etc/passwd"}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"encoding": "rot13"}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"name": NUL}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {"file_name": NUL}, {"content-type": "text/csv"}, b"email\na@b.c\n", True),
    ("POST", "/v1/uploads", {}, {"content-type": "text/csv"}, b"email\x00\na\x00@b.c\n", True),
    ("POST", "/v1/uploads", {}, {"content-type": "text/csv; charset=x-unknown"}, b"email\na@b.c\n", True),
    # Jobs: ids and paging parameters that are not what they should be.
    ("GET", "/v1/jobs", {"limit": "-1"}, {}, None, True),
    ("GET", "/v1/jobs", {"limit": "abc"}, {}, None, True),
    ("GET", "/v1/jobs", {"before": "9999-99-99"}, {}, None, True),
    ("GET", "/v1/jobs", {"before": NUL}, {}, None, True),
    ("GET", "/v1/jobs/'; DROP TABLE jobs; --", {}, {}, None, True),
    ("GET", "/v1/jobs/%00", {}, {}, None, True),
    ("GET", "/v1/jobs/a%00b/events", {}, {}, None, True),
    ("GET", "/v1/jobs/" + "x" * 101, {}, {}, None, True),
    ("GET", "/v1/jobs/..%2F..%2Fadmin%2Fapi-keys", {}, {}, None, True),
    ("DELETE", "/v1/jobs/x", {}, {}, None, True),
    # Webhooks: bodies Email Bison would never send.
    ("POST", HOOK, {}, JSON, b"[1, 2]", False),
    ("POST", HOOK, {}, JSON, b'{"event": {"type": "\\u0000"}}', False),
    ("POST", HOOK, {}, JSON, b'{"event": {"type": "x", "workspace_id": "\\u0000"}}', False),
    ("POST", HOOK, {}, JSON, b'{"event": {"type": "x"}, "data": {"reply": {"id": "\\u0000"}}}', False),
    ("POST", HOOK, {}, JSON, b'{"event": {"type": "x"}, "data": {"lead": {"email": "\\ud800"}}}', False),
    ("POST", HOOK, {}, JSON, b'{"event": {"type": "\\ud800"}}', False),
    ("POST", HOOK, {}, JSON, b"[" * 100_000, False),
    # Registrations (public).
    ("POST", "/v1/registrations", {}, JSON, b'{"phone": "\\u0000"}', False),
    ("POST", "/v1/registrations", {}, JSON, b'{"phone": "07400 123456", "first_name": "\\ud800"}', False),
    ("GET", "/v1/registrations/%00", {}, {}, None, False),
    ("GET", "/v1/registrations/'; DROP TABLE registrations; --", {}, {}, None, False),
]
# fmt: on


@pytest.mark.parametrize(
    ("method", "path", "query", "headers", "body", "auth"),
    CASES,
    ids=[f"{c[0]} {c[1][:30]} {str(c[2])[:20]} {(c[4] or b'')[:30]!r}" for c in CASES],
)
def test_hostile_requests_get_a_clean_4xx(
    world: World,
    method: str,
    path: str,
    query: dict[str, Any],
    headers: dict[str, str],
    body: bytes | None,
    auth: bool,
) -> None:
    if auth:
        headers = {**headers, **world.keys.auth(world.keys.ingest)}
    # The registration cases share one client address: the limiter's 429 is a clean 4xx too.
    r = world.client.request(method, path, params=query, headers=headers, content=body)
    assert r.status_code < 500, (r.status_code, r.text)
    if r.status_code >= 400:
        assert_clean_error(r)


def test_every_error_of_an_unknown_route_or_method_is_clean(world: World) -> None:
    for method, path in [
        ("GET", "/v1/nothing"),
        ("PUT", "/v1/contacts"),
        ("PATCH", "/v1/jobs"),
        ("GET", "/%00"),
        ("TRACE", "/v1/contacts"),
    ]:
        r = world.client.request(method, path)
        assert r.status_code in (404, 405), (method, path, r.status_code)
        assert_clean_error(r)


def test_a_non_ascii_request_id_is_replaced_not_echoed(world: World) -> None:
    r = world.client.get(
        "/v1/jobs/x",
        headers=[
            (b"X-Request-ID", b"\xff<script>"),
            (b"Authorization", f"Bearer {world.keys.ingest}".encode()),
        ],
    )
    body = assert_clean_error(r, 404)
    assert "<script>" not in r.text
    assert len(body["request_id"]) == 32


def test_transport_errors_do_not_leak(world: World) -> None:
    """A request line or header uvicorn refuses: its plain answer names nothing internal."""
    import socket

    for raw in (
        b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        b"GET /v1/jobs HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n",
        b"POST /v1/contacts HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
    ):
        with socket.create_connection(("127.0.0.1", world.server.port), timeout=10) as sock:
            sock.sendall(raw)
            data = b""
            try:
                while chunk := sock.recv(65536):
                    data += chunk
            except (ConnectionResetError, TimeoutError):
                pass
        text = data.decode("latin-1")
        assert text.startswith("HTTP/1.1 4"), text[:200]
        assert "Traceback" not in text
        assert "site-packages" not in text
