"""The fault suite's own world: a second stack (Kafka, the registry, PostgreSQL, Redis,
FerretDB) on alternate ports with its own state folder, every service as its own process on
alternate ports, the fake Email Bison, and the probes the scenarios need.

Nothing here touches the shared stack on the default ports: the suite restarts servers.
"""

from __future__ import annotations

import contextlib
import csv
import io
import json
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa
from confluent_kafka import Consumer, ConsumerGroupTopicPartitions
from confluent_kafka.admin import AdminClient
from pymongo import MongoClient

from leadstream.db import make_engine, upgrade
from leadstream.db.api_keys import ApiKeyStore
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.demo.sample import company_domains, dns_zone
from leadstream.devtools.dns_server import Mx
from leadstream.events import register_schemas
from leadstream.infra import InfraSettings, Stack
from leadstream.infra.apps import app_servers
from leadstream.infra.servers import Server
from leadstream.jobs import JobState, JobStateTimeout, JobStateView
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply
from tests.support.fake_bison import FakeBison, FakeBisonServer

ROOT = Path(__file__).resolve().parents[2]
INFRA_PORTS = {
    "kafka_port": 29092,
    "kafka_controller_port": 29093,
    "registry_port": 28081,
    "registry_management_port": 29001,
    "postgres_port": 25432,
    "redis_port": 26379,
    "mongo_port": 27117,
}
APP_PORTS = {
    "ingest": 28000,
    "audit": 29206,
    "registration-writer": 29208,
    "jobs": 26067,
    "filter": 29201,
    "verify": 29202,
    "batch": 29203,
    "bison-sync": 29204,
}
DNS_PORT = 25354
SPARE_PORTS = (29211, 29212)
"""Metrics ports of the two extra instances of scenario 2."""
GROUPS = {
    "filter": "leadstream-filter",
    "verify": "leadstream-verify",
    "batch": "leadstream-batch",
    "bison-sync": "leadstream-bison-sync",
    "jobs": "leadstream-jobs",
    "audit": "leadstream-audit",
    "registration-writer": "leadstream-registrations",
}
"""Stage service → the consumer group whose commits show it doing work."""
TRUSTED_PROXY = "127.0.0.1"
PREFIX = "leadstream-chaos-"
"""Name prefix of the world's state folder (under the temporary folder)."""

Report = Callable[[str], None]


def _quiet(_msg: str) -> None:
    pass


# ---------------------------------------------------------------- figures


@dataclass
class Figures:
    """What the suite measured, written as JSON (the docs quote it) and summed up at the end."""

    scale: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, **row: Any) -> None:
        with self.lock:
            self.rows.append(row)

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with self.lock:
            path.write_text(json.dumps({"scale": self.scale, "rows": self.rows}, indent=2) + "\n")


# ---------------------------------------------------------------- progress monitor

COMMITS = "leadstream_stage_transaction_seconds_count"
"""Transactions a stage process committed (the runtime commits each batch in one)."""


class ProgressMonitor:
    """Scrapes each stage process's ``/metrics`` and remembers when its count of committed
    transactions grew: a stage is doing work exactly when it commits. Read over HTTP from the
    process itself, so it needs no broker (Kafka restarts are among the faults) and a
    restarted process counts from zero."""

    def __init__(self, host: str, ports: dict[str, int], period_s: float = 0.2) -> None:
        self.host = host
        self.ports = dict(ports)
        self.period_s = period_s
        self.last: dict[str, float] = {}
        self.advances: dict[str, list[float]] = {name: [] for name in ports}
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._client = httpx.Client(timeout=2)
        self._thread = threading.Thread(target=self._run, name="progress-monitor", daemon=True)

    def start(self) -> ProgressMonitor:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        self._client.close()

    def watch(self, name: str, port: int) -> None:
        with self._cond:
            self.ports[name] = port
            self.advances.setdefault(name, [])

    def _commits(self, port: int) -> float:
        text = self._client.get(f"http://{self.host}:{port}/metrics").text
        return sum(
            float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(COMMITS)
        )

    def _run(self) -> None:
        while not self._stop.is_set():
            with self._cond:
                ports = dict(self.ports)
            for name, port in ports.items():
                # The scrape's start time: a scrape that began before a kill and answered
                # after it must not count as the restarted process's progress.
                now = time.monotonic()
                try:
                    commits = self._commits(port)
                except (httpx.HTTPError, ValueError, IndexError):  # down or restarting
                    continue
                with self._cond:
                    before = self.last.get(name)
                    self.last[name] = commits
                    # A restarted process starts from 0: any commit of it is progress.
                    if (before is not None and commits > before) or (
                        before is not None and commits < before and commits > 0
                    ):
                        self.advances[name].append(now)
                        self._cond.notify_all()
            self._stop.wait(self.period_s)

    def first_after(self, name: str, since: float) -> float | None:
        with self._cond:
            return next((t for t in self.advances[name] if t > since), None)

    def wait_advance(self, name: str, since: float, timeout: float) -> float | None:
        """The first time after ``since`` the process committed, waiting up to ``timeout``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                found = next((t for t in self.advances[name] if t > since), None)
                if found is not None or time.monotonic() > deadline:
                    return found
                self._cond.wait(0.2)

    def busy(self, name: str, within_s: float) -> bool:
        with self._cond:
            times = self.advances[name]
            return bool(times) and time.monotonic() - times[-1] < within_s


# ---------------------------------------------------------------- contacts


@dataclass(frozen=True)
class Contact:
    email: str
    first_name: str
    last_name: str
    company: str


def deliverable_domains() -> list[str]:
    """Domains the suite's DNS answers with MX records (every contact is deliverable)."""
    zone = dns_zone()
    return [d for d in company_domains() if isinstance(zone.get(d), Mx)]


def make_contacts(n: int, tag: str) -> list[Contact]:
    domains = deliverable_domains()
    return [
        Contact(
            email=f"person{i}.{tag}@{domains[i % len(domains)]}",
            first_name=f"First{i % 97}",
            last_name=f"Last{i % 89}",
            company=f"Company {i % 300}",
        )
        for i in range(n)
    ]


def csv_body(contacts: Sequence[Contact]) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(["email", "first_name", "last_name", "company"])
    for c in contacts:
        writer.writerow([c.email, c.first_name, c.last_name, c.company])
    return out.getvalue().encode()


@dataclass(frozen=True)
class Upload:
    job_id: str
    request_id: str
    emails: tuple[str, ...]


# ---------------------------------------------------------------- the world


@dataclass
class World:
    cfg: InfraSettings
    infra: Stack
    services: Stack
    settings: Settings
    fake: FakeBison
    fake_server: FakeBisonServer
    campaign: int
    token: str
    api: str
    monitor: ProgressMonitor
    figures: Figures
    extra: list[Server] = field(default_factory=list)
    accepted_requests: list[str] = field(default_factory=list)
    """Request ids of every 202 answered by ingest (each must be logged once in MongoDB)."""
    lock: threading.Lock = field(default_factory=threading.Lock)
    quiet: threading.Lock = field(default_factory=threading.Lock)
    """Held while Kafka or PostgreSQL restarts: uploads wait (a CSV upload whose broker or
    database goes away half-way fails its job, by design), registrations do not."""

    # ----------------------------------------------------------- processes

    def server(self, name: str) -> Server:
        for s in [*self.services.servers, *self.infra.servers, *self.extra]:
            if s.name == name:
                return s
        raise KeyError(name)

    def kill(self, name: str) -> float:
        """SIGKILL a service (its whole process group); returns the time of the kill."""
        proc = self.server(name).process
        assert proc.running(), f"{name} is not running"
        at = time.monotonic()
        assert proc.kill() is not None
        return at

    def start(self, name: str) -> None:
        server = self.server(name)
        Stack(self.cfg, servers=lambda _cfg: [server]).up(report=_quiet)

    def stop(self, name: str) -> None:
        self.server(name).process.stop()

    def replica(self, name: str, suffix: str, port: int, **env: str) -> Server:
        """Another instance of a stage service (own instance id and metrics port)."""
        base = self.server(name)
        proc = base.process
        rname = f"{name}-{suffix}"
        port_env = next(k for k, v in proc.env.items() if v == str(proc.ports[0]))
        merged = {
            **proc.env,
            port_env: str(port),
            "LEADSTREAM_RUNTIME_INSTANCE_ID": f"chaos-{rname}",
            **env,
        }
        url = f"http://{self.cfg.host}:{port}/healthz"

        def ready() -> bool:
            return httpx.get(url, timeout=2).status_code == 200

        server = Server(
            replace(
                proc,
                name=rname,
                pid_file=self.cfg.run_dir / f"{rname}.pid",
                log_file=self.cfg.logs_dir / f"{rname}.log",
                ports=[port],
                env=merged,
                ready=ready,
            ),
            prepare=lambda: None,
        )
        self.extra.append(server)
        return server

    def restart_infra(self, name: str) -> tuple[float, float]:
        """Stop one server of the stack and start it again; returns (stopped at, ready at)."""
        blocks_uploads = name in ("kafka", "postgres")
        with self.quiet if blocks_uploads else contextlib.nullcontext():
            at = time.monotonic()
            self.infra.down([name], report=_quiet)
            self.infra.up([name], report=_quiet)
            back = time.monotonic()
        return at, back

    # ----------------------------------------------------------- ingest

    def client(self, timeout: float = 120) -> httpx.Client:
        return httpx.Client(
            base_url=self.api, timeout=timeout, headers={"Authorization": f"Bearer {self.token}"}
        )

    def upload(self, client: httpx.Client, contacts: Sequence[Contact], name: str) -> Upload:
        with self.quiet:
            resp = client.post(
                "/v1/uploads",
                params={"name": name, "file_name": f"{name}.csv"},
                headers={"Content-Type": "text/csv"},
                content=csv_body(contacts),
            )
        assert resp.status_code == 202, f"upload {name}: {resp.status_code} {resp.text[:500]}"
        body = resp.json()
        assert body["rows_accepted"] == len(contacts), body
        self.accepted(body["request_id"])
        return Upload(body["job_id"], body["request_id"], tuple(c.email for c in contacts))

    def accepted(self, request_id: str) -> None:
        with self.lock:
            self.accepted_requests.append(request_id)

    # ----------------------------------------------------------- checks

    def engine(self) -> sa.Engine:
        return make_engine(self.settings, pool_size=1)

    def wait_jobs(self, uploads: Sequence[Upload], timeout: float) -> dict[str, JobState]:
        """Every upload's job completed, and every contact batched and synced."""

        def settled(s: JobState) -> bool:
            return (
                s.status in ("completed", "failed")
                and s.batched >= s.verdicts.get("deliverable", 0)
                and s.synced >= s.batched
            )

        states: dict[str, JobState] = {}
        deadline = time.monotonic() + timeout
        with JobStateView(self.settings, timeout_s=30) as view:
            assert view.wait_ready(60), "jobs.state not readable"
            for up in uploads:
                left = max(1.0, deadline - time.monotonic())
                try:
                    states[up.job_id] = view.wait_for(up.job_id, settled, timeout=left)
                except JobStateTimeout as exc:
                    lagging = "\n".join(self.lagging()) or "(no consumer group lags)"
                    raise AssertionError(f"{exc}\nconsumer groups behind:\n{lagging}") from exc
            time.sleep(2)  # anything counted twice would arrive after "settled"
            for up in uploads:
                states[up.job_id] = view.get(up.job_id) or states[up.job_id]
        return states

    def lagging(self) -> list[str]:
        """``group topic[partition]: committed/end`` for each partition a service group (or the
        job table) has not consumed to its end: where a stuck pipeline stopped."""
        groups = [*GROUPS.values(), f"{GROUPS['jobs']}-table"]
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap})
        ends = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"chaos-lag-{os.getpid()}",
                "isolation.level": "read_committed",
            }
        )
        lines: list[str] = []
        try:
            for group in groups:  # the admin client lists one group per request
                (future,) = admin.list_consumer_group_offsets(
                    [ConsumerGroupTopicPartitions(group)], request_timeout=10
                ).values()
                for tp in future.result(timeout=15).topic_partitions or []:
                    _, end = ends.get_watermark_offsets(tp, timeout=10)
                    if tp.offset >= 0 and end - tp.offset > 1:  # a commit marker may trail
                        lines.append(f"{group} {tp.topic}[{tp.partition}]: {tp.offset}/{end}")
        except Exception as exc:  # a report of a failure must not hide it
            lines.append(f"(lag report failed: {exc!r})")
        finally:
            ends.close()
        return sorted(lines)

    def contacts_in_postgres(self, emails: Iterable[str]) -> dict[str, int]:
        wanted = list(emails)
        engine = self.engine()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT email_normalized, count(*) FROM contacts "
                        "WHERE email_normalized = ANY(:emails) GROUP BY email_normalized"
                    ),
                    {"emails": wanted},
                ).all()
        finally:
            engine.dispose()
        return {r[0]: int(r[1]) for r in rows}

    def request_logs(self, request_ids: Sequence[str]) -> dict[str, int]:
        """request id → documents in MongoDB's request log."""
        client: MongoClient[dict[str, Any]] = MongoClient(
            host=self.cfg.host, port=self.cfg.mongo_port, serverSelectionTimeoutMS=10_000
        )
        counts: dict[str, int] = {}
        try:
            coll = client[self.settings.mongo_database]["request_logs"]
            for i in range(0, len(request_ids), 5_000):
                chunk = list(request_ids[i : i + 5_000])
                for doc in coll.find({"request_id": {"$in": chunk}}, {"request_id": 1}):
                    counts[doc["request_id"]] = counts.get(doc["request_id"], 0) + 1
        finally:
            client.close()
        return counts

    def wait_request_logs(self, request_ids: Sequence[str], timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            counts = self.request_logs(request_ids)
            if len(counts) >= len(set(request_ids)) or time.monotonic() > deadline:
                return counts
            time.sleep(1)

    def registration_outcomes(self, request_ids: Sequence[str]) -> dict[str, int]:
        engine = self.engine()
        try:
            with engine.connect() as conn:
                rows = conn.execute(
                    sa.text(
                        "SELECT request_id, count(*) FROM registration_requests "
                        "WHERE request_id = ANY(:ids) GROUP BY request_id"
                    ),
                    {"ids": list(request_ids)},
                ).all()
        finally:
            engine.dispose()
        return {r[0]: int(r[1]) for r in rows}

    def wait_registrations(self, request_ids: Sequence[str], timeout: float) -> dict[str, int]:
        deadline = time.monotonic() + timeout
        while True:
            found = self.registration_outcomes(request_ids)
            if len(found) >= len(set(request_ids)) or time.monotonic() > deadline:
                return found
            time.sleep(1)

    def keys_by_job(self, topic: str, job_ids: set[str], expect: int) -> dict[str, int]:
        """Committed records of a topic whose ``job_id`` header is one of ``job_ids``: key →
        how many times it was written (read until ``expect`` are in, then 2 s more)."""
        consumer = Consumer(
            {
                "bootstrap.servers": self.settings.kafka_bootstrap,
                "group.id": f"chaos-reader-{time.time_ns()}",
                "auto.offset.reset": "earliest",
                "enable.auto.commit": False,
                "isolation.level": "read_committed",
                "log_level": 0,
            }
        )
        consumer.subscribe([self.settings.topic(topic)])
        counts: dict[str, int] = {}
        deadline, until = time.monotonic() + 120, None
        try:
            while until is None or time.monotonic() < until:
                seen = sum(counts.values())
                if until is None and (seen >= expect or time.monotonic() > deadline):
                    until = time.monotonic() + 2
                for m in consumer.consume(1000, 0.5):
                    if m.error() is not None:
                        continue
                    headers = dict(m.headers() or [])
                    if (headers.get("job_id") or b"").decode() in job_ids:
                        key = (m.key() or b"").decode()
                        counts[key] = counts.get(key, 0) + 1
        finally:
            consumer.close()
        return counts

    def group_assignment(self, group: str) -> dict[str, set[tuple[str, int]]]:
        """client id → partitions assigned, from the group coordinator."""
        admin = AdminClient({"bootstrap.servers": self.settings.kafka_bootstrap, "log_level": 0})
        desc = admin.describe_consumer_groups([group], request_timeout=5)[group].result(10)
        return {
            m.client_id: {(tp.topic, tp.partition) for tp in m.assignment.topic_partitions}
            for m in desc.members
        }


# ---------------------------------------------------------------- building it


def chaos_infra_settings(state_dir: Path) -> InfraSettings:
    return InfraSettings(
        state_dir=state_dir,
        infra_dir=ROOT / "infra",
        kafka_heap=os.environ.get("CHAOS_KAFKA_HEAP", "512m"),
        **INFRA_PORTS,  # type: ignore[arg-type]
    )


def world_settings(cfg: InfraSettings) -> Settings:
    return Settings(
        env="test",
        kafka_bootstrap=f"{cfg.host}:{cfg.kafka_port}",
        schema_registry_url=f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        database_url=f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:{cfg.postgres_port}/"
        f"{cfg.postgres_database}",
        database_password=cfg.postgres_password,  # type: ignore[arg-type]
        mongo_url=f"mongodb://{cfg.host}:{cfg.mongo_port}/",
        redis_url=f"redis://{cfg.host}:{cfg.redis_port}/0",
    )


def _prepare(settings: Settings, campaign: int) -> str:
    upgrade(settings)
    assert apply(TopicSettings.of(settings)).ok
    assert all(r.ok for r in register_schemas(settings))
    engine = make_engine(settings, pool_size=1)
    try:
        CampaignStore(engine).add_rule(str(campaign), RuleMatch.of(), is_default=True)
        return ApiKeyStore(engine).create("chaos", ["ingest"]).token
    finally:
        engine.dispose()


def service_env(cfg: InfraSettings, fake_url: str, fake_key: str) -> dict[str, dict[str, str]]:
    return {
        "ingest": {"LEADSTREAM_TRUSTED_PROXIES": json.dumps([TRUSTED_PROXY])},
        "jobs": {"LEADSTREAM_DATA_DIR": str(cfg.state_dir / "jobs")},
        "batch": {"LEADSTREAM_BATCH_MAX_AGE_S": "2"},
        "bison-sync": {
            "LEADSTREAM_BISON_DRY_RUN": "false",
            "LEADSTREAM_BISON_BASE_URL": fake_url,
            "LEADSTREAM_BISON_API_KEY": fake_key,
            "LEADSTREAM_BISON_REQUESTS_PER_MINUTE": "60000",
            "LEADSTREAM_BISON_BURST": "100",
            "LEADSTREAM_BISON_SCHEDULER_ENABLED": "false",
        },
    }


def stop_stale_worlds(report: Report = _quiet) -> None:
    """Stop what a crashed earlier run left behind (its processes hold the suite's ports)."""
    for state in Path(tempfile.gettempdir()).glob(f"{PREFIX}*"):
        if not (state / "run").is_dir():
            continue
        cfg = chaos_infra_settings(state).resolved()
        Stack(cfg, servers=lambda c: app_servers(c, dns_port=DNS_PORT, ports=APP_PORTS)).down(
            report=report
        )
        Stack(cfg).down(report=report)
        shutil.rmtree(state, ignore_errors=True)


@contextlib.contextmanager
def chaos_world(scale: str, report: Report = _quiet) -> Iterator[World]:
    """Start the whole second world; stop and delete all of it afterwards."""
    stop_stale_worlds(report)
    state = Path(tempfile.mkdtemp(prefix=PREFIX))
    state.chmod(0o755)  # PostgreSQL runs as its own user and must reach its data dir
    cfg = chaos_infra_settings(state).resolved()
    infra = Stack(cfg)
    fake = FakeBison()
    workspace, key = fake.add_workspace("Chaos agency")
    campaign = fake.add_campaign(workspace, "Chaos campaign")
    fake_server = FakeBisonServer(fake)
    services: Stack | None = None
    monitor: ProgressMonitor | None = None
    try:
        began = time.monotonic()
        infra.up(report=report)
        report(f"stack up in {time.monotonic() - began:.1f}s")
        settings = world_settings(cfg)
        token = _prepare(settings, campaign)
        fake_server.start()
        level = os.environ.get("CHAOS_LOG_LEVEL", "WARNING")  # INFO to read a failure's story
        common = {"LEADSTREAM_ENV": "test", "LEADSTREAM_LOG_LEVEL": level}
        app_env = service_env(cfg, fake_server.url, key)
        services = Stack(
            cfg,
            servers=lambda c: app_servers(
                c, dns_port=DNS_PORT, ports=APP_PORTS, env=common, app_env=app_env
            ),
        )
        start_together(services)
        report(f"services up at {time.monotonic() - began:.1f}s")
        monitor = ProgressMonitor(cfg.host, {name: APP_PORTS[name] for name in GROUPS}).start()
        yield World(
            cfg=cfg,
            infra=infra,
            services=services,
            settings=settings,
            fake=fake,
            fake_server=fake_server,
            campaign=campaign,
            token=token,
            api=f"http://{cfg.host}:{APP_PORTS['ingest']}",
            monitor=monitor,
            figures=Figures(scale),
        )
    finally:
        if monitor is not None:
            monitor.stop()
        if services is not None:
            keep_logs(cfg)
            services.down(report=_quiet)
        fake_server.stop()
        infra.down(report=_quiet)
        keep_logs(cfg)
        shutil.rmtree(state, ignore_errors=True)


def start_together(stack: Stack) -> None:
    """Start every server of ``stack`` at once, then wait for each (the services do not need
    one another to start; one after the other took ~90 s on a loaded 2-core machine)."""
    started = []
    for server in stack.servers:
        server.process.check_ports_free()
        server.prepare()
        started.append((server, server.process.start()))
    for server, pid in started:
        server.process.wait_ready(pid)
        server.after_ready()


def keep_logs(cfg: InfraSettings) -> None:
    """Copy the world's logs next to the report (the world itself is deleted)."""
    target = Path(os.environ.get("CHAOS_LOGS", ROOT / ".local" / "chaos" / "logs"))
    with contextlib.suppress(OSError):
        target.mkdir(parents=True, exist_ok=True)
        for log in cfg.logs_dir.glob("*.log"):
            shutil.copyfile(log, target / log.name)


def sigstop(server: Server) -> int:
    pid = server.process.pid()
    assert pid is not None, f"{server.name} is not running"
    os.kill(pid, signal.SIGSTOP)
    return pid


def sigcont(pid: int) -> None:
    os.kill(pid, signal.SIGCONT)
