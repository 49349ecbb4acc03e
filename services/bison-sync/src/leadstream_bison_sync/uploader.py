"""Upload one batch to Email Bison, exactly once per lead, resumable at any point.

1. **Upsert** the leads without a lead id (``create-or-update/multiple``, ``patch``), in chunks
   of ≤ 500; record every returned lead id at once. Repeating an upsert is harmless (Email
   Bison keys it by email), so a crash before the record only costs a repeated call — never
   a second lead. Per-lead 422s (``leads.3.email``) mark those contacts failed with the
   message and the rest of the chunk is sent again without them; they are not retried.
2. **Attach** the leads to the campaign in chunks. Attaching is not safe to repeat, so each
   chunk is marked ``pending`` *before* the call and ``attached`` after it. A ``pending`` lead
   found on a later run (a crash, a timeout, a 5xx after sending) is looked up at Email Bison
   (``GET /api/leads?search=<email>`` → ``lead_campaign_data``) and only sent again if it is
   not in the campaign. Refused leads (another sequence, bounced — a 422 naming
   ``lead_ids.N``) are marked ``skipped`` with the message.

Without credentials (dry run) it records the requests it would have sent instead.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from leadstream.bison import (
    BisonError,
    BisonOutcomeUnknownError,
    BisonUnavailableError,
    BisonValidationError,
    lead_payload,
    variable_names,
)
from leadstream.db.bison_leads import UploadItem, UploadStore
from leadstream.errors import LeadStreamError
from leadstream_bison_sync.synced import synced_value

log = logging.getLogger(__name__)
T = TypeVar("T")
PLACEHOLDER = "<lead id of {email}>"


class BisonApi(Protocol):
    """What an upload needs from Email Bison (``leadstream.bison.BisonClient`` fits)."""

    def custom_variables(self) -> list[str]: ...

    def create_custom_variable(self, name: str) -> None: ...

    def upsert_leads(
        self, leads: Sequence[Mapping[str, Any]], *, behavior: str = "patch"
    ) -> list[dict[str, Any]]: ...

    def attach_leads(
        self, campaign_id: str, lead_ids: Sequence[str], *, allow_parallel_sending: bool = False
    ) -> dict[str, Any]: ...

    def find_leads(self, email_address: str) -> list[dict[str, Any]]: ...


class UploadBusyError(LeadStreamError):
    """Another instance is uploading this batch right now."""


@dataclass(frozen=True, slots=True)
class Uploaded:
    """The BatchSynced value to emit, or None: this record is a duplicate of a batch that
    another input record already uploaded and emitted."""

    value: dict[str, Any] | None


def chunks(items: Sequence[T], size: int) -> Iterator[list[T]]:
    for start in range(0, len(items), size):
        yield list(items[start : start + size])


class Uploader:
    def __init__(
        self,
        store: UploadStore,
        api: BisonApi | None,
        *,
        upsert_chunk: int = 500,
        attach_chunk: int = 500,
        allow_parallel_sending: bool = False,
        max_unknown_rounds: int = 3,
    ) -> None:
        self.store = store
        self.api = api
        self.upsert_chunk = upsert_chunk
        self.attach_chunk = attach_chunk
        self.allow_parallel_sending = allow_parallel_sending
        self.max_unknown_rounds = max_unknown_rounds
        self._variables: set[str] | None = None
        self._variables_lock = threading.Lock()  # uploads may run in several threads

    @property
    def dry_run(self) -> bool:
        return self.api is None

    def upload(self, ready: Mapping[str, Any], source: tuple[str, int, int]) -> Uploaded:
        batch_id = str(ready["batch_id"])
        campaign = str(ready["campaign_id"])
        contacts = list(ready["contacts"])
        with self.store.exclusive(batch_id) as mine:
            if not mine:
                raise UploadBusyError(f"batch {batch_id} is being uploaded by another instance")
            up = self.store.begin(
                batch_id=batch_id,
                campaign_id=campaign,
                dry_run=self.dry_run,
                source=source,
                contacts=contacts,
            )
            if up.status == "done":
                return Uploaded(dict(up.result or {}) if up.same_source else None)
            payloads = {c["contact_id"]: lead_payload(c) for c in contacts}
            if self.api is None:
                self._dry_run(batch_id, campaign, up.items, payloads)
            else:
                self._upsert(self.api, batch_id, campaign, payloads)
                self._attach(self.api, batch_id, campaign)
            items = self.store.items(batch_id)
            value = synced_value(ready, items, dry_run=up.dry_run, attempt=up.attempts)
            self.store.finish(batch_id, value)
            failed = sum(1 for i in items if i.error)
            if failed:
                log.warning("batch %s: %d of %d leads not synced", batch_id, failed, len(items))
            return Uploaded(value)

    # ------------------------------------------------------------------ dry run

    def _dry_run(
        self,
        batch_id: str,
        campaign: str,
        items: Sequence[UploadItem],
        payloads: Mapping[str, dict[str, Any]],
    ) -> None:
        requests: list[tuple[str, str, Any]] = []
        for name in sorted(variable_names(payloads.values())):
            requests.append(("POST", "/api/custom-variables", {"name": name}))
        for chunk in chunks(items, self.upsert_chunk):
            body: dict[str, Any] = {
                "existing_lead_behavior": "patch",
                "leads": [payloads[i.contact_id] for i in chunk],
            }
            requests.append(("POST", "/api/leads/create-or-update/multiple", body))
        for chunk in chunks(items, self.attach_chunk):
            body = {
                "lead_ids": [PLACEHOLDER.format(email=i.email) for i in chunk],
                "allow_parallel_sending": self.allow_parallel_sending,
            }
            requests.append(("POST", f"/api/campaigns/{campaign}/leads/attach-leads", body))
        self.store.record_dry_run(batch_id, requests)
        self.store.mark(batch_id, [i.contact_id for i in items], upsert="dry_run", attach="dry_run")

    # ------------------------------------------------------------------ upsert

    def _ensure_variables(self, api: BisonApi, names: set[str]) -> None:
        if not names:
            return
        with self._variables_lock:
            if self._variables is None or not names <= self._variables:
                self._variables = set(api.custom_variables())
            for name in sorted(names - self._variables):
                api.create_custom_variable(name)
                self._variables.add(name)

    def _upsert(
        self, api: BisonApi, batch_id: str, campaign: str, payloads: Mapping[str, dict[str, Any]]
    ) -> None:
        todo = [i for i in self.store.items(batch_id) if i.upsert_status is None]
        if not todo:
            return
        self._ensure_variables(api, variable_names(payloads[i.contact_id] for i in todo))
        for chunk in chunks(todo, self.upsert_chunk):
            pending = chunk
            while pending:
                try:
                    leads = api.upsert_leads([payloads[i.contact_id] for i in pending])
                except BisonValidationError as exc:
                    bad = {k: v for k, v in exc.by_index("leads").items() if k < len(pending)}
                    if not bad:  # the call as a whole was refused: nothing to resend
                        self.store.mark(
                            batch_id,
                            [i.contact_id for i in pending],
                            upsert="failed",
                            error=str(exc),
                        )
                        break
                    self.store.mark_each(
                        batch_id,
                        {pending[k].contact_id: msg for k, msg in bad.items()},
                        column="upsert_status",
                        status="failed",
                    )
                    pending = [it for k, it in enumerate(pending) if k not in bad]
                    continue
                self._record(batch_id, campaign, pending, leads)
                break

    def _record(
        self,
        batch_id: str,
        campaign: str,
        sent: Sequence[UploadItem],
        leads: Sequence[Mapping[str, Any]],
    ) -> None:
        ids = {
            str(lead.get("email", "")).lower(): str(lead["id"]) for lead in leads if "id" in lead
        }
        found: list[tuple[str, str, str, str]] = []
        missing: list[str] = []
        for it in sent:
            lead_id = ids.get(it.email.lower())
            if lead_id is None:
                missing.append(it.contact_id)
            else:
                status = "created" if it.lead_id is None else "updated"
                found.append((it.contact_id, it.email, lead_id, status))
        self.store.record_leads(batch_id, campaign, found)
        if missing:  # e.g. personal domains the instance skips
            self.store.mark(
                batch_id,
                missing,
                upsert="failed",
                error="Email Bison returned no lead for this email",
            )

    # ------------------------------------------------------------------ attach

    def _attach(self, api: BisonApi, batch_id: str, campaign: str) -> None:
        items = self.store.items(batch_id)
        unknown = [i for i in items if i.attach_status == "pending"]
        if unknown:
            self._resolve(api, batch_id, campaign, unknown)
            items = self.store.items(batch_id)
        todo = [
            i
            for i in items
            if i.lead_id and i.upsert_status in ("created", "updated") and i.attach_status is None
        ]
        for chunk in chunks(todo, self.attach_chunk):
            pending = chunk
            rounds = 0
            while pending:
                ids = [i.contact_id for i in pending]
                self.store.mark(batch_id, ids, attach="pending")
                try:
                    api.attach_leads(
                        campaign,
                        [str(i.lead_id) for i in pending],
                        allow_parallel_sending=self.allow_parallel_sending,
                    )
                except BisonValidationError as exc:
                    bad = {k: v for k, v in exc.by_index("lead_ids").items() if k < len(pending)}
                    if not bad:
                        self.store.mark(batch_id, ids, attach="skipped", error=str(exc))
                        break
                    self.store.mark_each(
                        batch_id,
                        {pending[k].contact_id: msg for k, msg in bad.items()},
                        column="attach_status",
                        status="skipped",
                    )
                    pending = [it for k, it in enumerate(pending) if k not in bad]
                    self.store.mark(batch_id, [i.contact_id for i in pending], clear_attach=True)
                    continue
                except BisonOutcomeUnknownError as exc:
                    rounds += 1
                    log.warning("batch %s: attach outcome unknown (%s); checking", batch_id, exc)
                    pending = self._resolve(api, batch_id, campaign, pending)
                    if pending and rounds >= self.max_unknown_rounds:
                        raise BisonUnavailableError(
                            f"attach to campaign {campaign}: no answer {rounds} times"
                        ) from exc
                    continue
                except BisonError:
                    # 429s or connection failures that outlasted the retries, auth errors:
                    # the call was not applied, so the leads are not pending any more.
                    self.store.mark(batch_id, ids, clear_attach=True)
                    raise
                self.store.mark(batch_id, ids, attach="attached")
                break

    def _resolve(
        self, api: BisonApi, batch_id: str, campaign: str, items: Sequence[UploadItem]
    ) -> list[UploadItem]:
        """Find out whether 'pending' leads reached the campaign; mark them; return the rest
        (cleared, to be sent again)."""
        attached: list[str] = []
        missing: list[UploadItem] = []
        for it in items:
            leads = api.find_leads(it.email)
            lead = next(
                (x for x in leads if str(x.get("id")) == str(it.lead_id)),
                next((x for x in leads if str(x.get("email", "")).lower() == it.email), None),
            )
            data = (lead or {}).get("lead_campaign_data") or []
            if any(str(d.get("campaign_id")) == campaign for d in data):
                attached.append(it.contact_id)
            else:
                missing.append(it)
        self.store.mark(batch_id, attached, attach="attached")
        self.store.mark(batch_id, [i.contact_id for i in missing], clear_attach=True)
        return missing
