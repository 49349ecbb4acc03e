"""The pipeline's processes can be moved to other ports and given more environment (a second
pipeline beside the first, as the fault suite runs)."""

from __future__ import annotations

from pathlib import Path

import pytest

from leadstream.infra import InfraSettings
from leadstream.infra.apps import APPS, app_servers


def test_defaults_then_ports_and_environment_moved(tmp_path: Path) -> None:
    cfg = InfraSettings(state_dir=tmp_path, kafka_port=29092).resolved()
    default = {s.name: s.process for s in app_servers(cfg)}
    assert default["ingest"].ports == [8000]
    assert default["bison-sync"].env["LEADSTREAM_BISON_DRY_RUN"] == "true"
    assert default["filter"].env["LEADSTREAM_KAFKA_BOOTSTRAP"] == "127.0.0.1:29092"

    moved = {
        s.name: s.process
        for s in app_servers(
            cfg,
            dns_port=25354,
            ports={"ingest": 28000, "jobs": 26067},
            env={"LEADSTREAM_LOG_LEVEL": "WARNING"},
            app_env={"bison-sync": {"LEADSTREAM_BISON_DRY_RUN": "false"}},
        )
    }
    assert moved["ingest"].ports == [28000]
    assert moved["ingest"].env["LEADSTREAM_HTTP_PORT"] == "28000"
    assert moved["jobs"].env["LEADSTREAM_WEB_PORT"] == "26067"
    assert moved["filter"].ports == [next(a.port for a in APPS if a.name == "filter")]
    assert moved["dns"].ports == [25354]
    assert moved["verify"].env["LEADSTREAM_DNS_NAMESERVERS"] == '["127.0.0.1:25354"]'
    assert all(
        p.env.get("LEADSTREAM_LOG_LEVEL") == "WARNING" for n, p in moved.items() if n != "dns"
    )
    assert moved["bison-sync"].env["LEADSTREAM_BISON_DRY_RUN"] == "false"


def test_unknown_app_is_refused(tmp_path: Path) -> None:
    cfg = InfraSettings(state_dir=tmp_path).resolved()
    with pytest.raises(ValueError, match="ingset"):
        app_servers(cfg, ports={"ingset": 1})
