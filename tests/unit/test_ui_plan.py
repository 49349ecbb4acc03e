"""``leadstream ui``'s command line, built without starting anything."""

from __future__ import annotations

import itertools

import pytest

from leadstream.errors import ConfigError
from leadstream.settings import Settings
from leadstream.ui import KASKADE, TEXTUAL_SERVE, plan_ui
from leadstream.ui.kaskade import SERVE_SCRIPT


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
