"""The ``bison.events`` side of the handler: resolve contacts, store history and status,
add suppressions (the filter rejects those addresses from then on)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from leadstream.db.contact_events import ContactEventStore
from leadstream.db.suppressions import SuppressionStore
from leadstream.events import contact_id as contact_id_of
from leadstream_bison_sync.feedback import Feedback, interpret

log = logging.getLogger(__name__)


class FeedbackRecorder:
    def __init__(self, events: ContactEventStore, suppressions: SuppressionStore) -> None:
        self.events = events
        self.suppressions = suppressions

    def record(self, values: Sequence[Mapping[str, Any]]) -> list[Feedback]:
        if not values:
            return []
        lead_ids = [str(v["lead_id"]) for v in values if v.get("lead_id")]
        emails = [str(v["email"]).strip().lower() for v in values if v.get("email")]
        known = self.events.resolve(lead_ids, emails)
        done: list[Feedback] = []
        for v in values:
            email = str(v["email"]).strip().lower() if v.get("email") else None
            cid = known.get(f"lead:{v.get('lead_id')}") or known.get(f"email:{email}")
            if cid is None and email:
                cid = contact_id_of(email)
            done.append(interpret(v, cid))
        # Suppressions first and always (idempotent): a crash between the two writes must
        # not leave an address unsuppressed behind an event that is already recorded.
        suppress = [f.suppression for f in done if f.suppression is not None]
        if suppress:
            added = self.suppressions.add(suppress)
            if added:
                log.info("bison-sync: %d new suppressions from Email Bison events", added)
        self.events.record([f.event for f in done])
        return done
