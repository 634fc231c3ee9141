"""The model server's Prometheus metrics, through Ray's metrics API.

Created when a replica starts (never at import). Ray exports them on every node's metrics
port with a ``ray_`` prefix and adds the Serve application, deployment and replica tags;
ours add ``model``, ``version`` and ``arm``.
"""

from __future__ import annotations

import asyncio

from raymlops.serve.split import TrafficPolicy

GAUGE_REFRESH_S = 2.0
LATENCY_BOUNDARIES_MS = [0.5, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]


class ServerMetrics:
    """Counters, histograms and gauges of one model server replica."""

    def __init__(self, model: str) -> None:
        from ray.serve import metrics

        self.model = model
        self.requests = metrics.Counter(
            "raymlops_requests_total", description="Prediction requests by version, arm and HTTP status.",
            tag_keys=("model", "version", "arm", "status"))
        self.latency = metrics.Histogram(
            "raymlops_request_latency_ms", description="Time to answer a prediction request, in milliseconds.",
            boundaries=LATENCY_BOUNDARIES_MS, tag_keys=("model", "version", "arm"))
        self.shadow_compared = metrics.Counter(
            "raymlops_shadow_comparisons_total", description="Rows answered by both the live and the shadow version.",
            tag_keys=("model", "version", "shadow_version"))
        self.shadow_disagreed = metrics.Counter(
            "raymlops_shadow_disagreements_total", description="Rows where the shadow version predicted another class.",
            tag_keys=("model", "version", "shadow_version"))
        self.shadow_skipped = metrics.Counter(
            "raymlops_shadow_skipped_total", description="Shadow copies skipped because too many were in flight.",
            tag_keys=("model",))
        self.weight = metrics.Gauge(
            "raymlops_traffic_weight", description="Share of requests each live version answers (shadow: share copied).",
            tag_keys=("model", "version", "arm"))
        self.records_sent = metrics.Counter(
            "raymlops_records_sent_total", description="Prediction records handed to the record sink.",
            tag_keys=("model",))
        self.records_lost = metrics.Gauge(
            "raymlops_records_lost", description="Prediction records this replica dropped or could not deliver.",
            tag_keys=("model",))
        self._weights: set[tuple[str, str]] = set()
        self._policy: TrafficPolicy | None = None
        self._lost = 0
        self._refresher: asyncio.Task | None = None

    def _start_refresher(self) -> None:
        """Re-set the gauges every few seconds: Ray's exporter drops gauge series not recorded lately."""
        async def refresh() -> None:
            while True:
                await asyncio.sleep(GAUGE_REFRESH_S)
                if self._policy is not None:
                    self.set_weights(self._policy)
                self.records_lost.set(self._lost, tags={"model": self.model})

        try:
            self._refresher = asyncio.get_running_loop().create_task(refresh())
        except RuntimeError:
            pass  # no event loop: plain calls only

    def observe_request(self, version: int | None, arm: str, status: int, latency_ms: float) -> None:
        """Count one answered request and its latency."""
        if self._refresher is None:
            self._start_refresher()
        tags = {"model": self.model, "version": str(version) if version is not None else "none", "arm": arm}
        self.requests.inc(1, tags={**tags, "status": str(status)})
        if status < 400:
            self.latency.observe(latency_ms, tags=tags)

    def observe_shadow(self, version: int, shadow_version: int, rows: int, disagreements: int) -> None:
        """Count a shadow comparison."""
        tags = {"model": self.model, "version": str(version), "shadow_version": str(shadow_version)}
        self.shadow_compared.inc(rows, tags=tags)
        if disagreements:
            self.shadow_disagreed.inc(disagreements, tags=tags)

    def skip_shadow(self) -> None:
        """Count a shadow copy that was not run."""
        self.shadow_skipped.inc(1, tags={"model": self.model})

    def set_weights(self, policy: TrafficPolicy) -> None:
        """Publish the current split (versions that left get 0)."""
        current = {(str(policy.stable_version), "stable"): 1.0 - policy.canary_weight}
        if policy.canary_version is not None:
            current[(str(policy.canary_version), "canary")] = policy.canary_weight
        if policy.shadow_version is not None:
            current[(str(policy.shadow_version), "shadow")] = policy.shadow_share
        for key in self._weights - set(current):
            current.setdefault(key, 0.0)
        for (version, arm), value in current.items():
            self.weight.set(value, tags={"model": self.model, "version": version, "arm": arm})
        self._weights = {key for key, value in current.items() if value > 0}
        self._policy = policy

    def records(self, sent: int, lost: int) -> None:
        """Publish the record stream's counts (sent is a delta, lost a running total)."""
        if sent:
            self.records_sent.inc(sent, tags={"model": self.model})
        self._lost = lost
        self.records_lost.set(lost, tags={"model": self.model})
