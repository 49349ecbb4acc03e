"""The jobs service's watch on the table's recovery: a recovery that does not end restarts it.

The decision and the thread are checked here against faust's own recovery object, whose
fields are set as a stuck recovery leaves them; the restart itself is ``restart_in_place``.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import faust
import pytest
from faust.types import TP

from leadstream_jobs import table as table_module
from leadstream_jobs.table import recovery_overdue, watch_recovery


@pytest.fixture
def app() -> faust.App:
    return faust.App("recovery-watch-test", broker="kafka://127.0.0.1:1", autodiscover=False)


def test_only_a_recovery_running_past_the_limit_is_overdue(app: faust.App) -> None:
    recovery: Any = app.tables.recovery
    assert recovery_overdue(recovery, time.monotonic(), 10.0) is None  # not recovering
    recovery._set_recovery_started()
    started = recovery._recovery_started_at
    assert recovery.in_recovery
    assert started is not None
    assert recovery_overdue(recovery, started + 10.0, 10.0) is None
    assert recovery_overdue(recovery, started + 12.5, 10.0) == pytest.approx(12.5)
    recovery._set_recovery_ended()
    assert recovery_overdue(recovery, started + 99.0, 10.0) is None


def test_the_watch_calls_for_a_restart_with_what_was_read(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_module, "WATCH_EVERY_S", 0.05)
    recovery: Any = app.tables.recovery
    tp = TP("jobs.state", 3)
    recovery._set_recovery_started()
    recovery.active_offsets[tp] = 41
    recovery.active_highwaters[tp] = 57
    reasons: list[str] = []
    called = threading.Event()

    def on_stuck(reason: str) -> None:
        reasons.append(reason)
        called.set()

    stop = watch_recovery(app, 0.2, on_stuck)
    assert called.wait(5.0), "the watch never called for a restart"
    stop.set()
    assert len(reasons) == 1
    assert "table recovery still running after" in reasons[0]
    assert "41" in reasons[0]
    assert "57" in reasons[0]


def test_a_recovery_that_ends_in_time_is_left_alone(
    app: faust.App, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_module, "WATCH_EVERY_S", 0.05)
    recovery: Any = app.tables.recovery
    recovery._set_recovery_started()
    reasons: list[str] = []
    stop = watch_recovery(app, 0.5, reasons.append)
    try:
        time.sleep(0.2)
        recovery._set_recovery_ended()
        time.sleep(1.0)
    finally:
        stop.set()
    assert reasons == []
