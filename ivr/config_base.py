"""What every settings section shares: the error that names a key, and the port check."""

from __future__ import annotations

from typing import Protocol


class ConfigError(ValueError):
    """A setting is missing, unknown or out of range; ``key`` names it."""

    def __init__(self, key: str, message: str) -> None:
        super().__init__(f"{key}: {message}")
        self.key = key


def check_port(key: str, value: int) -> None:
    if not 1 <= value <= 65535:
        raise ConfigError(key, f"must be a port number between 1 and 65535, got {value}")


class _Ports(Protocol):
    @property
    def sip_port(self) -> int: ...
    @property
    def http_port(self) -> int: ...
    @property
    def ami_port(self) -> int: ...
    @property
    def rtp_start(self) -> int: ...
    @property
    def rtp_end(self) -> int: ...


def check_node_ports(prefix: str, node: _Ports) -> None:
    """SIP, ARI, AMI and the RTP range of one Asterisk ([asterisk] or a [[nodes]] entry)."""
    for name in ("sip_port", "http_port", "ami_port", "rtp_start", "rtp_end"):
        check_port(f"{prefix}.{name}", getattr(node, name))
    if node.rtp_end - node.rtp_start < 10:
        raise ConfigError(f"{prefix}.rtp_end", "must leave at least 10 ports above rtp_start")
