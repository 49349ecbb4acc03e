"""Writes infra/grafana/dashboards/leadstream.json, the provisioned Grafana dashboard.

Edit the panels here, then run ``uv run python infra/grafana/dashboard.py``: a hand-edited
JSON drifts, and tests/unit/test_compose.py checks that the file is this script's output (and
that every metric it queries exists in the code).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "dashboards" / "leadstream.json"
DATASOURCE = {"type": "prometheus", "uid": "prometheus"}  # provisioning/datasources
RATE = "$__rate_interval"
STAGE = 'stage=~"$stage"'
GRID_WIDTH = 24


class Layout:
    """Places panels left to right in lines, and rows between groups of lines."""

    def __init__(self) -> None:
        self.panels: list[dict[str, Any]] = []
        self.x = 0
        self.y = 0
        self.line_height = 0

    def row(self, title: str) -> None:
        self.y += self.line_height
        self.x, self.line_height = 0, 0
        self.panels.append(
            {
                "type": "row",
                "title": title,
                "id": len(self.panels) + 1,
                "collapsed": False,
                "gridPos": {"h": 1, "w": GRID_WIDTH, "x": 0, "y": self.y},
                "panels": [],
            }
        )
        self.y += 1

    def panel(
        self,
        title: str,
        targets: list[tuple[str, str]],
        *,
        unit: str = "short",
        width: int = 8,
        height: int = 8,
        kind: str = "timeseries",
        description: str = "",
        stack: bool = False,
    ) -> None:
        if self.x + width > GRID_WIDTH:
            self.x, self.y, self.line_height = 0, self.y + self.line_height, 0
        self.line_height = max(self.line_height, height)
        defaults: dict[str, Any] = {"unit": unit}
        if stack:
            defaults["custom"] = {"stacking": {"mode": "normal", "group": "A"}, "fillOpacity": 20}
        options: dict[str, Any] = {
            "legend": {"displayMode": "list", "placement": "bottom", "showLegend": True},
            "tooltip": {"mode": "multi", "sort": "desc"},
        }
        if kind == "stat":
            options = {
                "reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False},
                "colorMode": "value",
                "graphMode": "area",
                "textMode": "auto",
            }
        self.panels.append(
            {
                "type": kind,
                "title": title,
                "id": len(self.panels) + 1,
                "datasource": DATASOURCE,
                "description": description,
                "gridPos": {"h": height, "w": width, "x": self.x, "y": self.y},
                "fieldConfig": {"defaults": defaults, "overrides": []},
                "options": options,
                "targets": [
                    {
                        "datasource": DATASOURCE,
                        "refId": chr(ord("A") + i),
                        "expr": expr,
                        "legendFormat": legend,
                        "range": True,
                    }
                    for i, (expr, legend) in enumerate(targets)
                ],
            }
        )
        self.x += width


def _select(metric: str, selector: str) -> str:
    return f"{metric}{{{selector}}}" if selector else metric


def rate(metric: str, by: str, selector: str = STAGE) -> str:
    return f"sum by ({by}) (rate({_select(metric, selector)}[{RATE}]))"


def quantiles(metric: str, by: str, selector: str = STAGE) -> list[tuple[str, str]]:
    """p50 and p99 of a histogram, per ``by``."""
    return [
        (
            f"histogram_quantile({q}, sum by ({by}, le) "
            f"(rate({_select(metric + '_bucket', selector)}[{RATE}])))",
            f"{{{{{by}}}}} p{int(q * 100)}",
        )
        for q in (0.5, 0.99)
    ]


def build() -> dict[str, Any]:
    board = Layout()
    board.row("Services")
    board.panel(
        "Targets up",
        [('up{job=~"ingest|stages"}', "{{service}}")],
        kind="stat",
        height=6,
        description="1 when Prometheus could scrape the service's /metrics.",
    )
    board.panel(
        "Loop age (s since the stage loop last turned)",
        [(f"time() - leadstream_stage_last_loop_timestamp{{{STAGE}}}", "{{stage}}")],
        unit="s",
        height=6,
        description="A stage's /healthz turns 503 past 60 s.",
    )
    board.panel(
        "Consumer lag (records, per stage)",
        [(f"sum by (stage) (leadstream_stage_consumer_lag{{{STAGE}}})", "{{stage}}")],
        kind="stat",
        height=6,
    )

    board.row("Throughput per stage")
    board.panel(
        "Records in / s",
        [(rate("leadstream_stage_records_in_total", "stage"), "{{stage}}")],
        unit="ops",
        description="Input records committed (handled or dead-lettered).",
    )
    board.panel(
        "Records out / s, by topic",
        [(rate("leadstream_stage_records_out_total", "stage, topic"), "{{stage}} → {{topic}}")],
        unit="ops",
    )
    board.panel(
        "Rejected / s",
        [
            (
                rate("leadstream_stage_records_rejected_total", "stage, topic"),
                "{{stage}} → {{topic}}",
            )
        ],
        unit="ops",
    )
    board.panel(
        "Outcomes / s (verdicts, rejection reasons)",
        [(rate("leadstream_stage_outcomes_total", "stage, outcome"), "{{stage}}: {{outcome}}")],
        unit="ops",
        width=12,
        stack=True,
    )
    board.panel(
        "Records per batch (mean)",
        [
            (
                f"{rate('leadstream_stage_batch_records_sum', 'stage')}"
                f" / {rate('leadstream_stage_batch_records_count', 'stage')}",
                "{{stage}}",
            )
        ],
        width=12,
    )

    board.row("Lag and dead letters")
    board.panel(
        "Consumer lag per partition",
        [(f"leadstream_stage_consumer_lag{{{STAGE}}}", "{{stage}} {{topic}}[{{partition}}]")],
        width=12,
        description="High watermark minus the consumer's position, refreshed every 10 s.",
    )
    board.panel(
        "Dead-lettered (per interval), by error",
        [
            (
                "sum by (stage, error) "
                f"(increase(leadstream_stage_dead_lettered_total{{{STAGE}}}[{RATE}]))",
                "{{stage}}: {{error}}",
            )
        ],
        width=12,
        stack=True,
        description="Records sent to dlq.<stage>; inspect and redrive with `leadstream dlq`.",
    )
    board.panel(
        "Retries and aborted transactions / s",
        [
            (rate("leadstream_stage_retries_total", "stage"), "{{stage}} retries"),
            (rate("leadstream_stage_transaction_aborts_total", "stage"), "{{stage}} aborts"),
        ],
        unit="ops",
        width=24,
        height=7,
    )

    board.row("Latency")
    board.panel(
        "Batch handling p50 / p99",
        quantiles("leadstream_stage_batch_seconds", "stage"),
        unit="s",
    )
    board.panel(
        "Transaction commit p50 / p99",
        quantiles("leadstream_stage_transaction_seconds", "stage"),
        unit="s",
    )
    board.panel(
        "End-to-end (event time → outputs committed) p50 / p99",
        quantiles("leadstream_stage_end_to_end_seconds", "stage"),
        unit="s",
        description="Age of each input event (its event_time) when its outputs committed.",
    )

    board.row("HTTP (ingest)")
    board.panel(
        "Requests / s by route and status",
        [(rate("leadstream_http_requests_total", "route, status", ""), "{{route}} {{status}}")],
        unit="reqps",
    )
    total = f"sum(rate(leadstream_http_requests_total[{RATE}]))"
    board.panel(
        "Error ratio (5xx, 4xx)",
        [
            (
                f'sum(rate(leadstream_http_requests_total{{status=~"{c}.."}}[{RATE}])) / {total}',
                f"{c}xx",
            )
            for c in (5, 4)
        ],
        unit="percentunit",
    )
    board.panel(
        "Latency p50 / p99 by route",
        quantiles("leadstream_http_request_seconds", "route", ""),
        unit="s",
    )
    board.panel(
        "Contacts accepted / s",
        [(rate("leadstream_ingest_contacts_accepted_total", "source", ""), "{{source}}")],
        unit="ops",
    )
    board.panel("In flight", [("sum(leadstream_http_requests_in_flight)", "requests")])
    board.panel(
        "Webhooks by outcome / s",
        [(rate("leadstream_ingest_webhooks_total", "outcome", ""), "{{outcome}}")],
        unit="ops",
    )

    board.row("Jobs, batches, Email Bison and audit")
    board.panel(
        "Jobs by status",
        [("sum by (status) (leadstream_jobs_by_status)", "{{status}}")],
        stack=True,
    )
    board.panel(
        "Job deltas applied / s",
        [
            (f"sum(rate(leadstream_jobs_deltas_applied_total[{RATE}]))", "applied"),
            (rate("leadstream_jobs_deltas_skipped_total", "why", ""), "skipped: {{why}}"),
        ],
        unit="ops",
    )
    board.panel(
        "Batch timer (per interval)",
        [
            (f"sum(increase(leadstream_batch_{name}_total[{RATE}]))", legend)
            for name, legend in (
                ("closed_by_age", "closed by age"),
                ("outbox_emitted", "emitted"),
                ("holds_released", "holds released"),
            )
        ]
        + [
            (
                f'sum(increase(leadstream_batch_timer_ticks_total{{outcome="error"}}[{RATE}]))',
                "failed ticks",
            )
        ],
    )
    board.panel(
        "Email Bison scheduled runs (1 h)",
        [
            (
                "sum by (job, outcome) (increase(leadstream_bison_scheduler_runs_total[1h]))",
                "{{job}} {{outcome}}",
            )
        ],
    )
    board.panel(
        "Email Bison scheduled run p99",
        quantiles("leadstream_bison_scheduler_run_seconds", "job", "")[1:],
        unit="s",
    )
    board.panel(
        "Audit documents deleted past retention (1 d)",
        [
            (
                "sum by (collection) (increase(leadstream_audit_purged_total[1d]))",
                "{{collection}}",
            )
        ],
    )

    stage_query = "label_values(leadstream_stage_records_in_total, stage)"
    return {
        "uid": "leadstream-pipeline",
        "title": "LeadStream pipeline",
        "description": "Throughput, lag, dead letters and latencies of every LeadStream service "
        "(docs/observability.md).",
        "tags": ["leadstream"],
        "timezone": "utc",
        "editable": False,
        "graphTooltip": 1,
        "refresh": "30s",
        "schemaVersion": 41,
        "version": 1,
        "time": {"from": "now-1h", "to": "now"},
        "annotations": {"list": []},
        "templating": {
            "list": [
                {
                    "name": "stage",
                    "label": "stage",
                    "type": "query",
                    "datasource": DATASOURCE,
                    "query": {"query": stage_query, "refId": "stage"},
                    "definition": stage_query,
                    "includeAll": True,
                    "multi": True,
                    "allValue": ".*",
                    "refresh": 2,
                    "sort": 1,
                    "current": {"selected": True, "text": ["All"], "value": ["$__all"]},
                }
            ]
        },
        "panels": board.panels,
    }


def render() -> str:
    return json.dumps(build(), indent=2, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    OUT.write_text(render(), encoding="utf-8")
    sys.stdout.write(f"wrote {OUT}\n")
