"""Shared fixtures. Tests that need a server use ``stack``: it finds the real local stack
running, or starts it (and stops what it started at the end of the session)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest

from leadstream.infra import InfraSettings, Stack
from leadstream.settings import Settings


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """The real local stack, every server ready."""
    stack = Stack()
    started = stack.up(report=lambda _msg: None)
    deadline = time.monotonic() + 30  # a loaded machine can miss one probe
    while not_ready := [s.name for s in stack.status() if not s.ready]:
        if time.monotonic() > deadline:
            break
        time.sleep(1)
    if not_ready:
        pytest.fail(f"local stack not ready: {', '.join(not_ready)} (see `make infra-status`)")
    yield stack
    if started:
        stack.down(started, report=lambda _msg: None)


@pytest.fixture(scope="session")
def infra(stack: Stack) -> InfraSettings:
    return stack.settings


@pytest.fixture
def prefix() -> str:
    """A fresh topic/group prefix, so tests never see each other's data."""
    return f"t{uuid.uuid4().hex[:10]}."


@pytest.fixture
def settings(stack: Stack, prefix: str) -> Settings:
    cfg = stack.settings
    return Settings(
        env="test",
        kafka_bootstrap=f"{cfg.host}:{cfg.kafka_port}",
        schema_registry_url=f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        database_url=f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:{cfg.postgres_port}/"
        f"{cfg.postgres_database}",
        database_password=cfg.postgres_password,
        mongo_url=f"mongodb://{cfg.host}:{cfg.mongo_port}/",
        redis_url=f"redis://{cfg.host}:{cfg.redis_port}/0",
        topic_prefix=prefix,
    )
