"""The filter stage as a Quix Streams application: the peer of ``bench/filter_verify.py``.

Runs in its own environment (``bench/peers/setup.sh``; Quix pins confluent-kafka < 2.13) and
imports only the filter's pure modules (normalization, field cleaning, policy) from the repo,
so the decisions are the filter's. What differs is how Quix runs them, written the way a Quix
app is written: one message at a time through a StreamingDataFrame, Confluent's stock Avro
(de)serializers with the schema registry, exactly-once checkpoints, and the de-duplication
claim as one PostgreSQL statement per message (Quix has no batch hook for it). Suppressions
are the same snapshot, polled every 2 s.

    python bench/peers/quix_filter.py CONFIG_JSON   → prints {"records", "seconds", "rate"}
"""

from __future__ import annotations

import json
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT / "libs/leadstream/src"), str(ROOT / "services/filter/src")]

import psycopg  # noqa: E402
from quixstreams import Application  # noqa: E402
from quixstreams.models.serializers.avro import AvroDeserializer, AvroSerializer  # noqa: E402
from quixstreams.models.serializers.schema_registry import (  # noqa: E402
    SchemaRegistryClientConfig,
    SchemaRegistrySerializationConfig,
)

from leadstream_filter.address import AddressError, normalize_email  # noqa: E402
from leadstream_filter.fields import (  # noqa: E402
    clean_name,
    clean_text,
    phone_e164,
    region_of,
    website_domain,
)
from leadstream_filter.policy import Policy, Rejection  # noqa: E402

AS_SUBMITTED = (
    "email", "first_name", "last_name", "phone", "company", "website", "title", "city",
    "state", "postal_code", "country", "tags", "custom_fields", "source_details", "consent",
)  # fmt: skip
CLAIM = """
INSERT INTO quix_contacts (contact_id, email_normalized, domain, email, first_name, last_name,
    phone_e164, company, website_domain, role_account, free_provider, source, job_id,
    created_event_id)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON CONFLICT (email_normalized) DO NOTHING RETURNING created_event_id
"""


def uuid5(name: str) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL, name))


class Suppressions:
    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn, self.version, self.due = conn, 0, 0.0
        self.emails: set[str] = set()
        self.domains: set[str] = set()

    def match(self, email: str, domain: str) -> Rejection | None:
        if time.monotonic() >= self.due:
            rows = self.conn.execute(
                "SELECT kind, value, removed_at IS NULL, version FROM suppressions "
                "WHERE version > %s ORDER BY version",
                (self.version,),
            ).fetchall()
            for kind, value, active, version in rows:
                target = self.emails if kind == "email" else self.domains
                (target.add if active else target.discard)(value)
                self.version = version
            self.due = time.monotonic() + 2.0
        if email in self.emails:
            return Rejection("suppressed_email", "the email is on the suppression list")
        labels = domain.split(".")
        for i in range(len(labels) - 1):
            if ".".join(labels[i:]) in self.domains:
                return Rejection("suppressed_domain", "domain on the suppression list")
        return None


def main() -> None:
    cfg = json.loads(sys.argv[1])
    conn = psycopg.connect(cfg["dsn"], autocommit=True)
    conn.execute("CREATE TABLE IF NOT EXISTS quix_contacts (LIKE contacts INCLUDING ALL)")
    policy = Policy.of()
    suppressions = Suppressions(conn)
    registry = SchemaRegistryClientConfig(url=cfg["registry"])
    no_register = SchemaRegistrySerializationConfig(auto_register_schemas=False)
    schemas = {n: json.loads((ROOT / "schemas" / f"{n}.avsc").read_text()) for n in
               ("ContactFiltered", "ContactRejected")}  # fmt: skip
    app = Application(
        broker_address=cfg["bootstrap"],
        consumer_group=cfg["group"],
        auto_offset_reset="earliest",
        processing_guarantee="exactly-once",
        use_changelog_topics=False,
        auto_create_topics=False,
    )
    source = app.topic(
        cfg["input"],
        key_deserializer="bytes",
        value_deserializer=AvroDeserializer(schema_registry_client_config=registry),
    )
    filtered = app.topic(
        cfg["filtered"],
        key_serializer="str",
        value_serializer=AvroSerializer(
            schemas["ContactFiltered"], schema_registry_client_config=registry,
            schema_registry_serialization_config=no_register,
        ),
    )  # fmt: skip
    rejected = app.topic(
        cfg["rejected"],
        key_serializer="str",
        value_serializer=AvroSerializer(
            schemas["ContactRejected"], schema_registry_client_config=registry,
            schema_registry_serialization_config=no_register,
        ),
    )  # fmt: skip
    clock: dict[str, float] = {}
    seen = [0]

    def reject(v: dict[str, Any], now: int, why: Rejection, key: str | None) -> dict[str, Any]:
        normalized = key if why.reason not in ("missing_email", "invalid_email") else None
        out = {
            "event_id": uuid5(f"leadstream:filter:{v['event_id']}"), "job_id": v.get("job_id"),
            "source": "filter", "event_time": now, "raw_event_id": v["event_id"],
            "request_id": v.get("request_id"), "stage": "filter", "reason": why.reason,
            "detail": why.detail,
            "contact_id": uuid5(f"mailto:{normalized}") if normalized else None,
            "email_normalized": normalized,
        }  # fmt: skip
        out.update({n: v.get(n) for n in AS_SUBMITTED})
        out["tags"], out["custom_fields"] = out["tags"] or [], out["custom_fields"] or {}
        return {"to": "rejected", "key": key or "", "value": out}

    def decide(v: dict[str, Any]) -> dict[str, Any]:
        if not seen[0]:
            clock["first"] = time.monotonic()
        seen[0] += 1
        now = int(time.time() * 1000)
        try:
            a = normalize_email(v.get("email"))
        except AddressError as exc:
            key = (v.get("email") or "").strip().lower()
            return reject(v, now, Rejection(exc.reason, exc.detail), key)
        screening = policy.screen(a, suppressions.match(a.normalized, a.domain))
        if screening.rejection is not None:
            return reject(v, now, screening.rejection, a.normalized)
        cid = uuid5(f"mailto:{a.normalized}")
        out = {
            "event_id": uuid5(f"leadstream:filter:{v['event_id']}"), "job_id": v.get("job_id"),
            "source": "filter", "event_time": now, "raw_event_id": v["event_id"],
            "request_id": v.get("request_id"), "contact_id": cid,
            "email_normalized": a.normalized, "domain": a.domain,
            "phone_e164": phone_e164(v.get("phone"), region_of(v.get("country"), "GB")),
            "role_account": screening.role_account, "free_provider": screening.free_provider,
            "email": v["email"], "first_name": clean_name(v.get("first_name")),
            "last_name": clean_name(v.get("last_name")), "phone": v.get("phone"),
            "company": clean_text(v.get("company")), "website": website_domain(v.get("website")),
            "title": clean_text(v.get("title")), "city": clean_text(v.get("city")),
            "state": clean_text(v.get("state")), "postal_code": clean_text(v.get("postal_code")),
            "country": clean_text(v.get("country")), "tags": v.get("tags") or [],
            "custom_fields": v.get("custom_fields") or {},
            "source_details": v.get("source_details"), "consent": v.get("consent"),
        }  # fmt: skip
        row = conn.execute(
            CLAIM,
            (cid, a.normalized, a.domain, a.display, out["first_name"], out["last_name"],
             out["phone_e164"], out["company"], out["website"], out["role_account"],
             out["free_provider"], v["source"], v.get("job_id"), v["event_id"]),
        ).fetchone()  # fmt: skip
        if row is None:
            row = conn.execute(
                "SELECT created_event_id FROM quix_contacts WHERE email_normalized = %s",
                (a.normalized,),
            ).fetchone()
        if row is not None and row[0] != v["event_id"]:
            return reject(
                v, now, Rejection("duplicate", f"contact created by {row[0]}"), a.normalized
            )
        return {"to": "filtered", "key": a.normalized, "value": out}

    def done(d: dict[str, Any]) -> dict[str, Any]:
        if seen[0] == cfg["records"]:
            clock["last"] = time.monotonic()
        return d

    sdf = app.dataframe(source).apply(decide).apply(done)
    sdf[sdf["to"] == "filtered"].apply(lambda d: d["value"]).to_topic(
        filtered, key=lambda v: v["email_normalized"]
    )
    sdf[sdf["to"] == "rejected"].apply(lambda d: d["value"]).to_topic(
        rejected, key=lambda v: v["email_normalized"] or v["email"].strip().lower()
    )
    app.run(count=cfg["records"], timeout=cfg.get("timeout", 600))
    ended = time.monotonic()
    conn.close()
    seconds = clock.get("last", ended) - clock["first"]
    print(json.dumps({"records": seen[0], "seconds": seconds, "rate": seen[0] / seconds,
                      "seconds_incl_final_commit": ended - clock["first"]}))  # fmt: skip


if __name__ == "__main__":
    main()
