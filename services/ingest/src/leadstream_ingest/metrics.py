"""Prometheus metrics of the ingest API, in a registry of their own (one per app)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client import ProcessCollector as _ProcessCollector


class IngestMetrics:
    """Request counts and latency per route template and status, plus ingest counters."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        _ProcessCollector(registry=self.registry)
        self.requests = Counter(
            "leadstream_http_requests",
            "HTTP requests served, by route template, method and status",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "leadstream_http_request_seconds",
            "Time to serve an HTTP request, by route template and method",
            ["route", "method"],
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "leadstream_http_requests_in_flight", "Requests being served", registry=self.registry
        )
        self.contacts = Counter(
            "leadstream_ingest_contacts_accepted",
            "Contacts acknowledged by the broker, by source",
            ["source"],
            registry=self.registry,
        )
        self.rows_rejected = Counter(
            "leadstream_ingest_csv_rows_rejected",
            "CSV rows refused with a row error",
            registry=self.registry,
        )
        self.webhooks = Counter(
            "leadstream_ingest_webhooks",
            "Email Bison webhook deliveries, by outcome",
            ["outcome"],
            registry=self.registry,
        )
        self.request_logs_dropped = Counter(
            "leadstream_ingest_request_logs_dropped",
            "Request log events dropped because the producer queue was full",
            registry=self.registry,
        )
