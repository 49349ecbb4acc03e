"""The contacts and suppressions tables on a real PostgreSQL (a fresh database per test,
migrated to the ``contacts`` branch), and the ``leadstream suppress`` CLI."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
import sqlalchemy as sa

from leadstream.db import make_engine
from leadstream.db.contacts import ContactStore, DatabaseUnavailableError
from leadstream.db.suppressions import Suppression, SuppressionStore
from leadstream.events import contact_id
from leadstream.runtime import Record, RetryLater
from leadstream.settings import Settings
from leadstream_filter.app import build_stage
from leadstream_filter.config import FilterSettings
from leadstream_filter.ports import NewContact
from tests.support.databases import scratch_database

pytestmark = pytest.mark.integration


@pytest.fixture
def db(settings: Settings) -> Iterator[Settings]:
    """Settings of a fresh database with the contacts tables."""
    with scratch_database(settings, "contacts@head") as fresh:
        yield fresh


@pytest.fixture
def engine(db: Settings) -> Iterator[sa.Engine]:
    engine = make_engine(db, pool_size=2)
    yield engine
    engine.dispose()


def contact(email: str, event_id: str | None = None) -> NewContact:
    return NewContact(
        contact_id=contact_id(email),
        email_normalized=email,
        domain=email.rpartition("@")[2],
        email=email.capitalize(),
        first_name="Jane",
        last_name=None,
        phone_e164="+442079460958",
        company="Acme",
        website_domain="acme.example",
        role_account=False,
        free_provider=True,
        source="api",
        job_id="job-1",
        event_id=event_id or str(uuid.uuid4()),
    )


def test_claim_owner_replay_and_duplicates(engine: sa.Engine) -> None:
    store = ContactStore(engine)
    a, b = contact("a@acme.example", "ev-a"), contact("b@acme.example", "ev-b")
    assert store.claim([a, b]) == {"a@acme.example": "ev-a", "b@acme.example": "ev-b"}
    assert store.claim([a]) == {"a@acme.example": "ev-a"}  # the replay sees itself
    later = contact("a@acme.example", "ev-later")
    assert store.claim([later, contact("c@acme.example", "ev-c")]) == {
        "a@acme.example": "ev-a",
        "c@acme.example": "ev-c",
    }
    row = store.get("a@acme.example")
    assert row is not None
    assert (row["created_event_id"], row["email"], row["phone_e164"]) == (
        "ev-a",
        "A@acme.example",
        "+442079460958",
    )
    assert str(row["contact_id"]) == contact_id("a@acme.example")
    assert store.claim([]) == {}


def test_claim_race_with_a_concurrent_instance(engine: sa.Engine) -> None:
    """Another instance inserts the same email and commits after our statement started: our
    insert does nothing, our snapshot cannot see its row, and the follow-up read finds it."""
    store = ContactStore(engine)
    other = engine.connect()
    try:
        tx = other.begin()
        other.execute(
            sa.text(
                "INSERT INTO contacts (contact_id, email_normalized, domain, email, source, "
                "created_event_id) VALUES (:id, 'r@acme.example', 'acme.example', "
                "'r@acme.example', 'api', 'ev-other')"
            ),
            {"id": contact_id("r@acme.example")},
        )
        result: dict[str, str] = {}
        worker = threading.Thread(
            target=lambda: result.update(store.claim([contact("r@acme.example", "ev-mine")]))
        )
        worker.start()
        time.sleep(0.5)
        assert worker.is_alive(), "the claim should wait for the other transaction"
        tx.commit()
        worker.join(10)
    finally:
        other.close()
    assert result == {"r@acme.example": "ev-other"}


def test_verdicts_are_upserted_idempotently(engine: sa.Engine) -> None:
    store = ContactStore(engine)
    store.claim([contact("a@acme.example", "ev-a")])

    @dataclass(frozen=True)
    class Row:
        contact_id: str
        email_normalized: str
        domain: str
        email: str
        role_account: bool
        free_provider: bool
        raw_event_id: str
        job_id: str | None
        verdict: str
        reasons: tuple[str, ...]
        mx_host: str | None
        suggestion: str | None
        verifier: str
        disposable_list_version: str | None
        event_id: str

    def row(email: str, verdict: str, reasons: tuple[str, ...]) -> Row:
        return Row(
            contact_id(email), email, "acme.example", email, False, False, "ev-x", None,
            verdict, reasons, "mx.acme.example", None, "builtin", "0.0.1", "v-1",
        )  # fmt: skip

    first = row("a@acme.example", "risky", ("mx_found", "role_account"))
    store.record_verifications([first, row("new@acme.example", "deliverable", ("mx_found",))])
    store.record_verifications([first])  # again: same state
    got = store.get("a@acme.example")
    assert got is not None
    assert (got["verdict"], got["verdict_reasons"], got["created_event_id"]) == (
        "risky",
        ["mx_found", "role_account"],
        "ev-a",  # the filter's row keeps its creator
    )
    created = store.get("new@acme.example")
    assert created is not None
    assert (created["verdict"], created["created_event_id"]) == ("deliverable", "ev-x")
    # one email twice in one call: the last one wins, no "cannot affect row a second time"
    store.record_verifications([first, replace(first, verdict="deliverable", reasons=())])
    again = store.get("a@acme.example")
    assert again is not None
    assert (again["verdict"], again["verdict_reasons"]) == ("deliverable", [])


def test_unreachable_database() -> None:
    dead = make_engine(Settings(database_url="postgresql+psycopg://x@127.0.0.1:1/none"))
    try:
        with pytest.raises(DatabaseUnavailableError):
            ContactStore(dead).claim([contact("a@acme.example")])
        with pytest.raises(DatabaseUnavailableError):
            SuppressionStore(dead).changes_since(0)
        stage = build_stage(
            FilterSettings(database_url="postgresql+psycopg://x@127.0.0.1:1/none"), dead
        )
        rec = Record(
            "contacts.raw",
            0,
            0,
            b"a@acme.example",
            {"event_id": "e1", "source": "api", "email": "a@acme.example"},
            {},
            0,
        )
        with pytest.raises(RetryLater):
            stage.handler([rec])
    finally:
        dead.dispose()


def test_suppression_versions_and_soft_removal(engine: sa.Engine) -> None:
    store = SuppressionStore(engine)
    changes, v0 = store.changes_since(0)
    assert (changes, v0) == ([], 0)
    assert (
        store.add([Suppression("email", "a@acme.example"), Suppression("domain", "spam.example")])
        == 2
    )
    assert store.add([Suppression("email", "a@acme.example")]) == 0  # already active
    changes, v1 = store.changes_since(v0)
    assert {(c.kind, c.value, c.active) for c in changes} == {
        ("email", "a@acme.example", True),
        ("domain", "spam.example", True),
    }
    assert store.remove("email", ["a@acme.example", "nobody@acme.example"]) == 1
    changes, v2 = store.changes_since(v1)
    assert [(c.value, c.active) for c in changes] == [("a@acme.example", False)]
    assert store.changes_since(v2) == ([], v2)
    assert store.add([Suppression("email", "a@acme.example", "asked again")]) == 1
    changes, _ = store.changes_since(v2)
    assert [(c.value, c.active) for c in changes] == [("a@acme.example", True)]
    assert [e.value for e in store.entries("email")] == ["a@acme.example"]
    assert len(store.entries(include_removed=True)) == 2


def test_cli(db: Settings, engine: sa.Engine, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "LEADSTREAM_DATABASE_URL": db.database_url,
        "LEADSTREAM_DATABASE_PASSWORD": db.database_password.get_secret_value(),
    }
    cli = [sys.executable, "-m", "leadstream.cli", "suppress"]

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([*cli, *args], env=env, capture_output=True, text=True)

    added = run("add", "Jane@Bücher.DE", "@Spam.Example", "--reason", "asked")
    assert added.returncode == 0, added.stderr
    assert "added 2" in added.stdout
    listing = SuppressionStore(engine).entries()
    assert {(e.kind, e.value, e.reason) for e in listing} == {
        ("email", "jane@xn--bcher-kva.de", "asked"),
        ("domain", "spam.example", "asked"),
    }
    csv_file = tmp_path / "list.csv"
    csv_file.write_text("email,reason\nbob@acme.example,bounced\n\n# comment\nx.example\n")
    imported = run("import", str(csv_file))
    assert imported.returncode == 0, imported.stderr
    assert "imported 2" in imported.stdout
    shown = run("list", "--kind", "email")
    assert "bob@acme.example" in shown.stdout
    assert "bounced" in shown.stdout
    removed = run("remove", "bob@acme.example", "spam.example")
    assert removed.returncode == 0
    assert "removed 2" in removed.stdout
    assert {e.value for e in SuppressionStore(engine).entries()} == {
        "jane@xn--bcher-kva.de",
        "x.example",
    }
    bad = run("add", "not an email@")
    assert bad.returncode == 2
    env["LEADSTREAM_DATABASE_URL"] = "postgresql+psycopg://x@127.0.0.1:1/none"
    down = run("list")
    assert down.returncode == 1
    assert "database unavailable" in down.stderr
