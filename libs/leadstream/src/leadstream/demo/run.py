"""The sample run: prepare the database and topics, start the services, upload the sample list
through the public API, and follow its job to the end."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from pydantic import SecretStr

from leadstream.db import make_engine, upgrade
from leadstream.db.api_keys import ApiKeyStore
from leadstream.db.campaigns import CampaignStore, RuleMatch
from leadstream.events import register_schemas
from leadstream.infra import InfraSettings, Stack
from leadstream.infra.apps import app_servers
from leadstream.settings import Settings
from leadstream.topics import TopicSettings, apply

SAMPLE_CAMPAIGN = "sample-campaign"
Report = Callable[[str], None]


@dataclass(frozen=True)
class Prepared:
    token: str
    api: str


def local_settings(cfg: InfraSettings) -> Settings:
    return Settings(
        kafka_bootstrap=f"{cfg.host}:{cfg.kafka_port}",
        schema_registry_url=f"http://{cfg.host}:{cfg.registry_port}/apis/ccompat/v7",
        database_url=f"postgresql+psycopg://{cfg.postgres_user}@{cfg.host}:{cfg.postgres_port}/"
        f"{cfg.postgres_database}",
        database_password=SecretStr(cfg.postgres_password),
        mongo_url=f"mongodb://{cfg.host}:{cfg.mongo_port}/",
        redis_url=f"redis://{cfg.host}:{cfg.redis_port}/0",
    )


def prepare(settings: Settings, report: Report) -> str:
    """Migrate, apply the topic catalog, register schemas, route to a sample campaign; return a
    fresh API key for the upload."""
    upgrade(settings)
    report("database migrated")
    topics = apply(TopicSettings.of(settings))
    if not topics.ok:
        raise RuntimeError(f"topic drift that cannot be fixed: {topics.unfixable}")
    report("topics applied")
    failed = [r for r in register_schemas(settings) if not r.ok]
    if failed:
        raise RuntimeError(f"schema registration failed: {failed}")
    report("schemas registered (BACKWARD)")
    engine = make_engine(settings, pool_size=1)
    try:
        store = CampaignStore(engine)
        if not any(r.is_default for r in store.rules(enabled_only=True)):
            store.add_rule(SAMPLE_CAMPAIGN, RuleMatch.of(), is_default=True, name="sample default")
            report(f"default routing rule → campaign {SAMPLE_CAMPAIGN}")
        key = ApiKeyStore(engine).create("sample run", ["ingest"])
    finally:
        engine.dispose()
    return key.token


def start_services(report: Report) -> None:
    Stack(servers=app_servers).up(report=report)


def upload(api: str, token: str, csv_path: Path) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "text/csv"}
    with httpx.Client(base_url=api, timeout=600) as client, csv_path.open("rb") as fh:
        resp = client.post(
            "/v1/uploads",
            params={"name": "sample run", "file_name": csv_path.name},
            headers=headers,
            content=fh,
        )
    if resp.status_code != 202:
        raise RuntimeError(f"upload refused: {resp.status_code} {resp.text[:500]}")
    body: dict[str, Any] = resp.json()
    return body


def follow(
    api: str,
    token: str,
    job_id: str,
    on_state: Callable[[dict[str, Any]], None],
    timeout_s: float = 900,
) -> dict[str, Any]:
    """Poll the job until it is completed or failed (or ``timeout_s`` passes), then until every
    batchable contact is batched and synced (batching and syncing go on after the filter and
    verify outcomes complete the job)."""
    deadline = time.monotonic() + timeout_s
    state: dict[str, Any] = {}
    with httpx.Client(
        base_url=api, timeout=30, headers={"Authorization": f"Bearer {token}"}
    ) as client:
        while time.monotonic() < deadline:
            resp = client.get(f"/v1/jobs/{job_id}")
            if resp.status_code == 200:
                state = resp.json()
                on_state(state)
                if state.get("status") == "failed" or (
                    state.get("status") == "completed" and _settled(state)
                ):
                    return state
            time.sleep(0.5)
    raise TimeoutError(f"job {job_id} not finished after {timeout_s:.0f}s: {state}")


def _settled(state: dict[str, Any], batched_verdicts: tuple[str, ...] = ("deliverable",)) -> bool:
    """Every contact the batch policy takes is batched, and every batched one synced."""
    verdicts = state.get("verdicts") or {}
    batchable = sum(int(verdicts.get(v, 0)) for v in batched_verdicts)
    batched, synced = int(state.get("batched", 0)), int(state.get("synced", 0))
    return batched >= batchable and synced >= batched
