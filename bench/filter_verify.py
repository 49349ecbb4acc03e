"""Filter and verify throughput per process, as ratios to the runtime passthrough measured in
the same run, and the filter against a Quix Streams peer on the same broker and data.

    uv run python -m bench.filter_verify [--records 100000] [--domains 4000] [--no-peer]
        [--no-faust]

Data: ContactSubmitted records with unique people and phone numbers over ``--domains``
company domains (about 10% gmail.com, 1% role accounts, 2% invalid addresses, 3% repeats of
an earlier person), on 3 partitions, in a fresh PostgreSQL database (dropped at the end).

- passthrough: ``bench.runtime_passthrough``'s runtime loop (decode → identity → encode,
  transactions on) over its own records, same count — the baseline of the ratios;
- filter: the real stage (normalization, one claim statement per batch, suppression snapshot
  polled every 2 s) → contacts.filtered / contacts.rejected;
- verify: the real stage over the filter's output with a warm DNS cache (every domain
  resolved once beforehand from a loopback DNS server, as a long-running instance would
  have it), Redis cache on, verdicts upserted per batch;
- peer: ``bench/peers/quix_filter.py`` (the filter's own normalization and policy modules in
  a Quix Streams app, its own venv) on the same contacts.raw, writing to peer topics;
- faust peer: ``bench/peers/faust_filter.py`` (the filter's handler and our Avro codec in a
  faust-streaming agent, exactly-once, configured like the jobs service) on the same
  contacts.raw, claiming into a database of its own, writing to the peer topics.
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from confluent_kafka import Producer
from confluent_kafka.admin import AdminClient, NewTopic
from sqlalchemy.engine import make_url

from bench import runtime_passthrough as rp
from bench.common import append_results, bench_settings
from leadstream.db import make_engine, upgrade
from leadstream.devtools.dns_server import DnsServer, Mx
from leadstream.events import Serde, register_schemas
from leadstream.runtime import RuntimeConfig, StageRunner
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from leadstream.topics.spec import Kind, TopicSpec
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_verify.app import verify_stage
from leadstream_verify.config import VerifySettings
from leadstream_verify.logic import VerifyLogic
from leadstream_verify.lookup import CachedMailLookup

ROOT = Path(__file__).resolve().parents[1]
PARTITIONS = 3


def contact(i: int, domains: int) -> dict[str, Any]:
    person = i - 7 if i % 33 == 7 and i > 7 else i  # ~3% repeat an earlier person
    domain = "gmail.com" if person % 10 == 3 else f"company{person % domains}.example"
    local = "info" if person % 100 == 42 else f"Firstname.Lastname{person}"
    email = f"{local}@{domain}" if i % 50 != 1 else f"broken{i}@"
    return {
        "event_id": str(uuid.uuid4()),
        "job_id": "bench-job",
        "source": "csv",
        "event_time": int(time.time() * 1000),
        "request_id": None,
        "email": email.upper() if person != i else email,
        "first_name": "FIRSTNAME",
        "last_name": f"lastname{i}",
        "phone": f"+44 7911 {i % 1_000_000:06d}",
        "company": f"Company {person % domains} Ltd",
        "website": f"https://www.company{person % domains}.example/",
        "title": "Head of Operations",
        "city": "Manchester",
        "state": "Greater Manchester",
        "postal_code": "m1 1ae",
        "country": "GB",
        "tags": ["insurance", "q4"],
        "custom_fields": {"campaign": "winter", "list": "bench"},
    }


def fill(settings: Settings, serde: Serde, n: int, domains: int) -> int:
    topic = settings.topic("contacts.raw")
    producer = Producer(
        {"bootstrap.servers": settings.kafka_bootstrap, "linger.ms": 50, "compression.type": "lz4"}
    )
    size = 0
    for i in range(n):
        c = contact(i, domains)
        value = serde.serialize(c, topic)
        size += len(value)
        while True:
            try:
                producer.produce(topic, key=c["email"].strip().lower().encode(), value=value)
                break
            except BufferError:
                producer.poll(0.05)
    producer.flush(120)
    return size // n


def rate(runner: StageRunner, n: int, profile: bool = False) -> tuple[float, int, str]:
    prof = cProfile.Profile() if profile else None
    if prof is not None:
        prof.enable()
    result = runner.run(max_records=n, idle_timeout_s=20)
    if prof is not None:
        prof.disable()
    assert result.first_record_at is not None
    assert result.last_commit_at is not None
    top = ""
    if prof is not None:
        out = io.StringIO()
        pstats.Stats(prof, stream=out).sort_stats("tottime").print_stats(12)
        top = "\n".join(line for line in out.getvalue().splitlines() if line.strip()[:1].isdigit())
    return (
        result.records_in / (result.last_commit_at - result.first_record_at),
        result.records_in,
        top,
    )


def _database(base: Settings, name: str, settings: Settings) -> Settings:
    """``settings`` on database ``name`` (of the server ``base`` points at)."""
    url = make_url(base.database_url).set(database=name).render_as_string(hide_password=False)
    return settings.model_copy(update={"database_url": url})


def peer(settings: Settings, db: Settings, n: int) -> dict[str, Any]:
    python = subprocess.run(
        ["bash", str(ROOT / "bench/peers/setup.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    url = make_url(db.sqlalchemy_url())
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    cfg = {
        "bootstrap": settings.kafka_bootstrap,
        "registry": settings.schema_registry_url,
        "dsn": dsn,
        "input": settings.topic("contacts.raw"),
        "filtered": settings.topic("peer.filtered"),
        "rejected": settings.topic("peer.rejected"),
        "group": settings.topic("quix-filter"),
        "records": n,
    }
    done = subprocess.run(
        [python, str(ROOT / "bench/peers/quix_filter.py"), json.dumps(cfg)],
        capture_output=True,
        text=True,
        timeout=1200,
    )
    if done.returncode != 0:
        raise RuntimeError(f"quix peer failed: {done.stderr[-2000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def faust_peer(settings: Settings, db: Settings, n: int, workdir: Path) -> dict[str, Any]:
    """``bench/peers/faust_filter.py`` in the product's environment plus ``cramjam`` (aiokafka
    needs it for lz4 batches; the product's faust reads a gzip topic), on a database of its
    own (the filter's handler claims into a fresh contacts table)."""
    cfg = {
        "bootstrap": settings.kafka_bootstrap,
        "registry": settings.schema_registry_url,
        "database_url": db.database_url,
        "topic_prefix": settings.topic_prefix,
        "input": "contacts.raw",
        "filtered": "peer.filtered",
        "rejected": "peer.rejected",
        "group": settings.topic("faust-filter"),
        "records": n,
        "batch": 1000,
        "datadir": str(workdir),
        "result": str(workdir / "faust-result.json"),
    }
    log = workdir / "faust.log"
    with log.open("wb") as out:
        argv = ["uv", "run", "--frozen", "--with", "cramjam>=2.8", "python",
                str(ROOT / "bench/peers/faust_filter.py"), json.dumps(cfg)]  # fmt: skip
        done = subprocess.run(
            argv,
            stdout=out,
            stderr=subprocess.STDOUT,
            timeout=1200,
            cwd=ROOT,
        )
    result_file = workdir / "faust-result.json"
    if not result_file.exists():
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"faust peer failed ({done.returncode}): {tail}")
    result: dict[str, Any] = json.loads(result_file.read_text())
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--domains", type=int, default=4_000)
    parser.add_argument("--no-peer", action="store_true", help="skip the Quix Streams peer")
    parser.add_argument("--no-faust", action="store_true", help="skip the faust peer")
    parser.add_argument("--profile", action="store_true", help="cProfile the filter run")
    parser.add_argument("--phone-validation", choices=["valid", "possible"], default="valid")
    parser.add_argument("--no-write", action="store_true", help="do not append to the docs")
    args = parser.parse_args()
    n = args.records
    settings = bench_settings()
    base = Settings()
    dbname = f"bench_{uuid.uuid4().hex[:8]}"
    admin = make_engine(base, pool_size=1).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{dbname}"'))
    db = _database(base, dbname, settings)
    created = [dbname]
    lines: list[str] = []
    try:
        upgrade(db, "contacts@head")
        assert apply(TopicSettings.of(db, topic_partitions=PARTITIONS)).ok
        peer_catalog = tuple(
            TopicSpec(f"peer.{kind}", Kind.STREAM, schema, "email", ("b",), ("b",), "b")
            for kind, schema in (("filtered", "ContactFiltered"), ("rejected", "ContactRejected"))
        )
        rp_names = ["bench.in", "bench.out"]
        rp_catalog = rp._catalog(rp_names)
        admin_kafka = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        extra = [*rp_names, "peer.filtered", "peer.rejected"]
        for f in admin_kafka.create_topics(
            [NewTopic(settings.topic(t), PARTITIONS, 1) for t in extra]
        ).values():
            f.result(30)
        register_schemas(db)
        register_schemas(db, catalog=rp_catalog)
        register_schemas(db, catalog=peer_catalog)
        serde = Serde(db)
        rp_serde = Serde(db, catalog=rp_catalog)
        avg = fill(db, serde, n, args.domains)
        rp._fill(db, rp_serde, settings.topic("bench.in"), n)
        config = RuntimeConfig(instance_id="bench", batch_size=1000)

        passthrough = rp._runtime(db, rp_serde, n)
        fs = FilterSettings.model_validate({**dict(db), "phone_validation": args.phone_validation})
        engine = make_engine(db, pool_size=2)
        filter_rate, filtered_in, top = rate(
            StageRunner(build_stage(fs, engine), fs, serde, config), n, args.profile
        )
        with engine.connect() as conn:
            passed = int(conn.execute(sa.text("SELECT count(*) FROM contacts")).scalar() or 0)
        zones = {f"company{d}.example": Mx(f"mx.company{d}.example") for d in range(args.domains)}
        zones["gmail.com"] = Mx("gmail-smtp-in.l.google.com")
        with DnsServer(zones) as dns:
            vs = VerifySettings.model_validate(
                {
                    **dict(db),
                    "dns_nameservers": [dns.address],
                    "dns_cache_namespace": f"bench:{uuid.uuid4().hex[:8]}:mx:",
                }
            )
            with verify_stage(vs, engine) as stage:
                lookup = cast(CachedMailLookup, cast(VerifyLogic, stage.handler).mail)
                cold = time.perf_counter()
                lookup.lookup_many(list(zones))
                cold_s = time.perf_counter() - cold
                verify_rate, verified_in, _ = rate(StageRunner(stage, vs, serde, config), passed)
        engine.dispose()
        peer_result = None if args.no_peer else peer(settings, db, n)
        faust_result = None
        if not args.no_faust:
            with admin.connect() as conn:
                conn.execute(sa.text(f'CREATE DATABASE "{dbname}_faust"'))
            created.append(f"{dbname}_faust")
            faust_db = _database(base, f"{dbname}_faust", settings)
            upgrade(faust_db, "contacts@head")
            with tempfile.TemporaryDirectory(prefix="faust-peer-") as tmp:
                faust_result = faust_peer(settings, faust_db, n, Path(tmp))
        serde.close()
        rp_serde.close()

        lines.append(
            f"{n:,} ContactSubmitted records of {avg} bytes over {args.domains:,} domains, "
            f"{PARTITIONS} partitions, batches of 1,000, one process each, the broker, "
            f"PostgreSQL and Redis on the same machine. Command: `uv run python -m "
            f"bench.filter_verify --records {n} --domains {args.domains} --phone-validation "
            f"{args.phone_validation}{' --no-peer' if args.no_peer else ''}"
            f"{' --no-faust' if args.no_faust else ''}`.\n"
        )
        lines.append("| loop | records | records/s | vs passthrough |\n|---|---|---|---|")
        lines.append(f"| runtime passthrough (baseline) | {n:,} | {passthrough:,.0f} | 1.00× |")
        lines.append(
            f"| filter | {filtered_in:,} | {filter_rate:,.0f} | {filter_rate / passthrough:.2f}× |"
        )
        lines.append(
            f"| verify (warm DNS cache) | {verified_in:,} | {verify_rate:,.0f} | "
            f"{verify_rate / passthrough:.2f}× |"
        )
        if faust_result is not None:
            lines.append(
                f"| faust-streaming filter peer | {faust_result['records']:,} | "
                f"{faust_result['rate']:,.0f} | {faust_result['rate'] / passthrough:.2f}× |"
            )
        if peer_result is not None:
            lines.append(
                f"| Quix Streams filter peer | {peer_result['records']:,} | "
                f"{peer_result['rate']:,.0f} | {peer_result['rate'] / passthrough:.2f}× |"
            )
        lines.append("")
        lines.append(
            f"- filter records/s per process = **{filter_rate:,.0f}** (target ≥ 15,000); "
            f"filter / passthrough = **{filter_rate / passthrough:.2f}×** (target ≥ 0.5×)"
        )
        lines.append(
            f"- verify records/s per process = **{verify_rate:,.0f}** (target ≥ 10,000); "
            f"verify / passthrough = **{verify_rate / passthrough:.2f}×** (target ≥ 0.5×)"
        )
        lines.append(
            f"- cold DNS: {len(zones):,} domains resolved in {cold_s:.2f} s "
            f"({len(zones) / cold_s:,.0f} look-ups/s, concurrent, loopback server)"
        )
        if peer_result is not None:
            lines.append(
                "- ours / Quix Streams peer (filter) = "
                f"**{filter_rate / peer_result['rate']:.2f}×** (target ≥ 1.0×); "
                "the peer's rate including its final commit: "
                f"{peer_result['records'] / peer_result['seconds_incl_final_commit']:,.0f}/s"
            )
        if faust_result is not None:
            lines.append(
                "- ours / faust-streaming peer (filter) = "
                f"**{filter_rate / faust_result['rate']:.2f}×** (the same handler and codec; "
                "faust's agent, `take_events(1000, within=1 s)`, exactly-once)"
            )
        if top:
            lines.append("\nfilter profile (cProfile, top by own time):\n\n```\n" + top + "\n```")
    finally:
        with admin.connect() as conn:
            for name in created:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
        kafka_admin = AdminClient({"bootstrap.servers": settings.kafka_bootstrap})
        mine = [
            t
            for t in kafka_admin.list_topics(timeout=10).topics
            if t.startswith(settings.topic_prefix)
        ]
        if mine:
            for f in kafka_admin.delete_topics(mine).values():
                f.result(30)
    body = "\n".join(lines)
    print(body)
    if not args.no_write:
        append_results("Filter and verify stages", body)


if __name__ == "__main__":
    main()
