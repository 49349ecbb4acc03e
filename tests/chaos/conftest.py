"""The fault suite's session: its own stack and services (see ``world.py``), and the figures
it measured, written to ``CHAOS_REPORT`` (default ``.local/chaos/report-<scale>.json``) and
shown at the end of the run."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.chaos import scale
from tests.chaos.world import ROOT, World, chaos_world

_figures: list[World] = []


@pytest.fixture(scope="session")
def world() -> Iterator[World]:
    size = scale.current()
    with chaos_world(size.name) as w:
        _figures.append(w)
        try:
            yield w
        finally:
            w.figures.write(report_path(size.name))


def report_path(name: str) -> Path:
    default = ROOT / ".local" / "chaos" / f"report-{name}.json"
    return Path(os.environ.get("CHAOS_REPORT", default))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    for w in _figures:
        terminalreporter.section(f"fault suite figures ({w.figures.scale})")
        for row in w.figures.rows:
            terminalreporter.write_line(json.dumps(row, sort_keys=True))
