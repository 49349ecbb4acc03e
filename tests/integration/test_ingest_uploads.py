"""CSV uploads through the real server: streamed, rows on the topic with the job header, the
job created and sealed, every refusal with its status and reason, limits (413) with the job
marked failed, generated CSVs round-tripping, and flat memory on a large file."""

from __future__ import annotations

import csv
import io
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import World, running_world

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack, max_upload_rows=400_000, upload_errors_reported=3) as w:
        yield w


@pytest.fixture(scope="module")
def small(stack: Stack) -> Iterator[World]:
    """A server with tiny upload limits."""
    with running_world(stack, max_upload_bytes=64 * 1024, max_upload_rows=100) as w:
        yield w


def upload(
    w: World,
    data: bytes | Iterator[bytes],
    *,
    content_type: str = "text/csv",
    params: dict[str, Any] | None = None,
) -> httpx.Response:
    return w.client.post(
        "/v1/uploads",
        content=data,
        params=params or {},
        headers={**w.keys.auth(w.keys.ingest), "content-type": content_type},
    )


def job_events(w: World, job_id: str) -> list[tuple[str, int | None, dict[str, str]]]:
    return [
        (e.value["event_type"], e.value["expected_total"], e.value["details"])
        for e in w.decoded("jobs.events")
        if e.key == job_id.encode()
    ]


def rows_of(w: World, job_id: str) -> list[dict[str, Any]]:
    out = []
    for e in w.decoded("contacts.raw"):
        if e.headers.get("job_id") == job_id.encode():
            assert e.value["job_id"] == job_id
            assert e.key == e.value["email"].lower().encode()
            out.append(e.value)
    return sorted(out, key=lambda v: v["source_details"]["row_number"])


def assert_error(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    body = r.json()
    assert body["error"] == code, body
    assert body["reason"]
    return body


# ------------------------------------------------------------------ accepted uploads


def test_cp1252_semicolon_file_with_aliases_and_row_errors(world: World) -> None:
    text = (
        "E-mail;First Name;company_name;Zip\r\n"
        "jos\u00e9@example.com;Jos\u00e9;Caf\u00e9 Ltd;75001\r\n"
        ";Nobody;X;1\r\n"
        '"ann@example.com";"Ann";"Line1\r\nLine2";2\r\n'
        "not-an-email;Y;;\r\n"
        "bob@example.com;Bob;;3\r\n"
        "bad1;;;\r\nbad2;;;\r\n"
    )
    r = upload(world, text.encode("cp1252"), params={"file_name": "leads.csv", "tags": ["q4"]})
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["encoding"], body["delimiter"]) == ("cp1252", ";")
    assert body["columns"] == {
        "E-mail": "email",
        "First Name": "first_name",
        "company_name": "company",
        "Zip": "postal_code",
    }
    assert (body["rows_total"], body["rows_accepted"], body["rows_rejected"]) == (7, 3, 4)
    assert [(e["line"], e["row"], e["column"]) for e in body["errors"]] == [
        (3, 2, "email"),
        (6, 4, "email"),
        (8, 6, "email"),
    ]
    assert body["errors_truncated"] is True
    rows = rows_of(world, body["job_id"])
    assert [(v["email"], v["first_name"], v["company"]) for v in rows] == [
        ("jos\u00e9@example.com", "Jos\u00e9", "Caf\u00e9 Ltd"),
        ("ann@example.com", "Ann", "Line1\r\nLine2"),
        ("bob@example.com", "Bob", None),
    ]
    assert [v["source_details"]["row_number"] for v in rows] == [1, 3, 5]
    assert all(v["tags"] == ["q4"] and v["source"] == "csv" for v in rows)
    assert rows[0]["source_details"]["file_name"] == "leads.csv"
    assert rows[0]["request_id"] == body["request_id"]
    events = job_events(world, body["job_id"])
    assert [(t, n) for t, n, _ in events] == [("created", None), ("sealed", 3)]
    assert events[1][2]["rows_rejected"] == "4"
    job = world.client.get(f"/v1/jobs/{body['job_id']}", headers=world.keys.auth(world.keys.ingest))
    assert job.json()["expected_total"] == 3
    assert job.json()["kind"] == "csv"
    assert job.json()["name"] == "leads.csv"


def test_multipart_upload_with_bom_tabs_and_explicit_mapping(world: World) -> None:
    csv_bytes = "\ufeffContact\tOrg\tIgnore me\nzoe@example.com\tAcme\tx\n".encode()
    r = world.client.post(
        "/v1/uploads",
        files={"file": ("list.tsv", csv_bytes, "text/tab-separated-values")},
        data={"comment": "ignored form field"},
        params={"mapping": '{"Contact": "email", "Org": "company", "Ignore me": null}'},
        headers=world.keys.auth(world.keys.ingest),
    )
    assert r.status_code == 202, r.text
    body = r.json()
    assert (body["encoding"], body["delimiter"], body["rows_accepted"]) == ("utf-8-sig", "\t", 1)
    rows = rows_of(world, body["job_id"])
    assert (rows[0]["email"], rows[0]["company"], rows[0]["custom_fields"]) == (
        "zoe@example.com",
        "Acme",
        {},
    )
    assert rows[0]["source_details"]["file_name"] == "list.tsv"


# ------------------------------------------------------------------ refused uploads


@pytest.mark.parametrize(
    ("data", "params", "status", "code"),
    [
        (b"name,phone\nx,1\n", {}, 422, "no_email_column"),
        (b"", {}, 422, "empty_upload"),
        (b"email\n", {}, 422, "no_rows"),
        (b"email\nbad\nworse\n", {}, 422, "no_valid_rows"),
        (b"email\na@b.c\n", {"encoding": "ebcdic"}, 422, "bad_encoding"),
        (b"email\na@b.c\n", {"delimiter": "x"}, 422, "bad_delimiter"),
        (b"email\na@b.c\n", {"mapping": "{oops"}, 422, "bad_mapping"),
        (b"Email,E-mail\na@b.c,d@e.f\n", {}, 422, "ambiguous_columns"),
        (b"email\n\xff\xfe\x00", {"encoding": "utf-16"}, 422, "bad_encoding"),
    ],
)
def test_unusable_uploads_are_refused_with_a_reason(
    world: World, data: bytes, params: dict[str, str], status: int, code: str
) -> None:
    assert_error(upload(world, data, params=params), status, code)


def test_a_refused_header_creates_no_job_but_refused_rows_fail_the_job(world: World) -> None:
    before = world.client.get("/v1/jobs", headers=world.keys.auth(world.keys.ingest)).json()
    assert_error(upload(world, b"name\nx\n"), 422, "no_email_column")
    after = world.client.get("/v1/jobs", headers=world.keys.auth(world.keys.ingest)).json()
    assert len(after["jobs"]) == len(before["jobs"])
    body = assert_error(upload(world, b"email\nbad\n"), 422, "no_valid_rows")
    job_id = body["details"]["job_id"]
    assert body["details"]["errors"][0]["reason"] == "not an email address"
    assert [t for t, _, _ in job_events(world, job_id)] == ["created", "failed"]
    job = world.client.get(f"/v1/jobs/{job_id}", headers=world.keys.auth(world.keys.ingest))
    assert job.json()["status"] == "failed"


def test_other_content_types_are_415(world: World) -> None:
    r = upload(world, b'{"email": "a@b.c"}', content_type="application/json")
    assert_error(r, 415, "unsupported_media_type")


def test_upload_over_the_byte_limit_is_413_before_reading(small: World) -> None:
    r = upload(small, b"email\n" + b"a@example.com\n" * 10_000)  # Content-Length is known
    body = assert_error(r, 413, "body_too_large")
    assert str(64 * 1024) in body["reason"]


def test_streamed_upload_over_the_byte_limit_is_413_and_fails_the_job(small: World) -> None:
    def chunks() -> Iterator[bytes]:
        yield b"email,note\na@example.com,first\n"
        time.sleep(0.5)  # the header arrives (and the job is created) before the rest
        for i in range(90):  # 90 rows of ~920 bytes: over 64 KiB before 100 rows
            yield f"p{i}@example.com,{'x' * 900}\n".encode()

    r = upload(small, chunks())  # chunked: no Content-Length
    assert_error(r, 413, "body_too_large")
    jobs = small.client.get("/v1/jobs", headers=small.keys.auth(small.keys.ingest)).json()
    failed = [j for j in jobs["jobs"] if j["status"] == "failed"]
    assert failed, jobs
    assert [t for t, _, _ in job_events(small, failed[0]["job_id"])] == ["created", "failed"]


def test_a_client_that_goes_away_mid_upload_fails_the_job(world: World) -> None:
    rows = b"".join(f"gone{i}@example.com\n".encode() for i in range(2000))
    with socket.create_connection(("127.0.0.1", world.server.port), timeout=5) as sock:
        sock.sendall(
            b"POST /v1/uploads?name=vanishing HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\n"
            + f"Authorization: Bearer {world.keys.ingest}\r\n".encode()
            + f"Content-Length: {len(rows) * 10}\r\n\r\n".encode()
            + b"email\n"
            + rows
        )
        time.sleep(1.0)  # the header is parsed and the job created; then the client vanishes
    deadline = time.monotonic() + 15
    while True:
        jobs = world.client.get("/v1/jobs", headers=world.keys.auth(world.keys.ingest)).json()
        gone = [j for j in jobs["jobs"] if j["name"] == "vanishing"]
        if (gone and gone[0]["status"] == "failed") or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert gone, jobs
    assert gone[0]["status"] == "failed"
    assert [t for t, _, _ in job_events(world, gone[0]["job_id"])] == ["created", "failed"]


def test_too_many_rows_is_413_and_fails_the_job(small: World) -> None:
    r = upload(small, b"email\n" + b"a@example.com\n" * 101)
    body = assert_error(r, 413, "too_many_rows")
    assert "100" in body["reason"]


# ------------------------------------------------------------------ generated CSVs

_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\r"),
    max_size=20,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(
    rows=st.lists(st.tuples(_TEXT, _TEXT), min_size=1, max_size=20),
    delimiter=st.sampled_from([",", ";", "\t"]),
    encoding=st.sampled_from(["utf-8", "utf-8-sig", "utf-16"]),
    quoting=st.sampled_from([csv.QUOTE_MINIMAL, csv.QUOTE_ALL]),
)
def test_generated_csvs_round_trip_through_the_server(
    world: World,
    rows: list[tuple[str, str]],
    delimiter: str,
    encoding: str,
    quoting: int,
) -> None:
    out = io.StringIO()
    writer = csv.writer(out, delimiter=delimiter, quoting=quoting, lineterminator="\r\n")
    writer.writerow(["Email Address", "First Name", "Notes"])
    emails = [f"u{uuid.uuid4().hex[:10]}@example.com" for _ in rows]
    for address, (name, note) in zip(emails, rows, strict=True):
        writer.writerow([address, name, note])
    r = upload(world, out.getvalue().encode(encoding))
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["rows_accepted"] == len(rows)
    got = rows_of(world, body["job_id"])
    assert [(v["email"], v["first_name"], v["custom_fields"].get("Notes")) for v in got] == [
        (address, name.strip() or None, note.strip() or None)
        for address, (name, note) in zip(emails, rows, strict=True)
    ]


# ------------------------------------------------------------------ streaming


def _rss_bytes() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS")


def test_large_upload_streams_with_flat_memory(world: World) -> None:
    """300k rows (~37 MB) from a generator: the server (in this process) must not hold the
    file. Peak RSS growth is compared with the file size."""
    n = 300_000
    row = (
        "{i}.someone@example-company.com,Firstname,Lastname{i},"
        "Example Company {i} Ltd,+44 20 7946 0958,Manchester\n"
    )
    size = sum(len(row.format(i=i)) for i in range(0, n, 1000)) * 1000

    def chunks() -> Iterator[bytes]:
        yield b"email,first_name,last_name,company,phone,city\n"
        batch = []
        for i in range(n):
            batch.append(row.format(i=i))
            if len(batch) == 2000:
                yield "".join(batch).encode()
                batch.clear()
        if batch:
            yield "".join(batch).encode()

    base = _rss_bytes()
    peak = base
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, _rss_bytes())
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    began = time.monotonic()
    try:
        r = upload(world, chunks())
    finally:
        stop.set()
        sampler.join()
    took = time.monotonic() - began
    assert r.status_code == 202, r.text
    assert r.json()["rows_accepted"] == n
    growth = peak - base
    print(f"\n{n} rows, {size / 1e6:.0f} MB in {took:.1f}s; peak RSS growth {growth / 1e6:.0f} MB")
    assert growth < 0.8 * size + 60e6, (
        f"RSS grew {growth / 1e6:.0f} MB for a {size / 1e6:.0f} MB file"
    )
    sealed = [n_ for t, n_, _ in job_events(world, r.json()["job_id"]) if t == "sealed"]
    assert sealed == [n]
