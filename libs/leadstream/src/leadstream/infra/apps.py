"""The pipeline's own processes on one machine, managed like the stack's servers: detached,
pid files and logs under ``.local/``, a readiness probe each, stopped in reverse order.

Every stage reads ``LEADSTREAM_METRICS_PORT``, so each process gets its own port here, and a
stable ``LEADSTREAM_RUNTIME_INSTANCE_ID`` so a restarted stage fences its predecessor at once,
and joins its consumer group as a static member so it gets its partitions back at once.
"""

from __future__ import annotations

import json
import sys
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from leadstream.infra.config import InfraSettings
from leadstream.infra.process import ManagedProcess, port_open
from leadstream.infra.servers import Server


@dataclass(frozen=True)
class App:
    name: str
    command: str
    port: int
    port_env: str
    health_path: str = "/healthz"


APPS: tuple[App, ...] = (
    App("ingest", "leadstream-ingest", 8000, "LEADSTREAM_HTTP_PORT"),
    App("audit", "leadstream-audit", 9106, "LEADSTREAM_METRICS_PORT"),
    App(
        "registration-writer",
        "leadstream-registration-writer",
        9108,
        "LEADSTREAM_REGISTRATION_WRITER_METRICS_PORT",
    ),
    App("jobs", "leadstream-jobs", 6066, "LEADSTREAM_WEB_PORT"),
    App("filter", "leadstream-filter", 9101, "LEADSTREAM_METRICS_PORT"),
    App("verify", "leadstream-verify", 9102, "LEADSTREAM_METRICS_PORT"),
    App("batch", "leadstream-batch", 9103, "LEADSTREAM_METRICS_PORT"),
    App("bison-sync", "leadstream-bison-sync", 9104, "LEADSTREAM_METRICS_PORT"),
)
DNS_PORT = 5353
"""The loopback DNS that answers for the sample's domains (public DNS is out of reach)."""


def _http_ok(url: str) -> Callable[[], bool]:
    def probe() -> bool:
        with urllib.request.urlopen(url, timeout=2) as resp:  # noqa: S310 - loopback URL
            return bool(resp.status == 200)

    return probe


def app_servers(
    cfg: InfraSettings,
    *,
    dns_port: int = DNS_PORT,
    ports: Mapping[str, int] | None = None,
    env: Mapping[str, str] | None = None,
    app_env: Mapping[str, Mapping[str, str]] | None = None,
) -> list[Server]:
    """The sample DNS first, then every service (ingest first, the stages after).

    ``ports`` moves services off their fixed ports (app name → port), so a second pipeline can
    run beside the first on one machine; ``env`` is added to every service's environment and
    ``app_env`` (app name → variables) to one service's, after the defaults set here.
    """
    ports = ports or {}
    unknown = set(ports) | set(app_env or {})
    unknown -= {app.name for app in APPS}
    if unknown:
        raise ValueError(f"unknown app(s): {', '.join(sorted(unknown))}")
    bindir = Path(sys.executable).parent
    common = {
        "LEADSTREAM_KAFKA_BOOTSTRAP": f"{cfg.host}:{cfg.kafka_port}",
        "LEADSTREAM_SCHEMA_REGISTRY_URL": f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        "LEADSTREAM_DATABASE_URL": f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:"
        f"{cfg.postgres_port}/{cfg.postgres_database}",
        "LEADSTREAM_DATABASE_PASSWORD": cfg.postgres_password,
        "LEADSTREAM_MONGO_URL": f"mongodb://{cfg.host}:{cfg.mongo_port}/",
        "LEADSTREAM_REDIS_URL": f"redis://{cfg.host}:{cfg.redis_port}/0",
    }
    dns = ManagedProcess(
        name="dns",
        argv=[sys.executable, "-m", "leadstream.cli", "sample", "dns", "--port", str(dns_port)],
        pid_file=cfg.run_dir / "dns.pid",
        log_file=cfg.logs_dir / "dns.log",
        ports=[dns_port],
        host=cfg.host,
        ready=lambda: port_open(cfg.host, dns_port),
        env=common,
    )
    servers = [Server(dns, prepare=lambda: None)]
    for app in APPS:
        port = ports.get(app.name, app.port)
        app_vars = {
            **common,
            app.port_env: str(port),
            "LEADSTREAM_RUNTIME_INSTANCE_ID": f"local-{app.name}",
            "LEADSTREAM_RUNTIME_STATIC_MEMBERSHIP": "true",
        }
        if app.name == "verify":
            app_vars["LEADSTREAM_DNS_NAMESERVERS"] = json.dumps([f"{cfg.host}:{dns_port}"])
        if app.name == "bison-sync":
            app_vars["LEADSTREAM_BISON_DRY_RUN"] = "true"
        if app.name == "batch":
            app_vars["LEADSTREAM_BATCH_MAX_AGE_S"] = "10"  # a sample run ends in seconds
        app_vars.update(env or {})
        app_vars.update((app_env or {}).get(app.name, {}))
        proc = ManagedProcess(
            name=app.name,
            argv=[str(bindir / app.command)],
            pid_file=cfg.run_dir / f"{app.name}.pid",
            log_file=cfg.logs_dir / f"{app.name}.log",
            ports=[port],
            host=cfg.host,
            ready=_http_ok(f"http://{cfg.host}:{port}{app.health_path}"),
            env=app_vars,
            ready_timeout=60.0,
        )
        servers.append(Server(proc, prepare=lambda: None))
    return servers
