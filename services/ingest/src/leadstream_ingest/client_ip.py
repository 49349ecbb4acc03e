"""The client's IP address: the peer, or, behind a trusted proxy, from X-Forwarded-For."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import Scope


def client_ip(scope: Scope, trusted_proxies: Sequence[str]) -> str | None:
    """The peer address; when the peer is a trusted proxy, the right-most address of
    ``X-Forwarded-For`` that is not itself a trusted proxy (the left part can be forged)."""
    client = scope.get("client")
    peer: str | None = str(client[0]) if client else None
    if peer is None or peer not in trusted_proxies:
        return peer
    for key, value in scope.get("headers", ()):
        if key == b"x-forwarded-for":
            hops = [h.strip() for h in value.decode("latin-1").split(",") if h.strip()]
            for hop in reversed(hops):
                if hop not in trusted_proxies:
                    return str(hop[:64])
    return peer
