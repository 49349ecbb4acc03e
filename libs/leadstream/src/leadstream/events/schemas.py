"""Load the event schemas (``schemas/*.avsc``) by record name."""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastavro import parse_schema
from fastavro.schema import SchemaParseException

from leadstream.events.errors import SchemaFileError
from leadstream.events.settings import EventSettings
from leadstream.settings import Settings

NAMESPACE = "io.leadstream.events"


@dataclass(frozen=True, slots=True)
class EventSchema:
    """One event schema: its file, its JSON, and the exact text given to the registry."""

    name: str  # record name, e.g. ContactSubmitted
    path: Path
    definition: Mapping[str, Any]
    text: str  # compact JSON: reformatting the file does not make a new registry version

    @property
    def fullname(self) -> str:
        return f"{self.definition.get('namespace', NAMESPACE)}.{self.name}"


class SchemaSet(Mapping[str, EventSchema]):
    """Every schema of a directory, by record name."""

    def __init__(self, directory: Path, schemas: Mapping[str, EventSchema]) -> None:
        self.directory = directory
        self._schemas = dict(schemas)

    @classmethod
    def load(cls, directory: Path) -> SchemaSet:
        """Read and validate every ``*.avsc`` directly in ``directory`` (not sub-directories)."""
        schemas = {s.name: s for s in map(load_schema, sorted(directory.glob("*.avsc")))}
        if not schemas:
            raise SchemaFileError(f"no .avsc files in {directory}")
        return cls(directory, schemas)

    def __getitem__(self, name: str) -> EventSchema:
        try:
            return self._schemas[name]
        except KeyError:
            raise SchemaFileError(f"no schema {name!r} in {self.directory}") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._schemas)

    def __len__(self) -> int:
        return len(self._schemas)


def load_schema(path: Path) -> EventSchema:
    """One ``.avsc`` file, parsed by fastavro; its file name must be the record name."""
    try:
        definition = json.loads(path.read_text(encoding="utf-8"))
        parse_schema(definition, named_schemas={})
    except (OSError, ValueError, SchemaParseException) as exc:
        raise SchemaFileError(f"{path}: {exc}") from exc
    name = definition.get("name") if isinstance(definition, dict) else None
    if name != path.stem:
        raise SchemaFileError(f"{path}: record name {name!r} differs from the file name")
    text = json.dumps(definition, separators=(",", ":"), ensure_ascii=False)
    return EventSchema(name=name, path=path, definition=definition, text=text)


def find_schemas_dir(settings: Settings | None = None, *, start: Path | None = None) -> Path:
    """Where the schemas are: ``LEADSTREAM_SCHEMAS_DIR`` (via :class:`EventSettings`) if set,
    else the first ``schemas/`` holding ``.avsc`` files in ``start`` (default: the current
    directory) or one of its parents."""
    if isinstance(settings, EventSettings) and settings.schemas_dir is not None:
        if not settings.schemas_dir.is_dir():
            raise SchemaFileError(f"LEADSTREAM_SCHEMAS_DIR={settings.schemas_dir} is no directory")
        return settings.schemas_dir
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        candidate = folder / "schemas"
        if candidate.is_dir() and any(candidate.glob("*.avsc")):
            return candidate
    raise SchemaFileError(
        f"no schemas/ directory with .avsc files in {here} or its parents; "
        "set LEADSTREAM_SCHEMAS_DIR"
    )


def load_schemas(settings: Settings | None = None) -> SchemaSet:
    """The schema set of :func:`find_schemas_dir`."""
    return SchemaSet.load(find_schemas_dir(settings))
