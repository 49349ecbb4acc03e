"""The main job: every service as its own process, a generated list through the whole pipeline
(ingest → filter → verify → batch → bison-sync dry run, job state), then a clean stop."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from leadstream.infra import Stack
from leadstream.infra.apps import app_servers
from leadstream.infra.process import pid_alive, port_open

pytestmark = pytest.mark.integration


def test_sample_run_then_stop_leaves_no_process(stack: Stack) -> None:
    services = Stack(stack.settings, servers=app_servers)
    running = [s.name for s in services.status() if s.pid is not None]
    if running:
        pytest.fail(f"services already running ({', '.join(running)}): `make stop` first")
    env = {**os.environ, "COLUMNS": "200"}
    cli = [sys.executable, "-m", "leadstream.cli"]
    try:
        run = subprocess.run(
            [*cli, "sample", "run", "--rows", "1500", "--timeout", "240"],
            env=env,
            capture_output=True,
            text=True,
            timeout=420,
        )
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
        out = run.stdout
        assert "Job completed" in out

        def count(label: str) -> int:
            found = re.search(rf"{re.escape(label)}\s*│\s*([\d,]+)", out)
            assert found, f"no {label!r} in:\n{out[-2000:]}"
            return int(found.group(1).replace(",", ""))

        accepted = count("accepted")
        assert count("rows in the file") == 1500
        assert count("refused at ingest (row errors)") + accepted == 1500
        outcomes = sum(
            int(n.replace(",", ""))
            for n in re.findall(r"(?:rejected|verified): \w+\s*│\s*([\d,]+)", out)
        )
        assert outcomes == accepted  # every accepted contact got exactly one outcome
        assert count("verified: deliverable") > 0
        assert count("batched") == count("verified: deliverable")
        assert count("synced to Email Bison (dry run)") == count("batched")
        pids = [s.pid for s in services.status() if s.pid is not None]
        assert len(pids) == len(services.servers)
        # The URLs printed at the end answer, and the printed key sees the job on the status page.
        key_file = re.search(r"Status page\s+(\S+)/ui \(API key: (\S+)\)", out)
        assert key_file, out[-1500:]
        api, token = key_file.group(1), Path(key_file.group(2)).read_text().strip()
        assert httpx.get(f"{api}/ui", timeout=30).status_code == 200
        assert httpx.get(f"{api}/docs", timeout=30).status_code == 200
        status = httpx.get(f"{api}/v1/status", headers={"Authorization": f"Bearer {token}"})
        assert status.status_code == 200, status.text
        job_id = re.search(r"Job\s+\S+/v1/jobs/(\S+)", out)
        assert job_id
        assert job_id.group(1) in status.text
    finally:
        down = subprocess.run(
            [*cli, "services", "down"], env=env, capture_output=True, text=True, timeout=180
        )
    assert down.returncode == 0, down.stderr
    assert not any(pid_alive(p) for p in pids)
    assert not any(port_open(s.process.host, s.process.ports[0]) for s in services.servers)
