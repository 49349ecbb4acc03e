"""Shared fixtures. Tests that need a server use ``stack``: it finds the real local stack
running, or starts it (and stops what it started at the end of the session)."""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import Iterator

import pytest
from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

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
def prefix(stack: Stack) -> Iterator[str]:
    """A fresh topic/group prefix, so tests never see each other's data. Its topics and registry
    subjects are deleted afterwards: a suite that leaves them behind piles up thousands of
    partitions in one broker (it ran out of heap once)."""
    name = f"t{uuid.uuid4().hex[:10]}."
    yield name
    _drop_prefixed(stack.settings, name)


def _drop_prefixed(cfg: InfraSettings, name: str) -> None:
    admin = AdminClient({"bootstrap.servers": f"{cfg.host}:{cfg.kafka_port}"})
    topics = [t for t in admin.list_topics(timeout=10).topics if t.startswith(name)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=30).values():
            with contextlib.suppress(KafkaException):
                future.result(30)
    url = f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7"
    with SchemaRegistryClient({"url": url}) as registry:
        for subject in registry.get_subjects():
            if subject.startswith(name):
                with contextlib.suppress(Exception):
                    registry.delete_subject(subject)
                    registry.delete_subject(subject, permanent=True)


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
