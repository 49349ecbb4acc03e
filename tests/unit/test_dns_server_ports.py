"""The loopback DNS server finds a port free for both UDP and TCP."""

from __future__ import annotations

import socket
from typing import Any

import pytest

from leadstream.devtools import dns_server
from leadstream.devtools.dns_server import DnsServer


def test_a_udp_port_whose_tcp_twin_is_taken_is_given_up(monkeypatch: pytest.MonkeyPatch) -> None:
    with socket.socket() as blocker:  # a TCP listener on the port UDP will be handed first
        blocker.bind(("127.0.0.1", 0))
        blocker.listen()
        taken = blocker.getsockname()[1]
        real_udp = dns_server._UdpServer
        handed: list[int] = []

        def udp(address: tuple[str, int], handler: Any) -> Any:
            if not handed and address[1] == 0:
                address = (address[0], taken)
            server = real_udp(address, handler)
            handed.append(server.server_address[1])
            return server

        monkeypatch.setattr(dns_server, "_UdpServer", udp)
        with DnsServer({}) as server:
            assert server.port != taken
            assert handed[0] == taken
            assert server.port == handed[-1]
