"""faust's aiokafka transport with two fixes, both about offsets a consumer never receives.

A topic written in Kafka transactions (``jobs.deltas``, by the counter) has offsets that are
never delivered to a ``read_committed`` consumer: the commit and abort markers, and the
records of aborted transactions. faust 0.15 tracks them as "gaps" so it can commit past them,
and gets two cases wrong:

- **The gap's end.** It passes the offset of the message it just read as the inclusive end of
  the gap. That offset is then counted twice, its consecutive run breaks, and each commit
  advances past only one marker: the committed offset falls further behind the work done,
  and a second "final" commit at shutdown fails with "Not in the middle of a transaction".
  Here the gap ends before the message read, as intended.
- **A gap after offset 0.** It records a gap only when the offset last read is truthy, so
  after reading offset 0 the undelivered offsets that follow are not recorded. Its commit
  rule then waits for them for good ("a gap at the head of the acknowledged offsets"): the
  partition is never committed again, its open transaction (with the state written for it)
  is rolled back by the broker, and the job table stops for that partition. It takes one
  aborted transaction right after a partition's first record — a broker restart or a killed
  counter — and was seen in the fault suite. Here such a head gap is filled when no message
  below it is still being processed (those offsets were then never delivered, or were
  already acknowledged), so the commit goes on past it.
"""

from __future__ import annotations

import logging

from faust.transport.drivers import aiokafka as driver
from faust.types import TP

log = logging.getLogger(__name__)


class GapConsumer(driver.Consumer):
    """The aiokafka consumer, with faust's gap bookkeeping corrected (see the module)."""

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        await super()._add_gap(tp, offset_from, offset_to - 1)

    def _new_offset(self, tp: TP) -> int | None:
        self._fill_head_gap(tp)
        return super()._new_offset(tp)

    def _fill_head_gap(self, tp: TP) -> None:
        """Acknowledge the offsets between the committed offset and the first acknowledged
        (or known skipped) one when no message of ``tp`` below them is still in flight."""
        acked = self._acked.get(tp)
        committed = self._committed_offset.get(tp)
        if not acked or committed is None:
            return
        first = min(acked)
        gap = self._gap.get(tp)
        if gap:
            first = min(first, min(interval.begin for interval in gap))
        if first - committed <= 1:
            return  # what faust accepts itself
        if any(m.tp == tp and m.offset < first for m in list(self._unacked_messages)):
            return  # a message below is still being processed: its ack fills this
        index = self._acked_index[tp]
        fill = [offset for offset in range(committed, first) if offset not in index]
        acked.extend(fill)
        index.update(fill)
        log.info(
            "%s: offsets %d-%d never delivered; committing past them", tp, committed, first - 1
        )


class Transport(driver.Transport):
    """The aiokafka transport with :class:`GapConsumer`."""

    Consumer = GapConsumer
