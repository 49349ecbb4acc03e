"""Schemathesis against the ingest app's own OpenAPI document, in process (the app on uvicorn
in a thread of this process), a bounded number of examples per operation: no request,
however odd, may produce a server error, and answers must match the documented schemas.

(Schemathesis' lazy pytest loader does not work with pytest 9, so each operation's hypothesis
strategy is driven here directly.)
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
)

from leadstream.infra import Stack
from tests.integration.test_ingest_fixtures import World, running_world

pytestmark = pytest.mark.integration
EXAMPLES = 25
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]


@pytest.fixture(scope="module")
def world(stack: Stack) -> Iterator[World]:
    with running_world(stack, max_upload_rows=5000) as w:
        yield w


def _operations(world: World) -> list[Any]:
    schema = schemathesis.openapi.from_url(f"{world.server.url}/openapi.json")
    return [result.ok() for result in schema.get_all_operations()]


def test_no_server_errors_and_documented_answers(world: World) -> None:
    operations = _operations(world)
    labels = {op.label for op in operations}
    assert {"POST /v1/contacts", "POST /v1/uploads", "GET /v1/jobs/{job_id}"} <= labels
    calls = 0
    with requests.Session() as session:
        session.headers.update(world.keys.auth(world.keys.admin))
        for operation in operations:

            @given(case=operation.as_strategy())
            @settings(
                max_examples=EXAMPLES,
                deadline=None,
                database=None,
                suppress_health_check=list(HealthCheck),
            )
            def run(case: Any) -> None:
                nonlocal calls
                calls += 1
                response = case.call(session=session, timeout=30)
                case.validate_response(response, checks=CHECKS)

            run()
    assert calls >= len(operations) * 5
