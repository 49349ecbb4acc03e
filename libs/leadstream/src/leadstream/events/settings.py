"""Settings of the event contracts: where the ``.avsc`` files are."""

from __future__ import annotations

from pathlib import Path
from typing import Self

from pydantic import Field

from leadstream.settings import Settings


class EventSettings(Settings):
    """:class:`Settings` plus ``LEADSTREAM_SCHEMAS_DIR``.

    When ``schemas_dir`` is unset the repo's ``schemas/`` is found by walking up from the
    current directory (see :func:`leadstream.events.find_schemas_dir`); deployed images set it.
    """

    schemas_dir: Path | None = Field(default=None, description="Directory of the *.avsc files.")

    @classmethod
    def of(cls, settings: Settings, **overrides: object) -> Self:
        """These settings built from a plain :class:`Settings` (fields it lacks from the env)."""
        values: dict[str, object] = dict(settings)
        values.update(overrides)
        return cls(**values)  # type: ignore[arg-type]
