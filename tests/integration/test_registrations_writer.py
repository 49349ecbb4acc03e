"""Every 202'd registration is in PostgreSQL exactly once — with duplicates, and across a
SIGKILL of the registration writer (the ``leadstream-registration-writer`` console script,
run as a subprocess) and its restart."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa

from leadstream.db import make_engine
from leadstream.events import Serde
from leadstream.infra import Stack
from leadstream.runtime import dlq_topic
from leadstream_ingest.config import IngestSettings
from leadstream_ingest.registration_writer import STAGE
from tests.integration.test_registrations import DirectServer, mobile, registration_world
from tests.support.kafka import read_all

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
WRITER = Path(sys.executable).parent / "leadstream-registration-writer"


def _env(settings: IngestSettings, instance: str) -> dict[str, str]:
    return {
        **os.environ,
        "LEADSTREAM_ENV": "test",
        "LEADSTREAM_TOPIC_PREFIX": settings.topic_prefix,
        "LEADSTREAM_KAFKA_BOOTSTRAP": settings.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": settings.schema_registry_url,
        "LEADSTREAM_DATABASE_URL": settings.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": settings.database_password.get_secret_value(),
        "LEADSTREAM_REGISTRATION_WRITER_METRICS_PORT": "0",
        "LEADSTREAM_RUNTIME_INSTANCE_ID": instance,
        "LEADSTREAM_RUNTIME_BATCH_SIZE": "20",
        "LEADSTREAM_RUNTIME_SESSION_TIMEOUT_MS": "6000",
        "LEADSTREAM_LOG_LEVEL": "WARNING",
    }


def _start(settings: IngestSettings, log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as fh:
        return subprocess.Popen(
            [str(WRITER)], cwd=ROOT, env=_env(settings, "regw-0"), stdout=fh, stderr=fh
        )


def _post_all(url: str, phones: list[str]) -> list[tuple[str, str]]:
    """POST one registration per phone (50 at a time); (request id, phone as typed)."""

    async def main() -> list[tuple[str, str]]:
        gate = asyncio.Semaphore(50)

        async def one(client: httpx.AsyncClient, phone: str) -> tuple[str, str]:
            async with gate:
                r = await client.post("/v1/registrations", json={"phone": phone})
            assert r.status_code == 202, r.text
            return r.json()["request_id"], phone

        async with httpx.AsyncClient(base_url=url, timeout=60) as client:
            return await asyncio.gather(*(one(client, p) for p in phones))

    return asyncio.run(main())


def _count(engine: sa.Engine, ids: list[str]) -> int:
    with engine.connect() as conn:
        return int(
            conn.execute(
                sa.text("SELECT count(*) FROM registration_requests WHERE request_id = ANY(:ids)"),
                {"ids": ids},
            ).scalar_one()
        )


def _wait(
    engine: sa.Engine, ids: list[str], at_least: int, proc: subprocess.Popen[bytes], log: Path
) -> int:
    deadline = time.monotonic() + 180
    done = 0
    while time.monotonic() < deadline:
        done = _count(engine, ids)
        if done >= at_least:
            return done
        if proc.poll() is not None:
            pytest.fail(f"writer exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        time.sleep(0.05)
    pytest.fail(f"only {done}/{at_least} written:\n{log.read_text()[-3000:]}")


@pytest.fixture
def world(stack: Stack) -> Iterator[tuple[IngestSettings, str]]:
    with (
        registration_world(
            stack, registration_rate_limit=1_000_000, registration_rate_burst=1_000_000
        ) as settings,
        DirectServer(settings) as server,
    ):
        yield settings, server.url


def test_every_accepted_registration_is_written_exactly_once_across_a_sigkill(
    world: tuple[IngestSettings, str], tmp_path: Path
) -> None:
    settings, url = world
    unique: dict[str, str] = {}
    while len(unique) < 1400:
        t, e164 = mobile()
        unique[e164] = t
    numbers = [(t, e164) for e164, t in list(unique.items())[:1200]]
    typed = dict(list(unique.items())[:1200])
    # 1,200 phones, 300 of them sent twice (the repeat in international form)
    repeats = [f"+44{t.replace(' ', '')[1:]}" for t, _ in random.sample(numbers, 300)]
    batch = [t for t, _ in numbers] + repeats
    random.shuffle(batch)
    accepted = _post_all(url, batch)

    engine = make_engine(settings, pool_size=1)
    log = tmp_path / "writer.log"
    try:
        ids = [rid for rid, _ in accepted]
        first = _start(settings, log)
        try:
            _wait(engine, ids, 300, first, log)
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait()
        killed_at = _count(engine, ids)
        assert killed_at < len(ids), "the writer finished before the kill: send more"

        # accepted while the writer is dead: 200 new phones and 100 repeats of written ones
        fresh = list(unique.values())[1200:]
        later = _post_all(url, fresh + random.sample([t for t, _ in numbers], 100))
        accepted += later
        ids = [rid for rid, _ in accepted]

        second = _start(settings, log)  # same instance id: fences the dead one's transaction
        try:
            _wait(engine, ids, len(ids), second, log)
            time.sleep(2)  # anything extra would show up now
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(timeout=60) == 0, log.read_text()[-3000:]

        with engine.connect() as conn:
            requests = conn.execute(
                sa.text("SELECT request_id, phone_e164, status FROM registration_requests")
            ).all()
            owners = dict(
                conn.execute(sa.text("SELECT phone_e164, request_id FROM registrations")).all()
            )
    finally:
        engine.dispose()

    # exactly once: every accepted id, nothing else, no id twice
    assert Counter(r.request_id for r in requests) == Counter(ids)

    # one registration per phone; its request is the one "registered", the rest duplicates
    by_phone: dict[str, list[tuple[str, str]]] = {}
    for r in requests:
        by_phone.setdefault(r.phone_e164, []).append((r.request_id, r.status))
    assert set(owners) == set(by_phone)
    assert len(owners) == len(numbers) + len(fresh)
    for phone, reqs in by_phone.items():
        registered = [rid for rid, status in reqs if status == "registered"]
        assert registered == [owners[phone]], phone
    assert sum(len(v) - 1 for v in by_phone.values()) == 300 + 100  # the duplicates

    # first come, first registered: the owner is the phone's first event on the topic
    with Serde(settings) as serde:
        events = [
            serde.deserialize(m.value(), m.topic())
            for m in read_all(settings, settings.topic("registrations"), expect=len(ids))
        ]
    firsts: dict[str, str] = {}
    for e in events:
        firsts.setdefault(e["phone_e164"], e["request_id"])
    assert firsts == owners
    assert typed.keys() <= owners.keys()

    # nothing was dead-lettered, and the API tells each client its own outcome
    assert not read_all(settings, settings.topic(dlq_topic(STAGE)), timeout=2)
    statuses = {rid: status for rid, _, status in requests}
    with httpx.Client(base_url=url, timeout=30) as client:
        for rid in random.sample(ids, 50):
            assert client.get(f"/v1/registrations/{rid}").json()["status"] == statuses[rid]
