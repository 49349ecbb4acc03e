"""A detached server process with a pid file, a log file and a readiness probe."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from leadstream.infra.errors import InfraError

_children: dict[int, subprocess.Popen[bytes]] = {}
"""Servers started by this process, kept so they can be reaped (no zombies, no warnings)."""


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(timeout)
        return sock.connect_ex((host, port)) == 0


def pid_alive(pid: int) -> bool:
    """True when ``pid`` names a live process (zombies count as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


def tail(path: Path, lines: int = 15) -> str:
    """The last lines of a log file, or a note that there is none."""
    if not path.exists():
        return f"(no log at {path})"
    with path.open("rb") as fh:
        fh.seek(0, os.SEEK_END)
        fh.seek(max(0, fh.tell() - 16_384))
        text = fh.read().decode("utf-8", "replace")
    return "\n".join(text.splitlines()[-lines:])


@dataclass
class ManagedProcess:
    """One server: how to start it, where its pid and log live, and how to tell it is ready."""

    name: str
    argv: Sequence[str]
    pid_file: Path
    log_file: Path
    ports: Sequence[int]
    host: str
    ready: Callable[[], bool]
    env: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    user: str | None = None
    ready_timeout: float = 90.0
    stop_timeout: float = 30.0
    stop_signal: int = signal.SIGTERM
    """What asks the server to stop (PostgreSQL: SIGINT, its fast shutdown)."""

    def pid(self) -> int | None:
        """The pid of our running process, clearing a stale pid file."""
        try:
            pid = int(self.pid_file.read_text().strip())
        except (OSError, ValueError):
            return None
        if pid_alive(pid) and self._is_ours(pid):
            return pid
        self.pid_file.unlink(missing_ok=True)
        return None

    def _is_ours(self, pid: int) -> bool:
        """Guard against a recycled pid: the process must run our program."""
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            return True  # no /proc: trust the pid file
        program = os.path.basename(self.argv[0]).encode()
        # A console script runs as ``python <script>``: look at the first arguments too.
        return any(program in part for part in cmdline[:3])

    def running(self) -> bool:
        return self.pid() is not None

    def check_ports_free(self) -> None:
        for port in self.ports:
            if port_open(self.host, port):
                raise InfraError(
                    f"{self.name}: port {port} on {self.host} is already in use by another "
                    f"process; stop it or choose another port (see docs/infrastructure.md)"
                )

    def start(self) -> int:
        """Start detached (own session, survives this command) and write the pid file."""
        self.log_file.parent.mkdir(parents=True, exist_ok=True)
        self.pid_file.parent.mkdir(parents=True, exist_ok=True)
        env = {**os.environ, **self.env}
        with self.log_file.open("ab") as log:
            log.write(f"\n--- leadstream infra: starting {self.name} at {time.ctime()}\n".encode())
            log.flush()
            try:
                proc = subprocess.Popen(
                    list(self.argv),
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    cwd=self.cwd,
                    env=env,
                    user=self.user,
                    start_new_session=True,
                )
            except OSError as exc:
                raise InfraError(f"{self.name}: cannot start {self.argv[0]}: {exc}") from exc
        _children[proc.pid] = proc
        self.pid_file.write_text(f"{proc.pid}\n")
        return proc.pid

    def wait_ready(self, pid: int) -> None:
        """Poll the readiness probe; fail fast if the process dies."""
        deadline = time.monotonic() + self.ready_timeout
        while time.monotonic() < deadline:
            if not pid_alive(pid):
                child = _children.pop(pid, None)
                if child is not None:
                    child.wait()
                self.pid_file.unlink(missing_ok=True)
                raise InfraError(
                    f"{self.name} exited during start-up", log_tail=tail(self.log_file)
                )
            with contextlib.suppress(Exception):
                if self.ready():
                    return
            time.sleep(0.5)
        raise InfraError(
            f"{self.name} was not ready after {self.ready_timeout:.0f}s",
            log_tail=tail(self.log_file),
        )

    def kill(self) -> int | None:
        """SIGKILL the process group at once (a crash, for fault tests): no clean-up runs.
        Returns the pid that was killed, None if nothing ran."""
        pid = self.pid()
        if pid is None:
            return None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
        while pid_alive(pid):
            time.sleep(0.02)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait()
        self.pid_file.unlink(missing_ok=True)
        return pid

    def stop(self) -> bool:
        """``stop_signal`` to the process group, then SIGKILL after ``stop_timeout``. True if
        it ran."""
        pid = self.pid()
        if pid is None:
            return False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, self.stop_signal)
        deadline = time.monotonic() + self.stop_timeout
        while time.monotonic() < deadline and pid_alive(pid):
            time.sleep(0.2)
        if pid_alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            while pid_alive(pid):
                time.sleep(0.1)
        child = _children.pop(pid, None)
        if child is not None:
            child.wait()
        self.pid_file.unlink(missing_ok=True)
        return True
