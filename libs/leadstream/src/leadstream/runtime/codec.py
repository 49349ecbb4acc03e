"""The runtime's view of the serde (``leadstream.events.Serde`` satisfies it)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class Codec(Protocol):
    """Turns topic bytes into records and back; ``deserialize`` raises on undecodable bytes.

    ``topic`` is the physical (prefixed) topic name.
    """

    def deserialize(self, data: bytes, topic: str) -> dict[str, Any]: ...

    def serialize(self, record: Mapping[str, Any], topic: str) -> bytes: ...
