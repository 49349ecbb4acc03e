"""The five servers of the local stack: how each is prepared, started and probed."""

from __future__ import annotations

import base64
import os
import pwd
import re
import shutil
import signal
import subprocess
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from leadstream.infra.config import InfraSettings
from leadstream.infra.errors import InfraError
from leadstream.infra.process import ManagedProcess


@dataclass
class Server:
    """A server of the stack: ``prepare`` runs before each start (idempotent)."""

    process: ManagedProcess
    prepare: Callable[[], None]
    after_ready: Callable[[], None] = lambda: None

    @property
    def name(self) -> str:
        return self.process.name


def _require(path: Path, what: str) -> None:
    if not path.exists():
        raise InfraError(f"{what} not found at {path}: run `make install` first")


def _require_cmd(cmd: str, package: str) -> str:
    found = shutil.which(cmd)
    if found is None:
        raise InfraError(f"`{cmd}` is not installed: run `make install` (it installs {package})")
    return found


def _proc(
    cfg: InfraSettings,
    name: str,
    argv: list[str],
    ports: list[int],
    ready: Callable[[], bool],
    **kw: object,
) -> ManagedProcess:
    return ManagedProcess(
        name=name,
        argv=argv,
        pid_file=cfg.run_dir / f"{name}.pid",
        log_file=cfg.logs_dir / f"{name}.log",
        ports=ports,
        host=cfg.host,
        ready=ready,
        **kw,  # type: ignore[arg-type]
    )


# ---------------------------------------------------------------- PostgreSQL


def _postgres_os_user() -> str | None:
    """PostgreSQL refuses to run as root: as root we run it as the ``postgres`` user."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam("postgres")
    except KeyError as exc:
        raise InfraError(
            "running as root but there is no `postgres` user: run `make install`"
        ) from exc
    return "postgres"


def postgres(cfg: InfraSettings) -> Server:
    data = cfg.state_dir / "postgres" / "data"
    user = _postgres_os_user()
    bindir = cfg.postgres_bin_dir

    def prepare() -> None:
        _require(bindir / "postgres", "PostgreSQL server binaries")
        if (data / "PG_VERSION").exists():
            return
        if data.exists() and any(data.iterdir()):
            raise InfraError(
                f"postgres: data dir {data} is not a PostgreSQL cluster (corrupt or foreign); "
                f"remove it with `leadstream infra reset postgres`"
            )
        data.mkdir(parents=True, exist_ok=True)
        pwfile = data.parent / "superuser.pw"
        pwfile.write_text("postgres\n")
        if user is not None:
            shutil.chown(data.parent, user)
            shutil.chown(data, user)
            shutil.chown(pwfile, user)
        _traversable(data)
        result = subprocess.run(
            [
                str(bindir / "initdb"),
                "-D",
                str(data),
                "-U",
                "postgres",
                f"--pwfile={pwfile}",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C",
            ],
            capture_output=True,
            text=True,
            user=user,
            check=False,
        )
        pwfile.unlink(missing_ok=True)
        if result.returncode != 0:
            raise InfraError(f"postgres: initdb failed: {result.stderr.strip().splitlines()[-1:]}")

    def ready() -> bool:
        import psycopg

        with psycopg.connect(_pg_dsn(cfg, "postgres", "postgres", "postgres"), connect_timeout=2):
            return True

    def after_ready() -> None:
        import psycopg
        from psycopg import sql

        with psycopg.connect(
            _pg_dsn(cfg, "postgres", "postgres", "postgres"), autocommit=True
        ) as conn:
            role = conn.execute(
                "SELECT 1 FROM pg_roles WHERE rolname = %s", (cfg.postgres_user,)
            ).fetchone()
            verb = "ALTER" if role else "CREATE"
            conn.execute(
                sql.SQL(verb + " ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.Identifier(cfg.postgres_user), sql.Literal(cfg.postgres_password)
                )
            )
            if not conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", (cfg.postgres_database,)
            ).fetchone():
                conn.execute(
                    sql.SQL("CREATE DATABASE {} OWNER {}").format(
                        sql.Identifier(cfg.postgres_database), sql.Identifier(cfg.postgres_user)
                    )
                )

    argv = [
        str(bindir / "postgres"),
        "-D",
        str(data),
        "-p",
        str(cfg.postgres_port),
        "-c",
        f"listen_addresses={cfg.host}",
        "-c",
        "unix_socket_directories=",
        "-c",
        "max_connections=200",
        "-c",
        "fsync=on",
    ]
    # SIGTERM is PostgreSQL's *smart* shutdown: it waits for every client to disconnect, and
    # the services' pools never do, so a stop took the whole timeout and ended in SIGKILL.
    # SIGINT is the fast shutdown: sessions are ended, then a clean checkpoint.
    proc = _proc(
        cfg, "postgres", argv, [cfg.postgres_port], ready, user=user, stop_signal=signal.SIGINT
    )
    return Server(proc, prepare, after_ready)


def _pg_dsn(cfg: InfraSettings, user: str, password: str, db: str) -> str:
    return f"postgresql://{user}:{password}@{cfg.host}:{cfg.postgres_port}/{db}"


def _traversable(path: Path) -> None:
    """Let the ``postgres`` user reach a data dir inside a root-owned checkout."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            raise InfraError(
                f"postgres: {parent} is not searchable by other users, so the postgres user "
                f"cannot reach its data dir; set LEADSTREAM_STATE_DIR to a reachable folder"
            )


# ---------------------------------------------------------------- Redis


def redis(cfg: InfraSettings) -> Server:
    data = cfg.state_dir / "redis"

    def prepare() -> None:
        _require_cmd("redis-server", "redis-server")
        data.mkdir(parents=True, exist_ok=True)

    def ready() -> bool:
        import redis as redis_lib

        client = redis_lib.Redis(host=cfg.host, port=cfg.redis_port, socket_timeout=1)
        try:
            return bool(client.ping())
        finally:
            client.close()

    argv = [
        "redis-server",
        "--port",
        str(cfg.redis_port),
        "--bind",
        cfg.host,
        "--save",
        "",
        "--appendonly",
        "no",
        "--dir",
        str(data),
        "--daemonize",
        "no",
    ]
    return Server(_proc(cfg, "redis", argv, [cfg.redis_port], ready), prepare)


# ---------------------------------------------------------------- Kafka


def kafka(cfg: InfraSettings) -> Server:
    home = cfg.state_dir / "kafka"
    data = home / "data"
    props = home / "server.properties"

    def prepare() -> None:
        java = _require_cmd("java", "a Java 17+ runtime (default-jre-headless)")
        _require(cfg.kafka_libs / f"kafka_2.13-{cfg.kafka_version}.jar", "Kafka jars")
        home.mkdir(parents=True, exist_ok=True)
        template = (cfg.infra_dir / "kafka" / "server.properties.template").read_text()
        props.write_text(
            template.format(
                host=cfg.host,
                port=cfg.kafka_port,
                controller_port=cfg.kafka_controller_port,
                log_dirs=data,
            )
        )
        if (data / "meta.properties").exists():
            return
        if data.exists() and any(data.iterdir()):
            raise InfraError(
                f"kafka: data dir {data} has no meta.properties (corrupt or half-formatted); "
                f"remove it with `leadstream infra reset kafka`"
            )
        result = subprocess.run(
            [
                java,
                "-cp",
                f"{cfg.kafka_libs}/*",
                *_kafka_log_opts(cfg),
                "kafka.tools.StorageTool",
                "format",
                "--standalone",
                "--ignore-formatted",
                "-t",
                _cluster_id(),
                "-c",
                str(props),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfraError(
                f"kafka: storage format failed: {result.stdout}{result.stderr}".strip()
            )

    def ready() -> bool:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": f"{cfg.host}:{cfg.kafka_port}", "log_level": 0})
        admin.list_topics(timeout=5)
        return True

    argv = [
        "java",
        f"-Xms{cfg.kafka_heap}",
        f"-Xmx{cfg.kafka_heap}",
        "-server",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-XX:InitiatingHeapOccupancyPercent=35",
        "-XX:+ExplicitGCInvokesConcurrent",
        "-Djava.awt.headless=true",
        *_kafka_log_opts(cfg),
        "-cp",
        f"{cfg.kafka_libs}/*",
        "kafka.Kafka",
        str(props),
    ]
    return Server(
        _proc(
            cfg,
            "kafka",
            argv,
            [cfg.kafka_port, cfg.kafka_controller_port],
            ready,
            ready_timeout=120.0,
            stop_timeout=60.0,
        ),
        prepare,
    )


def _kafka_log_opts(cfg: InfraSettings) -> list[str]:
    return [f"-Dlog4j2.configurationFile={cfg.infra_dir / 'kafka' / 'log4j2.properties'}"]


def _cluster_id() -> str:
    """A KRaft cluster id: URL-safe base64 of 16 random bytes, unpadded, never starting with -."""
    while True:
        cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cid.startswith("-"):
            return cid


# ---------------------------------------------------------------- Schema registry

REGISTRY_MIN_JAVA = 21
"""Apicurio Registry 3.3 is compiled for Java 21 (class file version 65)."""


def java_major(java: str) -> int | None:
    """The major version of a ``java`` binary, or None if it does not run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=20, check=False
        ).stderr
    except (OSError, subprocess.TimeoutExpired):
        return None
    match = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not match:
        return None
    major = int(match.group(1))
    return int(match.group(2) or 0) if major == 1 else major


def find_java(minimum: int) -> str:
    """A ``java`` >= ``minimum`` ($LEADSTREAM_REGISTRY_JAVA, $JAVA_HOME, PATH, jvm dirs)."""
    candidates = [os.environ.get("LEADSTREAM_REGISTRY_JAVA", "")]
    if os.environ.get("JAVA_HOME"):
        candidates.append(str(Path(os.environ["JAVA_HOME"]) / "bin" / "java"))
    candidates.append(shutil.which("java") or "")
    candidates += sorted((str(p) for p in Path("/usr/lib/jvm").glob("*/bin/java")), reverse=True)
    for java in filter(None, candidates):
        major = java_major(java)
        if major is not None and major >= minimum:
            return java
    raise InfraError(
        f"registry: Apicurio Registry needs Java {minimum}+ and none was found "
        f"(looked at $LEADSTREAM_REGISTRY_JAVA, $JAVA_HOME, PATH, /usr/lib/jvm); "
        f"install a JDK {minimum}+ or point LEADSTREAM_REGISTRY_JAVA at its java"
    )


def registry(cfg: InfraSettings) -> Server:
    argv: list[str] = []

    def prepare() -> None:
        _require(cfg.registry_home / "quarkus-run.jar", "Apicurio Registry")
        argv[0] = find_java(REGISTRY_MIN_JAVA)

    def ready() -> bool:
        url = f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7/subjects"
        with urllib.request.urlopen(url, timeout=2) as resp:
            return bool(resp.status == 200)

    argv += [
        "java",
        "-Xmx384m",
        "-XX:+UseSerialGC",
        f"-Dquarkus.http.host={cfg.host}",
        f"-Dquarkus.http.port={cfg.registry_port}",
        f"-Dquarkus.management.host={cfg.host}",
        f"-Dquarkus.management.port={cfg.registry_management_port}",
        "-Dapicurio.storage.kind=kafkasql",
        f"-Dapicurio.kafkasql.bootstrap.servers={cfg.host}:{cfg.kafka_port}",
        "-Dquarkus.log.level=WARN",
        '-Dquarkus.log.category."io.apicurio".level=INFO',
        "-jar",
        "quarkus-run.jar",
    ]
    return Server(
        _proc(
            cfg,
            "registry",
            argv,
            [cfg.registry_port, cfg.registry_management_port],
            ready,
            cwd=cfg.registry_home,
            ready_timeout=120.0,
        ),
        prepare,
    )


# ---------------------------------------------------------------- FerretDB


def ferretdb(cfg: InfraSettings) -> Server:
    home = cfg.state_dir / "ferretdb"

    def prepare() -> None:
        _require(cfg.ferretdb_bin, "FerretDB")
        (home / "sqlite").mkdir(parents=True, exist_ok=True)
        (home / "state").mkdir(parents=True, exist_ok=True)

    def ready() -> bool:
        import pymongo

        client: pymongo.MongoClient[dict[str, object]] = pymongo.MongoClient(
            host=cfg.host, port=cfg.mongo_port, serverSelectionTimeoutMS=1500
        )
        try:
            client.admin.command("ping")
            return True
        finally:
            client.close()

    argv = [
        str(cfg.ferretdb_bin),
        "--handler=sqlite",
        f"--sqlite-url=file:{home / 'sqlite'}/",
        f"--state-dir={home / 'state'}",
        f"--listen-addr={cfg.host}:{cfg.mongo_port}",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=warn",
    ]
    return Server(_proc(cfg, "ferretdb", argv, [cfg.mongo_port], ready), prepare)


SERVER_FACTORIES: dict[str, Callable[[InfraSettings], Server]] = {
    "postgres": postgres,
    "redis": redis,
    "kafka": kafka,
    "ferretdb": ferretdb,
    "registry": registry,
}
"""Start order: the registry keeps its schemas in Kafka, so it comes after it."""
