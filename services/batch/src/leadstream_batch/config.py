"""Settings of the batch service (environment prefix ``LEADSTREAM_``)."""

from __future__ import annotations

from typing import Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, model_validator

from leadstream.errors import ConfigError
from leadstream.settings import Settings

VERDICTS = frozenset({"deliverable", "risky", "undeliverable", "unknown"})
BISON_MAX_LEADS_PER_CALL = 500


class BatchSettings(Settings):
    """Settings of the batch stage.

    - ``batch_max_size``: a batch closes when it has this many contacts (≤ 500, Email Bison's
      per-call limit);
    - ``batch_max_age_s``: … or when its first contact joined this long ago (checked by the
      service's timer every ``batch_tick_s``, also when no record arrives);
    - ``batch_verdicts``: comma-separated verdicts that are batched (``deliverable`` by
      default; ``deliverable,risky`` to send risky ones too);
    - ``batch_daily_cap``: new leads per campaign per day when the campaign has no cap of its
      own (``leadstream campaigns cap``); unset = unlimited. Days are counted in
      ``batch_cap_timezone``;
    - ``batch_rules_refresh_s``: how often rules and caps are re-read from PostgreSQL.
    """

    consumer_group: str = "leadstream-batch"
    metrics_host: str = Field(default="127.0.0.1", description="Bind address of /metrics.")
    metrics_port: int = 9103
    batch_max_size: int = 500
    batch_max_age_s: float = 300.0
    batch_verdicts: str = "deliverable"
    batch_daily_cap: int | None = None
    batch_cap_timezone: str = "UTC"
    batch_tick_s: float = 1.0
    batch_rules_refresh_s: float = 5.0

    @model_validator(mode="after")
    def _check(self) -> Self:
        if not 1 <= self.batch_max_size <= BISON_MAX_LEADS_PER_CALL:
            raise ConfigError(
                f"LEADSTREAM_BATCH_MAX_SIZE must be 1..{BISON_MAX_LEADS_PER_CALL} "
                "(Email Bison takes at most 500 leads per call)"
            )
        if self.batch_max_age_s <= 0 or self.batch_tick_s <= 0:
            raise ConfigError("LEADSTREAM_BATCH_MAX_AGE_S and _TICK_S must be positive")
        unknown = self.allowed_verdicts - VERDICTS
        if unknown or not self.allowed_verdicts:
            raise ConfigError(
                f"LEADSTREAM_BATCH_VERDICTS: unknown verdicts {sorted(unknown)}; "
                f"choose from {sorted(VERDICTS)}"
            )
        if self.batch_daily_cap is not None and self.batch_daily_cap < 0:
            raise ConfigError("LEADSTREAM_BATCH_DAILY_CAP must be zero or more")
        try:
            ZoneInfo(self.batch_cap_timezone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ConfigError(f"LEADSTREAM_BATCH_CAP_TIMEZONE: {exc}") from exc
        return self

    @property
    def allowed_verdicts(self) -> frozenset[str]:
        return frozenset(v.strip().lower() for v in self.batch_verdicts.split(",") if v.strip())

    @property
    def cap_zone(self) -> ZoneInfo:
        return ZoneInfo(self.batch_cap_timezone)
