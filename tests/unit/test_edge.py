"""The edge's generated Kamailio config, the nodes' config behind it, and their settings."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from ivr.config import ConfigError, EdgeSettings, NodeSettings, Settings, load_settings
from ivr.edge.render import address_table, dispatcher_list, render
from ivr.trunks import render as asterisk_render
from ivr.trunks.inventory import Did, Inventory, Trunk

INVENTORY = Inventory(
    (
        Trunk("carrier", ("192.0.2.0/24", "198.51.100.7:5070"), True, dids=(Did("+81355550101"),)),
        Trunk("peer", ("203.0.113.9",), False, dids=(Did("+81355550199"),)),
    )
)
NODES = (
    NodeSettings(name="a", sip_port=15160, http_port=18188, ami_port=15138),
    NodeSettings(name="b", host="10.0.0.2", sip_port=5060, http_port=8088, ami_port=5038),
)


def cluster(**edge: object) -> Settings:
    return dataclasses.replace(
        Settings(),
        nodes=NODES,
        edge=EdgeSettings(enabled=True, **edge),  # type: ignore[arg-type]
    )


def test_trunks_become_address_rows_by_trust_with_mask_and_port() -> None:
    rows = address_table(INVENTORY).splitlines()
    assert rows[0].startswith("id(int,auto) grp(int) ip_addr(string)")
    assert rows[1:] == [
        "1:1:192.0.2.0:24:0:carrier",
        "2:1:198.51.100.7:32:5070:carrier",
        "3:2:203.0.113.9:32:0:peer",
    ]


def test_every_node_is_a_destination_reached_from_the_node_socket() -> None:
    lines = dispatcher_list(cluster(node_port=15071)).splitlines()[1:]
    assert lines == [
        "1 sip:127.0.0.1:15160 0 0 duid=a;socket=udp:127.0.0.1:15071",
        "1 sip:10.0.0.2:5060 0 0 duid=b;socket=udp:127.0.0.1:15071",
    ]


def test_the_config_is_deterministic_and_says_what_the_edge_does() -> None:
    settings = cluster(probe_interval=2, node_timeout_ms=800, flood_requests=25)
    files = render(settings, INVENTORY, "/run/edge")
    assert files == render(settings, INVENTORY, "/run/edge")
    cfg = files["kamailio.cfg"]
    assert 'modparam("dispatcher", "ds_ping_interval", 2)' in cfg
    assert 'modparam("tm", "fr_timer", 800)' in cfg
    assert 'modparam("pike", "reqs_density_per_unit", 25)' in cfg
    assert "unix:/run/edge/kamailio.ctl" in cfg
    # RFC 3325: identities removed unless trusted; Privacy never touched; our header
    # replaced, never passed through.
    trust = cfg[cfg.index("route[TRUST]") :]
    trust = trust[: trust.index("\n}\n")]
    for header in ("P-Asserted-Identity", "P-Preferred-Identity", "Remote-Party-ID"):
        assert f'remove_hf("{header}")' in trust
    assert "Privacy" not in trust
    assert trust.index('remove_hf("X-Ivr-Trunk")') < trust.index('append_hf("X-Ivr-Trunk')
    # Failover on no answer and 5xx only: 486/603 are the gateway's own answers.
    failure = cfg[cfg.index("failure_route[NODE_FAILED]") :]
    assert 't_check_status("5[0-9][0-9]")' in failure and "ds_next_dst()" in failure
    assert "friendly-scanner|sipvicious" in cfg and "vaxsipuseragent" in cfg


def test_behind_the_edge_a_node_takes_sip_from_the_edge_only() -> None:
    settings = cluster(host="127.0.0.1", node_port=15071)
    files = asterisk_render.render(settings, INVENTORY, "/ivr/x")
    pjsip = files["pjsip.conf"]
    assert "match = 127.0.0.1:15071" in pjsip
    assert "[carrier]" not in pjsip and "[peer]" not in pjsip  # no trunk endpoints
    ext = files["extensions.conf"]
    assert "[from-ivr-edge]" in ext and "PJSIP_HEADER(read,X-Ivr-Trunk)" in ext
    assert "[from-carrier]" in ext  # the trunk contexts the edge's trunk name selects
    # Without the edge nothing changes.
    plain = asterisk_render.render(Settings(), INVENTORY, "/ivr/x")
    assert "[carrier]" in plain["pjsip.conf"] and "from-ivr-edge" not in plain["extensions.conf"]


def test_each_node_gets_its_ports_and_a_system_name_for_unique_channel_ids() -> None:
    nodes = dict(cluster().asterisk_nodes)
    assert nodes["b"].host == "10.0.0.2" and nodes["b"].ari_url == "http://10.0.0.2:8088/ari"
    assert nodes["a"].system_name == "a"
    assert Settings().asterisk_nodes[0][0] == "main"
    conf = asterisk_render.render(
        dataclasses.replace(Settings(), asterisk=nodes["a"]), INVENTORY, "/x"
    )["asterisk.conf"]
    assert "systemname = a" in conf


def _load(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "s.toml"
    path.write_text(text)
    return load_settings(path, environ={})


def test_nodes_and_edge_from_a_file(tmp_path: Path) -> None:
    s = _load(
        tmp_path,
        "[edge]\nenabled = true\nsip_port = 5060\nnode_port = 5061\n"
        '[[nodes]]\nname = "a"\n[[nodes]]\nname = "b"\nsip_port = 15260\n'
        "http_port = 18288\nami_port = 15238\n",
    )
    assert [n.name for n in s.nodes] == ["a", "b"] and s.edge.sip_port == 5060


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[[nodes]]\nname = "a"\n[[nodes]]\nname = "a"\nsip_port = 2\n', "nodes[1].name"),
        ('[[nodes]]\nname = "a"\n[[nodes]]\nname = "b"\n', "nodes[1].sip_port"),
        ('[[nodes]]\nname = "a"\nbogus = 1\n', "nodes[0].bogus"),
        ("[edge]\nsip_port = 5060\nnode_port = 5060\n", "edge.node_port"),
        ('[edge]\nhost = "edge.example"\n', "edge.host"),
        ("[edge]\nnode_timeout_ms = 10\n", "edge.node_timeout_ms"),
        ('[edge]\nscanner_agents = ["a|b"]\n', "edge.scanner_agents"),
        ('[edge]\nenabled = true\n[calls]\ncause_failed = "congestion"\n', "calls.cause_failed"),
    ],
)
def test_bad_cluster_settings_name_their_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, text)
    assert err.value.key == key
