"""The batch stage's handler: ContactVerified records in, BatchReady outputs out.

For each handler batch, in one database unit of work:

1. drop verdicts the policy does not batch (``LEADSTREAM_BATCH_VERDICTS``);
2. contacts already placed (a member of a batch or held) are not placed again — but if the
   record (the same topic, partition and offset) is the one whose handling closed a batch,
   that batch is emitted again: the first emission's Kafka transaction may have been aborted
   (a crash between the database commit and the Kafka commit), and handling that record again
   is how it gets out. The same event at another offset (an upstream duplicate) emits nothing;
3. route the new contacts (rules), place them (daily caps, open batches, size closes);
4. every batch closed here is emitted as the closing record's output, in the same Kafka
   transaction that commits the input offsets.

Age closes, next-day releases of capped contacts and operator re-routes happen on the
service's timer (:mod:`leadstream_batch.timer`), not here.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Sequence
from datetime import UTC, datetime

from leadstream.db.batches import BatchStore, BatchUnit, ClosedBatch, Hold
from leadstream.db.contacts import DatabaseUnavailableError
from leadstream.runtime import Output, Record, RetryLater
from leadstream_batch.candidate import Candidate, from_verified
from leadstream_batch.placement import Policy, place
from leadstream_batch.ready import batch_ready_output
from leadstream_batch.routing import RuleLike, route

log = logging.getLogger(__name__)


def utc_now() -> datetime:
    return datetime.now(UTC)


class BatchHandler:
    """Callable as a stage handler."""

    def __init__(
        self,
        store: BatchStore,
        *,
        verdicts: frozenset[str],
        rules: Callable[[], Sequence[RuleLike]],
        policy: Callable[[], Policy],
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self.store = store
        self.verdicts = verdicts
        self.rules = rules
        self.policy = policy
        self.clock = clock

    def __call__(self, records: Sequence[Record]) -> list[list[Output]]:
        try:
            return self._handle(records)
        except DatabaseUnavailableError as exc:
            raise RetryLater(str(exc)) from exc

    def _handle(self, records: Sequence[Record]) -> list[list[Output]]:
        wanted = [r for r in records if str(r.value.get("verdict")) in self.verdicts]
        if not wanted:
            return [[] for _ in records]
        rules = self.rules()
        policy = self.policy()
        now = self.clock()
        emitted: dict[str, list[Output]] = {}
        with self.store.unit() as unit:
            origins = unit.origins([r.value["contact_id"] for r in wanted])
            cands = [
                from_verified(r.value, origins.get(r.value["contact_id"]), _position(r))
                for r in wanted
            ]
            placed = unit.placed([c.contact_id for c in cands])
            fresh: dict[str, Candidate] = {}
            replayed: list[str] = []
            for c in cands:
                if c.contact_id in placed:
                    replayed.append(c.closing_key)
                else:
                    fresh.setdefault(c.contact_id, c)
            routed = [(c, route(c.routable, rules)) for c in fresh.values()]
            done = place(unit, routed, now=now, policy=policy, emit_via="handler")
            closing = {**unit.closed_by(replayed), **done.closed}
            for key, batches in closing.items():
                emitted[key] = [self._ready(unit, b) for b in batches]
        if done.held:
            log.info("batch: held %d contacts (%s)", len(done.held), _reasons(done.held))
        return [emitted.pop(_position(r), []) for r in records]

    @staticmethod
    def _ready(unit: BatchUnit, batch: ClosedBatch) -> Output:
        return batch_ready_output(batch, unit.members(batch.batch_id))


def _position(r: Record) -> str:
    return f"{r.topic}:{r.partition}:{r.offset}"


def _reasons(holds: Sequence[Hold]) -> str:
    counts = Counter(h.reason for h in holds)
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items()))
