"""A watch on the table app's progress; a stall restarts the service in place.

Two signs of a stall, both seen in the fault suite before their cause was found (faust 0.15
never committed a partition again after an aborted transaction that followed its first
record: fixed in ``transport.py``). The watch stays as a guard against what else could stop
the table, and restarts the service in place, as after a crash (what is committed in Kafka
is all the state, so nothing is lost or counted twice):

- **The whole table:** the counter has handed out deltas and, ``limit_s`` later, the table
  has applied none since.
- **One partition:** the table has read deltas of a partition past its committed offset, and
  that committed offset has not moved for ``limit_s`` (the others may flow meanwhile). The
  positions come from a faust timer in the table app (``table.py``); positions that stop
  coming (the app's loop stuck) keep their age, so that stall is caught too.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

WATCH_EVERY_S = 5.0
Positions = Mapping[int, tuple[int | None, int | None]]
"""Input partition → (offset last read, committed offset) of the table app."""


class StallWatch:
    """Deltas counted (by the counter) against deltas applied and committed (by the table)."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting_since: float | None = None
        self._uncommitted: dict[int, tuple[int | None, float]] = {}
        """Partition → (committed offset, since when it has been so with reads beyond it)."""

    def counted(self) -> None:
        """The counter handed out deltas: the table should apply something soon."""
        with self._lock:
            if self._waiting_since is None:
                self._waiting_since = self._clock()

    def applied(self) -> None:
        """The table app took a delta (applied or skipped as already applied)."""
        with self._lock:
            self._waiting_since = None

    def positions(self, positions: Positions) -> None:
        """The table's read and committed offsets of the partitions it has now; partitions
        not named are no longer its own."""
        now = self._clock()
        with self._lock:
            uncommitted: dict[int, tuple[int | None, float]] = {}
            for partition, (read, committed) in positions.items():
                # faust's "read" is the offset last read, and the committed offset itself
                # right after it seeks there (a restart): read > committed means at least one
                # delta beyond the committed offset was read and is not committed.
                if read is None or (committed is not None and read <= committed):
                    continue
                seen = self._uncommitted.get(partition)
                if seen is None or seen[0] != committed:
                    seen = (committed, now)  # newly behind, or committed since: count anew
                uncommitted[partition] = seen
            self._uncommitted = uncommitted

    def stalled_for(self) -> float | None:
        """Seconds deltas have waited with none applied, if more than the limit; else None."""
        with self._lock:
            since = self._waiting_since
        if since is None:
            return None
        waited = self._clock() - since
        return waited if waited > self.limit_s else None

    def partition_stalled(self) -> tuple[int, float] | None:
        """The partition whose committed offset has stayed behind what was read the longest,
        and for how long, if more than the limit; else None."""
        now = self._clock()
        with self._lock:
            ages = [(now - since, p) for p, (_, since) in self._uncommitted.items()]
        if not ages:
            return None
        waited, partition = max(ages)
        return (partition, waited) if waited > self.limit_s else None

    def stall(self) -> str | None:
        """Why the table is stalled, or None."""
        waited = self.stalled_for()
        if waited is not None:
            return f"table applied no delta for {waited:.0f}s while deltas were counted"
        stuck = self.partition_stalled()
        if stuck is not None:
            return (
                f"table committed nothing of input partition {stuck[0]} for {stuck[1]:.0f}s "
                "while it read past it"
            )
        return None

    def start(self, on_stall: Callable[[str], None]) -> threading.Event:
        """Check from a daemon thread; call ``on_stall`` once on a stall. Setting the
        returned event ends the watch."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(WATCH_EVERY_S):
                reason = self.stall()
                if reason is not None:
                    on_stall(reason)
                    return

        threading.Thread(target=watch, name="stall-watch", daemon=True).start()
        return stop
