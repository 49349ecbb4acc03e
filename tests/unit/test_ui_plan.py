"""``leadstream ui``'s command line, built without starting anything; the tab launcher's
registry settings and its watch on the server (on real processes)."""

from __future__ import annotations

import itertools
import subprocess
import threading

import pytest

from leadstream.errors import ConfigError
from leadstream.settings import Settings
from leadstream.ui import KASKADE, TEXTUAL_SERVE, plan_ui
from leadstream.ui.kaskade import REGISTRY_TIMEOUT_S, SERVE_SCRIPT
from leadstream.ui.launch import alive, numeric_conf, watch_server, with_numeric_conf


def _settings(prefix: str = "") -> Settings:
    return Settings(
        kafka_bootstrap="broker:9092",
        schema_registry_url="http://registry:8080/apis/ccompat/v7",
        topic_prefix=prefix,
    )


def test_admin_view_runs_kaskade_in_its_own_environment() -> None:
    plan = plan_ui(_settings(), port=9000, uv="/bin/uv")
    argv = plan.argv
    assert argv[:7] == ["/bin/uv", "tool", "run", "--from", KASKADE, "--with", TEXTUAL_SERVE]
    assert argv[7:9] == ["python", str(SERVE_SCRIPT)]
    assert SERVE_SCRIPT.is_file()
    kaskade = argv[argv.index("--") + 1 :]
    assert kaskade == ["admin", "-b", "broker:9092", "--refresh-interval", "5"]
    assert argv[argv.index("--port") + 1] == "9000"
    assert plan.url == "http://127.0.0.1:9000/"


def test_topic_view_decodes_the_prefixed_topic_with_the_registry() -> None:
    plan = plan_ui(
        _settings("t1."),
        topic="contacts.raw",
        host="0.0.0.0",
        public_url="https://ops.example.com/kafka/",
        uv="/bin/uv",
    )
    kaskade = plan.argv[plan.argv.index("--") + 1 :]
    assert kaskade[:5] == ["consumer", "-b", "broker:9092", "-t", "t1.contacts.raw"]
    pairs = list(itertools.pairwise(kaskade))
    assert ("-v", "registry") in pairs
    assert ("--registry", "url=http://registry:8080/apis/ccompat/v7") in pairs
    assert ("--kafka", "isolation.level=read_committed") in pairs
    assert plan.argv[plan.argv.index("--host") + 1] == "0.0.0.0"
    assert plan.url == "https://ops.example.com/kafka/"


def test_without_uv_the_ui_says_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("UV", raising=False)
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ConfigError, match="needs uv"):
        plan_ui(_settings())


def test_each_registry_request_of_a_tab_has_a_deadline() -> None:
    plan = plan_ui(_settings(), topic="contacts.raw", uv="/bin/uv")
    kaskade = plan.argv[plan.argv.index("--") + 1 :]
    assert ("--registry", f"timeout={REGISTRY_TIMEOUT_S:g}") in list(itertools.pairwise(kaskade))


def test_the_launcher_gives_the_registry_client_numbers() -> None:
    """kaskade passes every ``--registry`` value as text; the client needs numbers."""
    conf = {"url": "http://r", "timeout": "10", "max.retries": "5", "retries.wait.ms": "250.0"}
    assert numeric_conf(conf) == {
        "url": "http://r",
        "timeout": 10.0,
        "max.retries": 5,
        "retries.wait.ms": 250,
    }
    assert numeric_conf({"url": "http://r"}) == {"url": "http://r"}
    with pytest.raises(ValueError, match="could not convert"):
        numeric_conf({"timeout": "soon"})
    made: list[dict[str, object]] = []
    with_numeric_conf(made.append)({"timeout": "2.5"})
    assert made == [{"timeout": 2.5}]


def test_a_process_is_alive_until_it_ends_even_before_it_is_reaped() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        assert alive(proc.pid)
        proc.kill()
        for _ in range(100):  # dead, not reaped: a zombie
            if not alive(proc.pid):
                break
            threading.Event().wait(0.05)
        assert not alive(proc.pid)
    finally:
        proc.kill()
        proc.wait()
    assert not alive(proc.pid)


def test_the_watch_calls_back_once_the_server_is_gone() -> None:
    server = subprocess.Popen(["sleep", "30"])
    gone = threading.Event()
    try:
        watch_server(server.pid, gone.set, every_s=0.05)
        assert not gone.wait(0.5)  # the server runs: nothing happens
        server.kill()
        server.wait()
        assert gone.wait(5)
    finally:
        server.kill()
        server.wait()
