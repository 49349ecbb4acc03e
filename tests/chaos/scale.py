"""How big the fault suite runs: ``CHAOS_SCALE=ci`` (default, the CI size) or ``full``
(``make chaos``)."""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class Scale:
    name: str
    contacts: int
    """Contacts uploaded through ingest while the faults of scenario 1 are injected."""
    upload_rows: int
    """Rows per CSV upload (each upload is one job)."""
    intake_per_s: float
    """Pace of the uploads while faults are injected (the rest goes at once afterwards)."""
    kills: int
    """SIGKILLs of each stage service."""
    stop_contacts: int
    """Contacts flowing while a stage is SIGSTOPped (scenario 2)."""
    burst: int
    """Registrations in the burst (scenario 3)."""
    burst_concurrency: int
    trickle_per_s: float
    """Registrations per second posted while faults are injected (the writer has work)."""


CI = Scale(
    name="ci",
    contacts=6_000,
    upload_rows=300,
    intake_per_s=45,
    kills=1,
    stop_contacts=2_000,
    burst=2_000,
    burst_concurrency=48,
    trickle_per_s=4,
)
FULL = Scale(
    name="full",
    contacts=200_000,
    upload_rows=4_000,
    intake_per_s=550,
    kills=3,
    stop_contacts=20_000,
    burst=20_000,
    burst_concurrency=128,
    trickle_per_s=10,
)


def current() -> Scale:
    name = os.environ.get("CHAOS_SCALE", "ci").lower()
    if name not in ("ci", "full"):
        raise ValueError(f"CHAOS_SCALE must be ci or full, not {name!r}")
    return FULL if name == "full" else CI
