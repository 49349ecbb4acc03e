"""Local Avro compatibility checks with the ``avro`` library (the registry's rules, offline)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import avro.schema
from avro.compatibility import ReaderWriterCompatibilityChecker, SchemaCompatibilityType

Schemaish = Mapping[str, Any] | str  # a parsed .avsc or its JSON text


@dataclass(frozen=True, slots=True)
class Compatibility:
    """Whether data written with one schema can be read with another, and why not."""

    compatible: bool
    messages: tuple[str, ...]


def can_read(reader: Schemaish, writer: Schemaish) -> Compatibility:
    """Can ``reader`` read what ``writer`` wrote? BACKWARD = new as reader, old as writer."""
    checker = ReaderWriterCompatibilityChecker()  # type: ignore[no-untyped-call]
    result = checker.get_compatibility(_parse(reader), _parse(writer))
    if result.compatibility is SchemaCompatibilityType.compatible:
        return Compatibility(True, ())
    kinds = ", ".join(sorted({kind.value for kind in result.incompatibilities})) or "incompatible"
    what = ", ".join(sorted(result.messages))
    where = ", ".join(sorted(result.locations))
    return Compatibility(False, (f"{kinds}: {what} (at {where})",))


def backward_compatible(
    new: Mapping[str, Any] | str, old: Mapping[str, Any] | str
) -> Compatibility:
    """Consumers using ``new`` can read events written with ``old`` (the registry's BACKWARD)."""
    return can_read(new, old)


def _parse(schema: Schemaish) -> avro.schema.Schema:
    return avro.schema.parse(schema if isinstance(schema, str) else json.dumps(schema))
