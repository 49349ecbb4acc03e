"""The Celery baseline of ``bench/end_to_end.py`` decides what our stages decide: the same
sample list through the filter and verify stages (real broker, fresh database) and through the
Celery pipeline (real worker processes, Redis broker and backend, its own fresh database) ends
in the same rejection reasons and verdicts, contact for contact in number."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from bench.celery_baseline.run import read_rows
from leadstream.db import make_engine
from leadstream.demo.sample import dns_zone, write_sample
from leadstream.devtools.dns_server import DnsServer
from leadstream.events import Serde, register_schemas
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_verify.app import verify_stage
from leadstream_verify.config import VerifySettings
from tests.support.databases import scratch_database
from tests.support.kafka import produce, read_all

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ROWS = 200


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    with scratch_database(settings, "contacts@head") as fresh:
        yield fresh


def ours(db: Settings, path: Path) -> tuple[int, Counter[str], Counter[str]]:
    """Rows accepted, rejection reasons and verdicts from the filter and verify stages."""
    assert apply(TopicSettings.of(db, topic_partitions=3)).ok
    assert all(r.ok for r in register_schemas(db))
    serde = Serde(db)
    raw = db.topic("contacts.raw")
    rows = [r for r in read_rows(path, str(uuid.uuid4())) if r is not None]
    produce(db, raw, [(r["email"].strip().lower().encode(), serde.serialize(r, raw), [])
                      for r in rows])  # fmt: skip
    config = RuntimeConfig(instance_id="celery-check", batch_size=100, poll_timeout_s=0.2)
    fs = FilterSettings.model_validate(dict(db))
    engine = make_engine(db, pool_size=2)
    try:
        StageRunner(build_stage(fs, engine), fs, serde, config).run(
            max_records=len(rows), idle_timeout_s=5
        )
        with engine.connect() as conn:  # one contact row per record that passed
            passed = int(conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar() or 0)
        rejected_topic = db.topic("contacts.rejected")
        rejected = Counter(
            serde.deserialize(m.value(), rejected_topic)["reason"]
            for m in read_all(db, rejected_topic, expect=len(rows) - passed, timeout=20, settle=0.5)
        )
        with DnsServer(dns_zone()) as dns:
            vs = VerifySettings.model_validate(
                {
                    **dict(db),
                    "dns_nameservers": [dns.address],
                    "dns_cache_namespace": f"test:{uuid.uuid4().hex[:8]}:mx:",
                }
            )
            with verify_stage(vs, engine) as stage:
                StageRunner(stage, vs, serde, config).run(max_records=passed, idle_timeout_s=5)
        verified_topic = db.topic("contacts.verified")
        verdicts = Counter(
            serde.deserialize(m.value(), verified_topic)["verdict"]
            for m in read_all(db, verified_topic, expect=passed, timeout=20, settle=0.5)
        )
    finally:
        engine.dispose()
        serde.close()
    return len(rows), rejected, verdicts


def test_celery_baseline_counts_match_the_stages(db: Settings, tmp_path: Path) -> None:
    path = tmp_path / "contacts.csv"
    kinds = write_sample(path, ROWS, seed=11).kinds
    assert all(kinds[k] for k in ("duplicate", "invalid", "role"))  # the list exercises them
    accepted, rejected, verdicts = ours(db, path)
    done = subprocess.run(
        ["uv", "run", "--frozen", "--with", "celery[redis]==5.7.0", "python", "-m",
         "bench.celery_baseline.run", "--csv", str(path), "--chunk", "50", "--timeout", "120"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=240,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    celery = json.loads(done.stdout.strip().splitlines()[-1])
    assert celery["rows"] == accepted
    assert celery["refused_at_read"] == ROWS - accepted
    assert celery["tasks"] == -(-accepted // 50)
    assert Counter(celery["rejected"]) == rejected
    assert Counter(celery["verdicts"]) == verdicts
    assert celery["placed"] == verdicts["deliverable"] > 0
