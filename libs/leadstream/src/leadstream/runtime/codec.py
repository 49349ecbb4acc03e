"""The runtime's view of the serde: decode and encode values per physical topic."""

from __future__ import annotations

from typing import Any, Protocol


class Codec(Protocol):
    """Turns topic bytes into records and back; ``decode`` raises on undecodable bytes."""

    def decode(self, topic: str, data: bytes) -> dict[str, Any]: ...

    def encode(self, topic: str, value: dict[str, Any]) -> bytes: ...
