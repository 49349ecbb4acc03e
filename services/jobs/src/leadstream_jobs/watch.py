"""A watch on the table app's progress: deltas counted, none applied for too long → restart.

Twice in the fault suite (a Kafka restart, then a SIGKILL of the jobs service), the restarted
service's table app stopped applying deltas for good while its counter went on counting:
its transaction on one ``jobs.state`` partition stayed open until the broker rolled it back
(60 s), faust then logged "Stream has not started processing" for that partition every few
seconds, and job state never moved again. The cause inside faust is not pinned down. The
counter and the table run in one process, so the process can see the stall itself: the
counter has handed out deltas and, ``limit_s`` later, the table has applied none since. It
then starts again in place, as after a crash (what is committed in Kafka is all the state).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WATCH_EVERY_S = 5.0


class StallWatch:
    """Deltas counted (by the counter) against deltas applied (by the table app)."""

    def __init__(self, limit_s: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.limit_s = limit_s
        self._clock = clock
        self._lock = threading.Lock()
        self._waiting_since: float | None = None

    def counted(self) -> None:
        """The counter handed out deltas: the table should apply something soon."""
        with self._lock:
            if self._waiting_since is None:
                self._waiting_since = self._clock()

    def applied(self) -> None:
        """The table app took a delta (applied or skipped as already applied)."""
        with self._lock:
            self._waiting_since = None

    def stalled_for(self) -> float | None:
        """Seconds deltas have waited with none applied, if more than the limit; else None."""
        with self._lock:
            since = self._waiting_since
        if since is None:
            return None
        waited = self._clock() - since
        return waited if waited > self.limit_s else None

    def start(self, on_stall: Callable[[str], None]) -> threading.Event:
        """Check from a daemon thread; call ``on_stall`` once on a stall. Setting the
        returned event ends the watch."""
        stop = threading.Event()

        def watch() -> None:
            while not stop.wait(WATCH_EVERY_S):
                waited = self.stalled_for()
                if waited is not None:
                    on_stall(f"table applied no delta for {waited:.0f}s while deltas were counted")
                    return

        threading.Thread(target=watch, name="stall-watch", daemon=True).start()
        return stop
