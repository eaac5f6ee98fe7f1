"""Prometheus metrics every controller reports (names follow controller-runtime's)."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

RECONCILE_TOTAL = Counter(
    "controller_runtime_reconcile_total", "Reconciles by controller and result.", ["controller", "result"]
)
RECONCILE_ERRORS = Counter("controller_runtime_reconcile_errors_total", "Reconciles that raised.", ["controller"])
RECONCILE_SECONDS = Histogram(
    "controller_runtime_reconcile_time_seconds",
    "Time per reconcile.",
    ["controller"],
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10),
)
QUEUE_DEPTH = Gauge("workqueue_depth", "Keys waiting in a controller's queue.", ["name"])
QUEUE_RETRIES = Counter("workqueue_retries_total", "Keys re-queued with back-off after an error.", ["name"])
