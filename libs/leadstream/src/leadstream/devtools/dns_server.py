"""A small authoritative DNS server on loopback (dnslib for the wire format).

Public DNS cannot be reached from development machines and CI: tests and the local sample run
(`make run`) point the verify stage at this server instead of the system resolver.

It listens on one free port over UDP *and* TCP and answers per configured domain:

    with DnsServer({"acme.example": Mx("mx1.acme.example"), "gone.example": NXDOMAIN}) as dns:
        resolver.nameservers = [dns.address]          # "127.0.0.1:<port>"

Behaviours: :class:`Mx` (MX records, optionally a null MX), :class:`AOnly` (no MX, an A
record), ``NXDOMAIN``, ``SERVFAIL``, ``SILENT`` (never answers: the client times out),
``EMPTY`` (NOERROR, no records at all), and :class:`Flaky` (SERVFAIL or silence for the first
N queries, then another behaviour). Unconfigured names are NXDOMAIN. ``queries`` counts the
queries per (name, type), so tests can assert what was (not) asked.
"""

from __future__ import annotations

import socket
import socketserver
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

from dnslib import MX as MXRecord  # type: ignore[import-untyped]
from dnslib import QTYPE, RCODE, RR, A, DNSRecord


@dataclass(frozen=True)
class Mx:
    """MX records: ``hosts`` in preference order (10, 20, ...); ``"."`` makes a null MX."""

    hosts: tuple[str, ...]
    ttl: int = 300

    def __init__(self, *hosts: str, ttl: int = 300) -> None:
        object.__setattr__(self, "hosts", hosts)
        object.__setattr__(self, "ttl", ttl)


@dataclass(frozen=True)
class AOnly:
    """No MX record; an A record (mail goes to the implicit MX, the host itself)."""

    ip: str = "192.0.2.10"
    ttl: int = 300


@dataclass(frozen=True)
class Rcode:
    name: str


NXDOMAIN = Rcode("NXDOMAIN")
SERVFAIL = Rcode("SERVFAIL")
SILENT = Rcode("SILENT")
EMPTY = Rcode("EMPTY")

Behaviour = Mx | AOnly | Rcode


@dataclass
class Flaky:
    """``first`` (SERVFAIL or SILENT) for the first ``times`` queries, then ``then``."""

    first: Rcode
    times: int
    then: Behaviour
    seen: int = field(default=0)


class DnsServer:
    """A DNS server on ``127.0.0.1:<free port>`` (UDP and TCP), in background threads."""

    def __init__(self, zones: Mapping[str, Behaviour | Flaky] | None = None) -> None:
        self.zones: dict[str, Behaviour | Flaky] = {
            k.lower().rstrip("."): v for k, v in (zones or {}).items()
        }
        self.queries: Counter[tuple[str, str]] = Counter()
        self._lock = threading.Lock()
        self._servers: list[socketserver.BaseServer] = []
        self._threads: list[threading.Thread] = []
        self.port = 0

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.port}"

    def set(self, name: str, behaviour: Behaviour | Flaky) -> None:
        with self._lock:
            self.zones[name.lower().rstrip(".")] = behaviour

    def count(self, name: str, qtype: str | None = None) -> int:
        with self._lock:
            return sum(
                n
                for (q, t), n in self.queries.items()
                if q == name and (qtype is None or t == qtype)
            )

    # ------------------------------------------------------------------ answers

    def answer(self, data: bytes) -> bytes | None:
        """The reply to one query, or None to stay silent."""
        request = DNSRecord.parse(data)
        qname = str(request.q.qname).rstrip(".").lower()
        qtype = QTYPE[request.q.qtype]
        with self._lock:
            self.queries[(qname, qtype)] += 1
            behaviour = self.zones.get(qname, NXDOMAIN)
            if isinstance(behaviour, Flaky):
                behaviour.seen += 1
                behaviour = behaviour.first if behaviour.seen <= behaviour.times else behaviour.then
        reply = request.reply()
        if isinstance(behaviour, Rcode):
            if behaviour is SILENT:
                return None
            if behaviour is NXDOMAIN:
                reply.header.rcode = RCODE.NXDOMAIN
            elif behaviour is SERVFAIL:
                reply.header.rcode = RCODE.SERVFAIL
            packed: bytes = reply.pack()  # EMPTY: NOERROR without records
            return packed
        if isinstance(behaviour, Mx) and qtype == "MX":
            for i, host in enumerate(behaviour.hosts):
                pref = 0 if host == "." else 10 * (i + 1)
                reply.add_answer(RR(qname, QTYPE.MX, rdata=MXRecord(host, pref), ttl=behaviour.ttl))
        elif isinstance(behaviour, AOnly) and qtype == "A":
            reply.add_answer(RR(qname, QTYPE.A, rdata=A(behaviour.ip), ttl=behaviour.ttl))
        out: bytes = reply.pack()
        return out

    # ------------------------------------------------------------------ lifecycle

    def start(self, port: int = 0) -> Self:
        """Listen on ``port`` (0 = a free port) over UDP and TCP."""
        outer = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                data, sock = self.request
                reply = outer.answer(data)
                if reply is not None:
                    sock.sendto(reply, self.client_address)

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                conn: socket.socket = self.request
                head = conn.recv(2)
                if len(head) < 2:
                    return
                size = int.from_bytes(head, "big")
                data = b""
                while len(data) < size:
                    chunk = conn.recv(size - len(data))
                    if not chunk:
                        return
                    data += chunk
                reply = outer.answer(data)
                if reply is not None:
                    conn.sendall(len(reply).to_bytes(2, "big") + reply)

        for _ in range(20):  # find a port free for both UDP and TCP
            udp = _UdpServer(("127.0.0.1", port), Udp)
            chosen = udp.server_address[1]  # with port 0, ask for a new one on the next try
            try:
                tcp = _TcpServer(("127.0.0.1", chosen), Tcp)
            except OSError:
                udp.server_close()
                continue
            self.port = int(chosen)
            self._servers = [udp, tcp]
            break
        else:  # pragma: no cover
            raise RuntimeError(f"no port free for both UDP and TCP (asked for {port or 'any'})")
        for server in self._servers:
            thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        for server in self._servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(5)
        self._servers, self._threads = [], []

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class _UdpServer(socketserver.ThreadingUDPServer):
    daemon_threads = True
    block_on_close = False


class _TcpServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True
