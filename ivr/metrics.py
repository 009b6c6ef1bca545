"""Prometheus metrics (prometheus_client, one registry per gateway: no globals)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

_LATENCY_BUCKETS = (0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0)


class Metrics:
    def __init__(self) -> None:
        r = self.registry = CollectorRegistry(auto_describe=True)
        self.calls = Counter(
            "ivr_calls",
            "Calls by outcome, trunk and Asterisk node",
            ["outcome", "trunk", "node"],
            registry=r,
        )
        self.created = Counter("ivr_verifications_created", "Verifications created", registry=r)
        self.verified = Counter(
            "ivr_verifications_verified", "Verifications verified by a call", registry=r
        )
        self.call_to_verified = Histogram(
            "ivr_call_to_verified_seconds",
            "From the call reaching Asterisk (StasisStart) to the verification committed",
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.callbacks = Counter(
            "ivr_callback_deliveries",
            "Callback attempts by result",
            ["portal", "result"],
            registry=r,
        )
        self.callback_latency = Histogram(
            "ivr_callback_attempt_seconds",
            "Callback attempt duration",
            ["portal"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.ari_connected = Gauge(
            "ivr_ari_connected", "1 while the ARI WebSocket to the node is up", ["node"], registry=r
        )
        self.ami_connected = Gauge("ivr_ami_connected", "1 while AMI is logged in", registry=r)
        self.pending = Gauge("ivr_pending_verifications", "Verifications pending", registry=r)
        self.long_polls = Gauge("ivr_long_polls", "Long polls waiting", registry=r)
        self.callback_backlog = Gauge(
            "ivr_callback_backlog",
            "Callback events not yet delivered (all portals, every gateway of the store)",
            registry=r,
        )
        self.rate_limited = Counter(
            "ivr_rate_limited",
            "Requests and calls refused by a limit or the block list",
            ["limit"],
            registry=r,
        )
        self.did_headroom = Gauge(
            "ivr_did_pool_headroom",
            "DIDs still free for the phone number holding the most pending verifications",
            registry=r,
        )
        self.trunk_up = Gauge(
            "ivr_trunk_up",
            "1 when the trunk's contacts and registration are fine",
            ["trunk"],
            registry=r,
        )

    def render(self) -> bytes:
        return generate_latest(self.registry)
