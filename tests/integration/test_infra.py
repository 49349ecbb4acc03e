"""`leadstream infra` behaviour on bad input: stale pid files, busy ports, corrupt data dirs,
servers that die at start-up. Uses its own state dir and ports, never the shared stack."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from leadstream.infra import InfraError, InfraSettings, Stack
from leadstream.infra.process import ManagedProcess, pid_alive, port_open

pytestmark = pytest.mark.integration


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def private(tmp_path: Path) -> Iterator[Stack]:
    """A stack with its own state dir and free ports (only redis is started by these tests)."""
    cfg = InfraSettings(
        state_dir=tmp_path / "state",
        redis_port=_free_port(),
        kafka_port=_free_port(),
        kafka_controller_port=_free_port(),
        postgres_port=_free_port(),
    )
    stack = Stack(cfg)
    yield stack
    stack.down(report=lambda _m: None)


def test_up_is_idempotent_and_down_leaves_no_process(private: Stack) -> None:
    assert private.up(["redis"], report=lambda _m: None) == ["redis"]
    pid = private.select(["redis"])[0].process.pid()
    assert pid is not None
    assert pid_alive(pid)
    assert private.up(["redis"], report=lambda _m: None) == []  # no-op when already up
    assert private.select(["redis"])[0].process.pid() == pid
    assert private.down(["redis"], report=lambda _m: None) == ["redis"]
    assert not pid_alive(pid)
    assert not port_open("127.0.0.1", private.settings.redis_port)


def test_stale_pid_file_never_blocks(private: Stack) -> None:
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    proc = private.select(["redis"])[0].process
    proc.pid_file.parent.mkdir(parents=True, exist_ok=True)
    proc.pid_file.write_text(f"{dead.pid}\n")
    assert private.up(["redis"], report=lambda _m: None) == ["redis"]
    assert proc.pid() != dead.pid


def test_busy_port_is_named_and_nothing_is_left_running(private: Stack) -> None:
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", private.settings.redis_port))
        squatter.listen()
        with pytest.raises(InfraError, match=rf"redis: port {private.settings.redis_port}"):
            private.up(["redis"], report=lambda _m: None)
    assert private.select(["redis"])[0].process.pid() is None


def test_corrupt_kafka_data_dir_names_the_fix(private: Stack) -> None:
    data = private.settings.state_dir / "kafka" / "data"
    data.mkdir(parents=True)
    (data / "garbage").write_text("not a kafka log dir")
    with pytest.raises(InfraError, match=r"kafka: .*leadstream infra reset kafka"):
        private.up(["kafka"], report=lambda _m: None)
    private.reset(["kafka"], report=lambda _m: None)
    assert not data.exists()


def test_missing_download_names_make_install(tmp_path: Path) -> None:
    stack = Stack(
        InfraSettings(
            state_dir=tmp_path / "s",
            cache_dir=tmp_path / "empty-cache",
            kafka_port=_free_port(),
            kafka_controller_port=_free_port(),
        )
    )
    with pytest.raises(InfraError, match=r"Kafka jars not found .*make install"):
        stack.up(["kafka"], report=lambda _m: None)


def test_rollback_stops_what_the_failed_call_started(private: Stack, tmp_path: Path) -> None:
    # redis starts first; kafka then fails (no jars in an empty cache): redis must be stopped.
    cfg = private.settings.model_copy(update={"cache_dir": tmp_path / "empty-cache"})
    stack = Stack(cfg)
    with pytest.raises(InfraError, match="Kafka jars"):
        stack.up(["redis", "kafka"], report=lambda _m: None)
    assert stack.select(["redis"])[0].process.pid() is None
    assert not port_open("127.0.0.1", cfg.redis_port)


def test_server_dying_at_start_shows_its_log(tmp_path: Path) -> None:
    proc = ManagedProcess(
        name="doomed",
        argv=[sys.executable, "-c", "import sys; print('boom: bad config'); sys.exit(3)"],
        pid_file=tmp_path / "doomed.pid",
        log_file=tmp_path / "doomed.log",
        ports=[_free_port()],
        host="127.0.0.1",
        ready=lambda: False,
        ready_timeout=20,
    )
    pid = proc.start()
    with pytest.raises(InfraError, match="doomed exited during start-up") as info:
        proc.wait_ready(pid)
    assert info.value.log_tail is not None
    assert "boom: bad config" in info.value.log_tail


def test_cli_reports_failure_in_one_line_with_nonzero_exit(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LEADSTREAM_STATE_DIR": str(tmp_path / "s"),
        "LEADSTREAM_CACHE_DIR": str(tmp_path / "none"),
        "LEADSTREAM_KAFKA_PORT": str(_free_port()),
        "LEADSTREAM_KAFKA_CONTROLLER_PORT": str(_free_port()),
    }
    result = subprocess.run(
        [sys.executable, "-m", "leadstream.cli", "infra", "up", "kafka"],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert result.returncode == 1
    assert "error: Kafka jars not found" in result.stderr
    assert "make install" in result.stderr


def test_recycled_pid_of_another_program_is_not_taken_for_ours(private: Stack) -> None:
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        proc = private.select(["redis"])[0].process
        proc.pid_file.parent.mkdir(parents=True, exist_ok=True)
        proc.pid_file.write_text(f"{other.pid}\n")
        assert proc.pid() is None
        assert not proc.pid_file.exists()
        assert private.up(["redis"], report=lambda _m: None) == ["redis"]
        assert other.poll() is None  # the unrelated process was left alone
    finally:
        other.kill()
        other.wait()
