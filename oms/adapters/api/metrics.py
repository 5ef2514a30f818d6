"""Prometheus counters of one API server, in a registry of its own (several servers may share a process); its
`/metrics` page also shows the process's hot-path metrics (`oms.runtime.metrics`: orders in by channel, rejects, acks,
fills, per-stage latency histograms)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest

from oms.runtime.metrics import REGISTRY as HOT_PATH_REGISTRY

__all__ = ["CONTENT_TYPE", "ApiMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
# submit -> ack over loopback is tens to hundreds of microseconds: fine buckets at the bottom
_LATENCY_BUCKETS = (50e-6, 100e-6, 200e-6, 300e-6, 500e-6, 750e-6, 1e-3, 2e-3, 5e-3, 10e-3, 25e-3, 50e-3, 0.1, 0.5, 1.0)


class ApiMetrics:
    def __init__(self, hot_path: CollectorRegistry | None = HOT_PATH_REGISTRY) -> None:
        """`hot_path`: the registry rendered after this server's own (the process's hot-path metrics; None: none)."""
        self.registry = CollectorRegistry(auto_describe=True)
        self.hot_path = hot_path
        r = self.registry
        self.orders_in = Counter("oms_api_orders_in", "order submissions received", registry=r)
        self.rejects = Counter(
            "oms_api_rejects", "orders refused, by reason code (validation and risk)", ["reason"], registry=r
        )
        self.acks = Counter("oms_api_acks", "orders entered over REST that were accepted", registry=r)
        self.fills = Counter("oms_api_fills", "fills of orders entered over REST", registry=r)
        self.errors = Counter(
            "oms_api_errors", "requests refused, by HTTP status and code", ["status", "code"], registry=r
        )
        self.submit_latency = Histogram(
            "oms_api_submit_ack_seconds",
            "order request in -> response out (the order acknowledged or rejected)",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )

    def render(self) -> bytes:
        """The Prometheus text exposition: this server's metrics, then the hot path's (names do not overlap)."""
        own = generate_latest(self.registry)
        return own if self.hot_path is None else own + generate_latest(self.hot_path)
