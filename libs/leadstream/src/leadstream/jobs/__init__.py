"""Job state: what the job tracker (``leadstream-jobs``) knows about each ingest job.

- :class:`JobState` / :class:`JobStatus`: the typed value of the compacted ``jobs.state`` topic.
- :class:`JobStateView`: tails ``jobs.state`` in a background thread; ``get``, ``all``,
  ``wait_for(job_id, predicate, timeout)``, ``close``.
- :func:`read_job_state`: one job's latest state, read once.
- :mod:`leadstream.jobs.headers`: the Kafka headers stages set so the tracker can count.

No faust here: the tracker writes ``jobs.state``; everyone else reads it with this module.
"""

from leadstream.jobs import headers
from leadstream.jobs.errors import JobStateError, JobStateTimeout
from leadstream.jobs.state import TERMINAL_DLQS, JobState, JobStatus, to_millis
from leadstream.jobs.view import STATE_TOPIC, JobStateView, read_job_state

__all__ = [
    "STATE_TOPIC",
    "TERMINAL_DLQS",
    "JobState",
    "JobStateError",
    "JobStateTimeout",
    "JobStateView",
    "JobStatus",
    "headers",
    "read_job_state",
    "to_millis",
]
