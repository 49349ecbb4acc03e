"""Fixtures and helpers of the ingest/audit integration tests (no tests here; the other
``test_ingest*``/``test_audit*`` modules import from it).

Every module gets its own world on the real servers: a topic prefix (topics applied,
schemas registered under the prefixed subjects), a fresh PostgreSQL database migrated to the
ingest revision, and the ingest app served by uvicorn on a free loopback port in a thread.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import uvicorn
from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
from confluent_kafka.schema_registry import SchemaRegistryClient

from leadstream.db import make_engine
from leadstream.db.api_keys import ApiKeyStore
from leadstream.events import Serde, register_schemas
from leadstream.infra import Stack
from leadstream.topics import TopicSettings, apply
from leadstream_ingest.app import create_app
from leadstream_ingest.config import IngestSettings
from tests.support.databases import scratch_database

WEBHOOK_SECRET = "whsec-" + "x7Kq2" * 6
log = logging.getLogger(__name__)


def base_settings(stack: Stack, prefix: str) -> IngestSettings:
    cfg = stack.settings
    return IngestSettings(
        env="test",
        kafka_bootstrap=f"{cfg.host}:{cfg.kafka_port}",
        schema_registry_url=f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        database_url=f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:{cfg.postgres_port}/"
        f"{cfg.postgres_database}",
        database_password=cfg.postgres_password,
        mongo_url=f"mongodb://{cfg.host}:{cfg.mongo_port}/",
        mongo_database=f"t_{prefix.strip('.')}",
        redis_url=f"redis://{cfg.host}:{cfg.redis_port}/0",
        topic_prefix=prefix,
        bison_webhook_secret=WEBHOOK_SECRET,
    )


@contextlib.contextmanager
def ingest_world(stack: Stack, **overrides: Any) -> Iterator[IngestSettings]:
    """A topic prefix with the whole catalog applied and the schemas registered, and a fresh
    database; the topics and subjects are deleted afterwards (a single local broker does not
    survive thousands of leftover test partitions)."""
    prefix = f"t{uuid.uuid4().hex[:10]}."
    settings = base_settings(stack, prefix).model_copy(update=overrides)
    try:
        report = apply(TopicSettings.of(settings))
        assert report.ok, report
        assert all(r.ok for r in register_schemas(settings))
        with scratch_database(settings) as fresh:
            yield fresh
    finally:
        forget_prefix(settings)


def forget_prefix(settings: IngestSettings, timeout_s: float = 30.0) -> None:
    """Delete the prefix's topics and schema subjects (best effort: cleanup never fails a
    test, and a broker that does not answer is left to its operators)."""
    prefix = settings.topic_prefix
    assert prefix, "refusing to delete unprefixed (production) topics"
    try:
        admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        names = [t for t in admin.list_topics(timeout=10).topics if t.startswith(prefix)]
        if names:
            futures = admin.delete_topics(names, operation_timeout=timeout_s)
            for future in futures.values():
                with contextlib.suppress(Exception):
                    future.result(timeout=timeout_s)
    except Exception as exc:  # the broker is away: nothing more to do here
        log.warning("could not delete the test topics of %s: %s", prefix, exc)
    try:
        registry = SchemaRegistryClient({"url": settings.schema_registry_url, "timeout": 10})
        try:
            for subject in registry.get_subjects():
                if subject.startswith(prefix):
                    registry.delete_subject(subject)
                    registry.delete_subject(subject, permanent=True)
        finally:
            registry.close()
    except Exception as exc:
        log.warning("could not delete the test subjects of %s: %s", prefix, exc)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Server:
    """The ingest app on uvicorn in a thread."""

    def __init__(self, settings: IngestSettings, **app_kwargs: Any) -> None:
        self.settings = settings
        self.port = free_port()
        self.app = create_app(settings, **app_kwargs)
        config = uvicorn.Config(
            self.app, host="127.0.0.1", port=self.port, log_level="warning", lifespan="on"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def __enter__(self) -> Server:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the ingest server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@dataclass
class Keys:
    """Tokens of the keys a test module uses."""

    ingest: str
    ingest_id: str
    other: str
    other_id: str
    admin: str
    admin_id: str
    revoked: str
    store: ApiKeyStore

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}


@contextlib.contextmanager
def api_keys(settings: IngestSettings) -> Iterator[Keys]:
    engine = make_engine(settings, pool_size=1)
    try:
        store = ApiKeyStore(engine)
        ingest = store.create("tests", ["ingest"])
        other = store.create("someone else", ["ingest"])
        admin = store.create("operator", ["admin"])
        revoked = store.create("old", ["ingest"])
        store.revoke(revoked.key.key_id)
        yield Keys(
            ingest.token,
            ingest.key.key_id,
            other.token,
            other.key.key_id,
            admin.token,
            admin.key.key_id,
            revoked.token,
            store,
        )
    finally:
        engine.dispose()


@dataclass
class World:
    settings: IngestSettings
    server: Server
    keys: Keys
    client: httpx.Client
    serde: Serde

    def read(self, topic: str) -> list[Any]:
        return read_to_end(self.settings, topic)

    def decoded(self, topic: str, **kwargs: Any) -> list[Event]:
        """(key, value, headers) of every committed event of a topic."""
        return [
            Event(m.key(), self.serde.deserialize(m.value(), m.topic()), dict(m.headers() or []))
            for m in self.read(topic, **kwargs)
        ]


@dataclass(frozen=True)
class Event:
    key: bytes
    value: dict[str, Any]
    headers: dict[str, bytes]


@contextlib.contextmanager
def running_world(stack: Stack, **overrides: Any) -> Iterator[World]:
    """Settings, keys, a running server, a client and a serde; a test module's ``world``."""
    with (
        ingest_world(stack, **overrides) as settings,
        api_keys(settings) as keys,
        Server(settings) as server,
        httpx.Client(base_url=server.url, timeout=60) as client,
        Serde(settings) as serde,
    ):
        yield World(settings, server, keys, client, serde)


def read_to_end(settings: IngestSettings, logical: str, timeout: float = 30.0) -> list[Any]:
    """Every committed message of a topic up to its current end offsets (read_committed).

    Called right after a 202, it must find the events: the end offsets are taken *now*, so
    an event that was not yet acknowledged would simply not be there.
    """
    topic = settings.topic(logical)
    consumer = Consumer(
        {
            "bootstrap.servers": settings.kafka_bootstrap,
            "group.id": f"reader-{uuid.uuid4().hex}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
        }
    )
    try:
        partitions = consumer.list_topics(topic, timeout=10).topics[topic].partitions
        ends = {
            p: consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1]
            for p in partitions
        }
        todo = {p for p, end in ends.items() if end > 0}
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in todo])
        out: list[Any] = []
        deadline = time.monotonic() + timeout
        while todo:
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}: partitions {sorted(todo)} not read to their end")
            for msg in consumer.consume(1000, 0.2):
                if msg.error():
                    raise KafkaException(msg.error())
                out.append(msg)
                if msg.offset() + 1 >= ends[msg.partition()]:
                    todo.discard(msg.partition())
        return out
    finally:
        consumer.close()
