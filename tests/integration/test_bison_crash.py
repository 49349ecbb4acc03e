"""A bison-sync process SIGKILLed in the middle of an upload — right after Email Bison applied
a call and before the answer reached it — and restarted: every lead is created once and
attached once (counted at the fake), and one BatchSynced comes out."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadstream.settings import Settings
from tests.support.fake_bison import Seen
from tests.support.fake_bison.harness import batch_contact, batch_ready
from tests.support.fake_bison.sync_env import SyncEnv, sync_env

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def env(settings: Settings) -> Iterator[SyncEnv]:
    with sync_env(settings) as e:
        yield e


def service_env(env: SyncEnv) -> dict[str, str]:
    s = env.settings
    return {
        **os.environ,
        "LEADSTREAM_ENV": "test",
        "LEADSTREAM_KAFKA_BOOTSTRAP": s.kafka_bootstrap,
        "LEADSTREAM_SCHEMA_REGISTRY_URL": s.schema_registry_url,
        "LEADSTREAM_DATABASE_URL": s.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": s.database_password.get_secret_value(),
        "LEADSTREAM_REDIS_URL": s.redis_url,
        "LEADSTREAM_TOPIC_PREFIX": s.topic_prefix,
        "LEADSTREAM_BISON_BASE_URL": s.bison_base_url,
        "LEADSTREAM_BISON_API_KEY": s.bison_api_key.get_secret_value(),
        "LEADSTREAM_BISON_RATE_KEY": s.rate_key,
        "LEADSTREAM_BISON_REQUESTS_PER_MINUTE": "6000",
        "LEADSTREAM_BISON_UPSERT_CHUNK": "20",
        "LEADSTREAM_BISON_ATTACH_CHUNK": "20",
        "LEADSTREAM_BISON_SCHEDULER_ENABLED": "false",
        "LEADSTREAM_METRICS_PORT": "0",
        "LEADSTREAM_RUNTIME_INSTANCE_ID": "crash-0",
        "LEADSTREAM_RUNTIME_POLL_TIMEOUT_S": "0.2",
        "LEADSTREAM_LOG_LEVEL": "WARNING",
    }


def start(env: SyncEnv) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "leadstream_bison_sync"],
        env=service_env(env),
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


@pytest.mark.parametrize(("call", "nth"), [("create-or-update", 2), ("attach-leads", 2)])
def test_killed_mid_upload_creates_and_attaches_each_lead_once(
    env: SyncEnv, call: str, nth: int
) -> None:
    target = env.fake.add_campaign(env.workspace, "Target")
    run = uuid.uuid4().hex[:6]
    contacts = [batch_contact(f"k{i}.{run}@acme.example") for i in range(90)]
    ready = batch_ready(str(target), contacts)
    env.publish_ready(ready)
    proc = start(env)
    seen = 0
    killed = threading.Event()

    def kill_after_applying(s: Seen) -> None:
        nonlocal seen
        if call in s.path and s.status == 200 and not killed.is_set():
            seen += 1
            if seen == nth:  # the call was applied; its answer never arrives
                os.kill(proc.pid, signal.SIGKILL)
                killed.set()

    env.fake.hooks.append(kill_after_applying)
    try:
        assert killed.wait(90), f"never reached {call} #{nth}"
        proc.communicate(timeout=30)  # reaps it and closes its pipe
        assert proc.returncode == -signal.SIGKILL
        before = env.fake.requests(call)
        assert env.synced(expect=0, timeout=1) == []
        proc = start(env)  # the same instance id: it fences the dead one's transaction
        [synced] = env.synced(expect=1, timeout=90)
    finally:
        proc.terminate()
        try:
            _, err = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, err = proc.communicate()
    assert proc.returncode in (0, -signal.SIGTERM), err.decode()[-3000:]
    assert len(env.fake.requests(call)) > len(before)  # the restart really did more work
    assert {r["status"] for r in synced.value["results"]} == {"attached"}
    assert synced.value["attempt"] == 2
    for c in contacts:
        assert env.fake.created_count(c["email"]) == 1
    sends = env.fake.attach_sends(target)
    assert len(sends) == 90
    assert set(sends.values()) == {1}
    assert sorted(env.fake.campaign_leads(target)) == sorted(sends)
    time.sleep(0.5)
    assert len(env.synced(expect=2, timeout=2)) == 1
