"""The jobs service's restarts in place: a crash of a running service starts it again, and a
start that then fails (Kafka still down) is retried for ``restart_patience_s``."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from leadstream_jobs.app import DOWN_SINCE_ENV, RESTART_AFTER_S, restart_from

NOW = 1_000_000.0


def test_a_clean_exit_is_never_restarted() -> None:
    assert restart_from(0, 5000.0, NOW - 10, NOW, 600.0) is None


def test_a_crash_of_a_running_service_begins_an_outage_now() -> None:
    assert restart_from(1, RESTART_AFTER_S + 1, None, NOW, 600.0) == NOW
    assert restart_from(1, RESTART_AFTER_S + 1, NOW - 5000, NOW, 600.0) == NOW  # a new one


def test_a_start_up_failure_is_retried_only_within_the_patience_of_its_outage() -> None:
    assert restart_from(1, 0.0, None, NOW, 600.0) is None  # the very first start: exit
    assert restart_from(1, 0.0, NOW - 100, NOW, 600.0) == NOW - 100  # the outage keeps its start
    assert restart_from(1, RESTART_AFTER_S, NOW - 599, NOW, 600.0) == NOW - 599
    assert restart_from(1, 0.0, NOW - 600, NOW, 600.0) is None  # patience spent
    assert restart_from(1, 0.0, NOW - 100, NOW, 0.0) is None  # no patience: exit


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])  # nothing listens once the socket is closed


def _run_jobs(tmp_path: Path, **env: str) -> tuple[int, str, float]:
    """``leadstream-jobs`` with Kafka and the registry unreachable; its exit code, output and
    run time."""
    port = _closed_port()
    began = time.monotonic()
    proc = subprocess.run(
        [sys.executable, "-m", "leadstream_jobs.app"],
        env={
            **os.environ,
            "LEADSTREAM_ENV": "test",
            "LEADSTREAM_KAFKA_BOOTSTRAP": f"127.0.0.1:{port}",
            "LEADSTREAM_SCHEMA_REGISTRY_URL": f"http://127.0.0.1:{port}/apis/ccompat/v7",
            "LEADSTREAM_DATA_DIR": str(tmp_path / "jobs"),
            "LEADSTREAM_STARTUP_TIMEOUT_S": "1",
            **env,
        },
        capture_output=True,
        text=True,
        timeout=120,
    )
    return proc.returncode, proc.stdout + proc.stderr, time.monotonic() - began


@pytest.mark.timeout(150)
def test_a_first_start_without_kafka_exits(tmp_path: Path) -> None:
    code, out, _ = _run_jobs(tmp_path)
    assert code == 1, out[-3000:]
    assert "cannot list topics" in out, out[-3000:]
    assert "starting again" not in out, out[-3000:]


@pytest.mark.timeout(150)
def test_a_restart_while_kafka_is_down_retries_then_gives_up(tmp_path: Path) -> None:
    """As after a crash in an outage: the restarted process finds Kafka down; it starts again
    in place (same process, the outage's start kept) until the patience is spent, then exits."""
    code, out, took = _run_jobs(
        tmp_path,
        **{DOWN_SINCE_ENV: repr(time.time()), "LEADSTREAM_RESTART_PATIENCE_S": "8"},
    )
    assert code == 1, out[-3000:]
    retries = re.findall(r"leadstream-jobs exited with 1 after 0s up; starting again", out)
    assert len(retries) >= 1, out[-3000:]
    assert out.count("leadstream-jobs failed") == len(retries) + 1, out[-3000:]  # each start
    assert took >= 8, took  # it kept trying for the patience it was given
