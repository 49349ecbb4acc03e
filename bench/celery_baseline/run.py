"""Run one CSV list through the Celery baseline and print what it measured (one JSON line).

    uv run --frozen --with 'celery[redis]==5.7.0' python -m bench.celery_baseline.run \\
        --csv contacts.csv [--chunk 1000] [--concurrency 2]

What it does, in order: a fresh PostgreSQL database (migrated, one default routing rule, as the
sample run has), the sample's DNS zone in its own process on a free port, ``celery worker -c
N`` (prefork) as a real process on a queue of its own in Redis; then the timed part — read the
CSV with ingest's own row parsing (column aliases, row checks), split it into tasks of
``--chunk`` rows, send them as one chord, wait for the callback's result; then the workers'
peak RSS and CPU, a warm shutdown, and the database dropped. Broker and result backend are the
local Redis (database ``--redis-db``); the run's keys (all under one prefix) are deleted at the end.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from bench.common import cpu_seconds, peak_rss_mib, proc_tree
from leadstream.db import make_engine, upgrade
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.infra.process import port_open
from leadstream.settings import Settings
from leadstream_ingest.contacts import RequestContext
from leadstream_ingest.csv_columns import resolve_columns
from leadstream_ingest.csv_rows import RowBuilder, UploadMeta, csv_reader, is_blank

ROOT = Path(__file__).resolve().parents[2]
CAMPAIGN = "bench-campaign"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def read_rows(path: Path, job_id: str) -> Iterator[dict[str, Any] | None]:
    """ContactSubmitted values as ingest builds them (None for a row ingest refuses)."""
    with path.open(encoding="utf-8", newline="") as fh:
        rows = csv_reader(iter(fh), ",")
        header = next(rows)
        columns = resolve_columns(header, {}, max_columns=500)
        ctx = RequestContext(str(uuid.uuid4()), None, "127.0.0.1", "bench", None)
        meta = UploadMeta(job_id=job_id, file_name=path.name, ctx=ctx, tags=())
        builder = RowBuilder(columns, meta, max_field_chars=10_000)
        now = int(time.time() * 1000)
        number = 0
        for row in rows:
            if is_blank(row):
                continue
            number += 1
            built = builder.build(row, number + 1, number, now, check_bytes=False)
            yield built if isinstance(built, dict) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--csv", type=Path, required=True)
    parser.add_argument("--chunk", type=int, default=1000, help="rows per task")
    parser.add_argument("--concurrency", type=int, default=2, help="celery worker -c")
    parser.add_argument("--redis-db", type=int, default=11)
    parser.add_argument("--timeout", type=float, default=3600)
    args = parser.parse_args()

    base = Settings()
    run = uuid.uuid4().hex[:8]
    dbname = f"bench_celery_{run}"
    admin = make_engine(base, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    url = make_url(base.database_url).set(database=dbname).render_as_string(hide_password=False)
    db = base.model_copy(update={"database_url": url})
    redis_url = make_url(base.redis_url).set(database=str(args.redis_db))
    broker = redis_url.render_as_string(hide_password=False)
    dns_port = free_port()
    env = {
        **os.environ,
        "LEADSTREAM_DATABASE_URL": url,
        "LEADSTREAM_DNS_NAMESERVERS": json.dumps([f"127.0.0.1:{dns_port}"]),
        "LEADSTREAM_DNS_CACHE_NAMESPACE": f"bench-celery:{run}:mx:",
        "BENCH_CELERY_BROKER": broker,
        "BENCH_CELERY_QUEUE": f"leadstream-bench-{run}",
        "BENCH_CELERY_KEY_PREFIX": f"leadstream-bench-{run}:",
    }
    os.environ.update(env)  # the app module reads them at import
    from bench.celery_baseline.app import app, filter_verify, place

    procs: list[subprocess.Popen[bytes]] = []
    result: dict[str, Any] = {}
    stack = ExitStack()
    try:
        dns = subprocess.Popen(
            [sys.executable, "-m", "leadstream.cli", "sample", "dns", "--port", str(dns_port)],
            env=env,
            stdout=subprocess.DEVNULL,
        )
        procs.append(dns)
        log = tempfile.NamedTemporaryFile(prefix="celery-worker-", suffix=".log")  # noqa: SIM115
        stack.callback(log.close)
        worker = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "bench.celery_baseline.app", "worker",
             "-c", str(args.concurrency), "--prefetch-multiplier", "1", "--loglevel", "WARNING",
             "-n", f"bench-{run}@%h", "--without-gossip", "--without-mingle"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )  # fmt: skip
        procs.append(worker)
        # while they start (a worker builds its pipeline at its first task):
        upgrade(db)
        engine = make_engine(db, pool_size=1)
        CampaignStore(engine).add_rule(CAMPAIGN, RuleMatch.of(), is_default=True, name="bench")
        engine.dispose()
        deadline = time.monotonic() + 60
        while not (port_open("127.0.0.1", dns_port) and app.control.ping(timeout=0.5)):
            if time.monotonic() > deadline or worker.poll() is not None:
                log.seek(0)
                tail = log.read()[-3000:].decode(errors="replace")
                raise RuntimeError(f"the celery worker or the DNS server did not start:\n{tail}")
            time.sleep(0.2)
        from celery import chord

        started = time.time()
        job_id = str(uuid.uuid4())
        chunks: list[list[dict[str, Any]]] = [[]]
        refused = 0
        for row in read_rows(args.csv, job_id):
            if row is None:
                refused += 1
                continue
            if len(chunks[-1]) == args.chunk:
                chunks.append([])
            chunks[-1].append(row)
        header = [filter_verify.s(c) for c in chunks if c]
        async_result = chord(header)(place.s())
        dispatched = time.time()
        out = async_result.get(timeout=args.timeout, disable_sync_subtasks=False)
        ended = time.time()
        tree = proc_tree(worker.pid)
        result = {
            **out,
            "refused_at_read": refused,
            "tasks": len(header),
            "chunk": args.chunk,
            "concurrency": args.concurrency,
            "started": started,
            "dispatched": dispatched,
            "ended": ended,
            "seconds": ended - started,
            "peak_rss_mib": {str(p): peak_rss_mib(p) for p in tree},
            "cpu_s": {str(p): cpu_seconds(p) for p in tree},
            "worker_pid": worker.pid,
            "celery": __import__("celery").__version__,
        }
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait(10)
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)'))
        admin.dispose()
        stack.close()
        keys = redis.Redis.from_url(broker)
        for key in keys.scan_iter(match=f"leadstream-bench-{run}:*", count=1000):
            keys.delete(key)
        keys.close()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
