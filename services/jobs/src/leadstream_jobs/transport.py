"""faust's aiokafka transport with one fix: offset gaps of transactional input topics.

A topic written in Kafka transactions (``jobs.deltas``, by the counter) has offsets that are
never delivered: the commit markers. faust 0.15 records the offsets it skipped as a "gap" so
it can commit past them, but passes the offset of the message it just read as the inclusive
end of the gap. That offset is then counted twice, its consecutive run breaks, and each
commit advances past only one marker: the committed offset falls further behind the work
done, and a second "final" commit at shutdown fails with "Not in the middle of a
transaction". Here the gap ends before the message read, as intended.
"""

from __future__ import annotations

from faust.transport.drivers import aiokafka as driver
from faust.types import TP


class GapConsumer(driver.Consumer):
    """The aiokafka consumer, recording a skipped range without the message just read."""

    async def _add_gap(self, tp: TP, offset_from: int, offset_to: int) -> None:
        await super()._add_gap(tp, offset_from, offset_to - 1)


class Transport(driver.Transport):
    """The aiokafka transport with :class:`GapConsumer`."""

    Consumer = GapConsumer
