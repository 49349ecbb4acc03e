"""Bring the local stack up and down as a whole: ordered, idempotent, all-or-nothing."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from leadstream.infra.config import InfraSettings
from leadstream.infra.errors import InfraError
from leadstream.infra.process import port_open
from leadstream.infra.servers import SERVER_FACTORIES, Server

Report = Callable[[str], None]


@dataclass(frozen=True)
class ServerStatus:
    name: str
    pid: int | None
    ports: tuple[int, ...]
    ready: bool
    log_file: str


class Stack:
    """Servers started in order and stopped in reverse: by default the five of the local
    stack; :func:`leadstream.infra.apps.app_servers` gives the pipeline's own processes."""

    def __init__(
        self,
        settings: InfraSettings | None = None,
        servers: Callable[[InfraSettings], Sequence[Server]] | None = None,
    ) -> None:
        self.settings = (settings or InfraSettings()).resolved()
        if servers is None:
            self.servers = [factory(self.settings) for factory in SERVER_FACTORIES.values()]
        else:
            self.servers = list(servers(self.settings))

    def select(self, names: Iterable[str] | None) -> list[Server]:
        if not names:
            return list(self.servers)
        wanted = set(names)
        known = [s.name for s in self.servers]
        unknown = wanted - set(known)
        if unknown:
            raise InfraError(
                f"unknown server(s) {', '.join(sorted(unknown))}; choose from {', '.join(known)}"
            )
        return [s for s in self.servers if s.name in wanted]

    def up(self, names: Iterable[str] | None = None, report: Report = print) -> list[str]:
        """Start what is not running; on any failure stop what this call started."""
        started: list[Server] = []
        try:
            for server in self.select(names):
                proc = server.process
                if proc.running():
                    report(f"{server.name}: already running (pid {proc.pid()})")
                    continue
                proc.check_ports_free()
                server.prepare()
                pid = proc.start()
                started.append(server)
                try:
                    proc.wait_ready(pid)
                    server.after_ready()
                except InfraError:
                    raise
                except Exception as exc:
                    raise InfraError(f"{server.name}: post-start setup failed: {exc}") from exc
                report(f"{server.name}: ready on {proc.host}:{proc.ports[0]} (pid {pid})")
        except BaseException:
            for server in reversed(started):
                server.process.stop()
            raise
        return [s.name for s in started]

    def down(self, names: Iterable[str] | None = None, report: Report = print) -> list[str]:
        """Stop running servers in reverse start order."""
        stopped = []
        for server in reversed(self.select(names)):
            if server.process.stop():
                stopped.append(server.name)
                report(f"{server.name}: stopped")
        return stopped

    def status(self) -> list[ServerStatus]:
        out = []
        for server in self.servers:
            proc = server.process
            pid = proc.pid()
            ready = False
            if pid is not None:
                try:
                    ready = proc.ready()
                except Exception:
                    ready = False
            out.append(ServerStatus(server.name, pid, tuple(proc.ports), ready, str(proc.log_file)))
        return out

    def reset(self, names: Iterable[str], report: Report = print) -> None:
        """Delete the data of stopped servers (e.g. after a corrupt data dir)."""
        for server in self.select(names):
            if server.process.running():
                raise InfraError(f"{server.name} is running: `leadstream infra down` it first")
            target = self.settings.state_dir / server.name
            if target.exists():
                shutil.rmtree(target)
                report(f"{server.name}: data removed ({target})")

    def foreign_listeners(self) -> list[str]:
        """Ports of the stack that answer although none of our servers is running there."""
        busy = []
        for server in self.servers:
            if server.process.running():
                continue
            busy += [
                f"{server.name}:{p}"
                for p in server.process.ports
                if port_open(server.process.host, p)
            ]
        return busy
