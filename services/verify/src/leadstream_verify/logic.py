"""The verify stage's decisions: a pure function of a batch of ContactFiltered records and the
ports it is handed. One ContactVerified per input on ``contacts.verified`` (key = normalized
email, header ``verdict=<verdict>``), after the verdict is stored on the contact row.

Per batch: the syntax of every address; one MX look-up per distinct domain (cached); the
disposable list, role/free flags (computed by the filter) and a typo suggestion; optionally
the external verifier for addresses the built-in checks did not already fail.

The batch's verdicts are stored by one statement, which runs on a worker thread while the
outputs are built (the database round trip overlaps that CPU work); the outputs are returned
only once it has answered, and its failure (``RetryLater``) is the batch's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from leadstream.events import derived_event_id
from leadstream.runtime import Output, Record
from leadstream_verify.domains import DisposableDomains, suggest_email
from leadstream_verify.ports import EmailVerifier, MailLookup, VerdictStore, VerificationRecord
from leadstream_verify.syntax import syntax_error
from leadstream_verify.verdict import Decision, Evidence, Verdict, builtin, decide

STAGE = "verify"
VERIFIED = "contacts.verified"
VERDICT_HEADER = "verdict"


class VerifyLogic:
    """The stage handler (``Stage("verify", ["contacts.filtered"], VerifyLogic(...))``)."""

    def __init__(
        self,
        mail: MailLookup,
        store: VerdictStore,
        disposable: DisposableDomains,
        verifier: EmailVerifier | None = None,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.mail = mail
        self.store = store
        self.disposable = disposable
        self.verifier = verifier
        self.clock = clock
        self._recorder: ThreadPoolExecutor | None = None

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        now_ms = int(self.clock() * 1000)
        evidence: list[Evidence] = []
        errors: list[str | None] = []
        domains: set[str] = set()
        for r in records:
            email = r.value["email_normalized"]
            error = syntax_error(email)
            errors.append(error)
            if error is None:
                domains.add(email.rpartition("@")[2])
        mail = self.mail.lookup_many(domains) if domains else {}
        for r, error in zip(records, errors, strict=True):
            v = r.value
            email = v["email_normalized"]
            domain = email.rpartition("@")[2]
            evidence.append(
                Evidence(
                    syntax_error=error,
                    mail=mail.get(domain) if error is None else None,
                    disposable=domain in self.disposable,
                    role_account=bool(v.get("role_account")),
                    free_provider=bool(v.get("free_provider")),
                    suggestion=suggest_email(email, domain) if error is None else None,
                )
            )
        if self.verifier is not None:
            evidence = self._consult(evidence, [r.value["email_normalized"] for r in records])
        decisions = [decide(e) for e in evidence]
        rows = [
            self._row(r.value, e, d) for r, e, d in zip(records, evidence, decisions, strict=True)
        ]
        if self._recorder is None:
            self._recorder = ThreadPoolExecutor(1, thread_name_prefix="verify-record")
        stored = self._recorder.submit(self.store.record, rows)
        try:
            outputs = [
                [self._output(r.value, row, now_ms)] for r, row in zip(records, rows, strict=True)
            ]
        finally:
            stored.result()  # stored before anything is returned (or raised)
        return outputs

    def _consult(self, evidence: list[Evidence], emails: list[str]) -> list[Evidence]:
        assert self.verifier is not None
        wanted = [
            email
            for email, e in zip(emails, evidence, strict=True)
            if builtin(e)[0] is not Verdict.UNDELIVERABLE
        ]
        outcomes = self.verifier.verify_many(wanted) if wanted else {}
        name = self.verifier.name
        return [
            Evidence(
                e.syntax_error,
                e.mail,
                e.disposable,
                e.role_account,
                e.free_provider,
                e.suggestion,
                outcomes.get(email),
                name,
            )
            for email, e in zip(emails, evidence, strict=True)
        ]

    def _row(self, v: dict[str, Any], e: Evidence, d: Decision) -> VerificationRecord:
        email = v["email_normalized"]
        return VerificationRecord(
            contact_id=v["contact_id"],
            email_normalized=email,
            domain=email.rpartition("@")[2],
            email=v["email"],
            role_account=bool(v.get("role_account")),
            free_provider=bool(v.get("free_provider")),
            raw_event_id=v["raw_event_id"],
            job_id=v.get("job_id"),
            verdict=d.verdict.value,
            reasons=d.reasons,
            mx_host=e.mail.mx_host if e.mail is not None else None,
            suggestion=e.suggestion,
            verifier=d.verifier,
            disposable_list_version=self.disposable.version,
            event_id=derived_event_id(STAGE, v["event_id"]),
        )

    def _output(self, v: dict[str, Any], row: VerificationRecord, now_ms: int) -> Output:
        get = v.get
        out: dict[str, Any] = {  # the carried fields, then the verdict's (the schema's order)
            "job_id": get("job_id"),
            "request_id": get("request_id"),
            "contact_id": get("contact_id"),
            "email_normalized": get("email_normalized"),
            "domain": get("domain"),
            "phone_e164": get("phone_e164"),
            "role_account": get("role_account"),
            "free_provider": get("free_provider"),
            "email": get("email"),
            "first_name": get("first_name"),
            "last_name": get("last_name"),
            "phone": get("phone"),
            "company": get("company"),
            "website": get("website"),
            "title": get("title"),
            "city": get("city"),
            "state": get("state"),
            "postal_code": get("postal_code"),
            "country": get("country"),
            "tags": get("tags") or [],
            "custom_fields": get("custom_fields") or {},
            "source_details": get("source_details"),
            "consent": get("consent"),
            "event_id": row.event_id,
            "source": STAGE,
            "event_time": now_ms,
            "raw_event_id": v["raw_event_id"],
            "filtered_event_id": v["event_id"],
            "verdict": row.verdict,
            "reasons": list(row.reasons),
            "mx_host": row.mx_host,
            "disposable_list_version": row.disposable_list_version,
            "suggestion": row.suggestion,
            "verifier": row.verifier,
        }
        return Output(
            VERIFIED, out, key=row.email_normalized, headers={VERDICT_HEADER: row.verdict}
        )


__all__ = ["STAGE", "VERDICT_HEADER", "VERIFIED", "VerifyLogic"]
