"""Settings for more than one machine: several Asterisk nodes, and Kamailio at the SIP edge.

With no ``[[nodes]]`` the gateway talks to the one Asterisk of ``[asterisk]``. With
``[[nodes]]`` it keeps one ARI connection per node; the credentials, Stasis app and
timeouts of ``[asterisk]`` apply to every node, each node has its own address and ports.

With ``[edge] enabled = true`` carriers send to Kamailio, which identifies the trunk by
source address, enforces the RFC 3325 trust boundary and spreads calls over the nodes;
each node then accepts SIP only from the edge's node-facing socket (``edge.node_port``).
"""

from __future__ import annotations

import dataclasses
import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ivr.config_base import ConfigError, check_node_ports, check_port

if TYPE_CHECKING:
    from ivr.config import AsteriskSettings


@dataclass(frozen=True)
class NodeSettings:
    """One Asterisk node: where its SIP, ARI and AMI listen."""

    name: str = "a"
    host: str = "127.0.0.1"
    sip_port: int = 15060
    http_port: int = 18088
    ami_port: int = 15038
    rtp_start: int = 10000
    rtp_end: int = 10999
    # The local chroot instance (`ivr cluster up`); empty: ``node-<name>``.
    instance: str = ""

    def validate(self, key: str) -> None:
        if not self.name or not self.name.replace("-", "").isalnum():
            raise ConfigError(f"{key}.name", f"must be letters, digits or -, got {self.name!r}")
        check_node_ports(key, self)

    @property
    def pbx_instance(self) -> str:
        return self.instance or f"node-{self.name}"


# User agents of the SIP scanners seen on every public address (SIPVicious and its
# descendants); their requests are dropped without an answer.
SCANNER_AGENTS = (
    "friendly-scanner",
    "sipvicious",
    "sipcli",
    "sip-scan",
    "sundayddr",
    "iWar",
    "VaxSIPUserAgent",
    "pplsip",
    "SIPBlaster",
    "smap",
)


@dataclass(frozen=True)
class EdgeSettings:
    """Kamailio in front of the Asterisk nodes (see docs/scaling.md)."""

    enabled: bool = False
    host: str = "127.0.0.1"
    sip_port: int = 15070  # where carriers send
    node_port: int = 15071  # Kamailio's socket toward the nodes: the only source they accept
    workers: int = 4  # UDP worker processes
    # Each node is sent an OPTIONS every probe_interval seconds; an unanswered probe or
    # INVITE (node_timeout_ms without even a 100 Trying) marks it down and the call goes
    # to the next node. A node answering probes again is back in the set by itself.
    probe_interval: int = 1
    node_timeout_ms: int = 1000
    # A call with no final response this long after a node's first answer gets 408 from
    # the edge (a node that died mid-call); longer than the longest prompt.
    final_timeout: int = 30
    # Flood control for sources other than trusted trunks (Kamailio's pike): more than
    # flood_requests requests in flood_window seconds from one address and it is ignored
    # until it has been quiet for flood_block seconds.
    flood_requests: int = 40
    flood_window: int = 2
    flood_block: int = 60
    scanner_agents: tuple[str, ...] = SCANNER_AGENTS
    run_dir: str = ""  # the local Kamailio's config and socket; default: <pbx cache>/edge

    def validate(self) -> None:
        for name in ("sip_port", "node_port"):
            check_port(f"edge.{name}", getattr(self, name))
        if self.sip_port == self.node_port:
            raise ConfigError("edge.node_port", "must differ from edge.sip_port")
        try:
            ipaddress.ip_address(self.host)
        except ValueError:
            raise ConfigError("edge.host", f"must be an IP address, got {self.host!r}") from None
        checks = (
            ("workers", 1, 64),
            ("probe_interval", 1, 60),
            ("node_timeout_ms", 100, 30000),
            ("final_timeout", 5, 300),
            ("flood_requests", 2, 100000),
            ("flood_window", 1, 60),
            ("flood_block", 1, 86400),
        )
        for name, low, high in checks:
            if not low <= getattr(self, name) <= high:
                raise ConfigError(f"edge.{name}", f"must be from {low} to {high}")
        for agent in self.scanner_agents:
            if not agent or not all(c.isalnum() or c in "-_. " for c in agent):
                raise ConfigError(
                    "edge.scanner_agents", f"{agent!r}: letters, digits, space, - _ . only"
                )


def validate_nodes(nodes: tuple[NodeSettings, ...]) -> None:
    seen: dict[tuple[str, int], str] = {}
    names: set[str] = set()
    for i, node in enumerate(nodes):
        key = f"nodes[{i}]"
        node.validate(key)
        if node.name in names:
            raise ConfigError(f"{key}.name", f"{node.name!r} is used twice")
        names.add(node.name)
        for port_name in ("sip_port", "http_port", "ami_port"):
            where = (node.host, getattr(node, port_name))
            if where in seen:
                raise ConfigError(
                    f"{key}.{port_name}", f"{where[0]}:{where[1]} is also {seen[where]}"
                )
            seen[where] = f"{key}.{port_name}"


def node_views(
    asterisk: AsteriskSettings, nodes: tuple[NodeSettings, ...]
) -> tuple[tuple[str, AsteriskSettings], ...]:
    """Each node as (name, [asterisk] with its address and ports); ``[asterisk]`` alone,
    named ``main``, without ``[[nodes]]``."""
    if not nodes:
        return (("main", asterisk),)
    return tuple(
        (
            n.name,
            dataclasses.replace(
                asterisk,
                host=n.host,
                sip_port=n.sip_port,
                http_port=n.http_port,
                ami_port=n.ami_port,
                rtp_start=n.rtp_start,
                rtp_end=n.rtp_end,
                system_name=asterisk.system_name or n.name,
            ),
        )
        for n in nodes
    )
