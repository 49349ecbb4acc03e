"""Fixtures of the abuse suite: one ingest world (topics, schemas, a fresh database, keys, the
app on uvicorn in a thread) shared by the suite's modules, with a short body read timeout so
the slow-body tests stay short, and helpers that check an error body gives nothing away."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import World, running_world

READ_TIMEOUT_S = 2.0

# What an error body must never contain: a stack trace, SQL, driver or library names, file
# paths, internal addresses of the stack's servers.
LEAKS = re.compile(
    r"traceback|file \"|\.py\b|sqlalchemy|psycopg|asyncpg|pymongo|confluent|"
    r"librdkafka|fastavro|pydantic|starlette|uvicorn|select |insert into|update \w+ set|"
    r"delete from|drop table|syntax error|postgres|127\.0\.0\.1|localhost|:9092|:5432|"
    r":6379|:8081|:27017|/home/|/usr/|site-packages",
    re.IGNORECASE,
)


@pytest.fixture(scope="package")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack, body_read_timeout_s=READ_TIMEOUT_S) as w:
        yield w


def assert_clean_error(r: httpx.Response, status: int | None = None) -> dict[str, Any]:
    """A 4xx/5xx answer in the API's error shape that leaks nothing internal."""
    assert r.status_code >= 400, r.text
    if status is not None:
        assert r.status_code == status, r.text
    body = r.json()
    assert set(body) >= {"error", "reason", "request_id"}, body
    assert isinstance(body["error"], str), body
    assert body["error"], body
    assert body["request_id"] == r.headers["x-request-id"]
    assert not LEAKS.search(r.text), r.text
    return body
