from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from ivr.trunks import InventoryError, parse_inventory


def trunk(**kw: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "name": "carrier",
        "match": ["192.0.2.1"],
        "trusted": True,
        "dids": [{"number": "03-5555-0101"}],
    }
    base.update(kw)
    return base


def test_defaults() -> None:
    inv = parse_inventory({"trunks": [trunk()]})
    [t] = inv.trunks
    assert t.dids[0].number == "+81355550101"
    assert t.dids[0].answer_mode == "early_media"
    assert t.codecs == ("ulaw", "alaw")


@pytest.mark.parametrize(
    ("data", "key"),
    [
        (
            {"trunks": [trunk(), trunk(name="other", match=["192.0.2.2"])]},
            "trunks[other].dids[0].number",
        ),
        (
            {"trunks": [trunk(dids=[{"number": "+1 212 555 0123"}])]},
            "trunks[carrier].dids[0].number",
        ),
        ({"trunks": [trunk(codecs=["ulaw", "speex99"])]}, "trunks[carrier].codecs"),
        ({"trunks": [trunk(match=[])]}, "trunks[carrier].match"),
        ({"trunks": [trunk(match=["not-an-ip"])]}, "trunks[carrier].match"),
        (
            {"trunks": [trunk(dids=[{"number": "0312345678", "answer_mode": "ring"}])]},
            "trunks[carrier].dids[0].answer_mode",
        ),
        ({"trunks": [trunk(colour="red")]}, "trunks[carrier].colour"),
        ({"trunks": [trunk(name="bad name")]}, "trunks[0].name"),
        ({"trunks": [trunk(), trunk(dids=[])]}, "trunks[carrier].name"),
        (
            {
                "trunks": [
                    trunk(match=["192.0.2.0/24"]),
                    trunk(name="b", match=["192.0.2.128/25"], dids=[]),
                ]
            },
            "trunks[b].match",
        ),
        (
            {"trunks": [trunk(registration={"username": "u", "server": "reg.example"})]},
            "trunks[carrier].registration.password",
        ),
        ({"trunks": [trunk(transport="sctp")]}, "trunks[carrier].transport"),
    ],
)
def test_errors_name_trunk_and_key(data: dict[str, Any], key: str) -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(data)
    assert info.value.key == key


def test_every_error_is_reported_at_once() -> None:
    with pytest.raises(InventoryError) as info:
        parse_inventory(
            {"trunks": [trunk(codecs=["nope"], transport="x", dids=[{"number": "12"}])]}
        )
    keys = [k for k, _ in info.value.errors]
    assert keys == [
        "trunks[carrier].codecs",
        "trunks[carrier].transport",
        "trunks[carrier].dids[0].number",
    ]


def test_the_shipped_inventories_load(monkeypatch: pytest.MonkeyPatch) -> None:
    from ivr.trunks import default_inventory_path

    REPO_ROOT = Path(__file__).resolve().parents[2]
    from ivr.trunks import load_inventory

    monkeypatch.setenv("PROVIDER_REG_PASSWORD", "secret")
    example = load_inventory(REPO_ROOT / "sip_config" / "example.toml")
    reg = example.trunk("provider-reg")
    assert reg is not None and reg.registration is not None
    assert reg.registration.password == "secret"
    assert load_inventory(default_inventory_path()).trunks


INVENTORY_FOR_MODULES = parse_inventory(
    {
        "trunks": [
            {
                "name": "carrier",
                "match": ["192.0.2.1"],
                "trusted": True,
                "dids": [{"number": "0355550101"}],
            }
        ]
    }
)


def test_asterisk_loads_only_listed_modules_and_every_one_the_dialplan_uses() -> None:
    """autoload = no: each function and application the generated dialplan calls must be
    provided by a module in the list (a missing one would fail every call)."""
    import re

    from ivr.config import EdgeSettings, NodeSettings, Settings
    from ivr.trunks import render

    providers = {
        "BASE64_ENCODE": "func_base64.so",
        "CALLERID": "func_callerid.so",
        "CUT": "func_cut.so",
        "DIALPLAN_EXISTS": "func_dialplan.so",
        "FILTER": "func_strings.so",
        "PJSIP_HEADER": "res_pjsip_header_funcs.so",
        "RAND": "func_rand.so",
        "TIMEOUT": "func_timeout.so",
        "Gosub": "app_stack.so",
        "Return": "app_stack.so",
        "Stasis": "app_stasis.so",
        "Playback": "app_playback.so",
    }
    builtin = {"Set", "Goto", "GotoIf", "Hangup", "NoOp", "Answer", "Progress"}
    plain = Settings()
    behind_edge = dataclasses.replace(
        plain,
        asterisk=dataclasses.replace(plain.asterisk, apps=("a", "b"), app="a"),
        nodes=(NodeSettings(name="a"),),
        edge=EdgeSettings(enabled=True),
    )
    for settings in (plain, behind_edge):
        files = render.render(settings, INVENTORY_FOR_MODULES, "/x")
        modules = set(re.findall(r"^load = (\S+)$", files["modules.conf"], re.MULTILINE))
        assert "autoload = no" in files["modules.conf"]
        ext = files["extensions.conf"]
        used = set(re.findall(r"\$\{([A-Z_]+)\(", ext))
        used |= set(re.findall(r"(?:=>|same =>) (?:[^,]+,){2}(\w+)\(", ext))
        unknown = used - set(providers) - builtin
        assert unknown == set(), f"add the module providing {unknown} to MODULES"
        assert {providers[u] for u in used if u in providers} <= modules


def test_the_minimal_profile_leaves_out_what_costs_asterisk_per_call() -> None:
    """No ICE, no timing module, no per-call AMI events, no identity variables; the
    stock profile keeps Asterisk's defaults and the older dialplan."""
    import re

    from ivr.config import Settings, replace
    from ivr.trunks import render

    minimal = render.render(Settings(), INVENTORY_FOR_MODULES, "/x")
    assert "icesupport = no" in minimal["rtp.conf"]
    assert not re.search(r"^load = res_timing_", minimal["modules.conf"], re.MULTILINE)
    [events] = re.findall(r"^disabledevents = (.*)$", minimal["manager.conf"], re.MULTILINE)
    disabled = set(events.split(","))
    assert {"Newexten", "VarSet", "Newstate", "Hangup"} <= disabled
    # what trunk status reads (ivr.trunks.status) stays on
    assert not disabled & {"ContactStatus", "Registry", "FullyBooted", "Reload", "Shutdown"}
    assert "channelvars" not in minimal["ari.conf"]
    ext = minimal["extensions.conf"]
    assert "Gosub" not in ext and "Set(IVR_DID" not in ext and "Set(SIP_" not in ext

    stock = render.render(
        replace(Settings(), asterisk={"profile": "stock"}), INVENTORY_FOR_MODULES, "/x"
    )
    assert "autoload = yes" in stock["modules.conf"]
    assert "icesupport" not in stock["rtp.conf"]
    assert "disabledevents" not in stock["manager.conf"]
    assert "channelvars = SIP_PAI" in stock["ari.conf"]
    assert "Gosub(ivr-capture-ids,s,1)" in stock["extensions.conf"]


def test_the_minimal_profile_runs_asterisk_on_jemalloc_and_stock_on_glibc(
    tmp_path: Path,
) -> None:
    from ivr.config import Settings, replace
    from ivr.devtools.pbx import LocalPbx, PbxError

    settings = replace(Settings(), pbx={"cache_dir": str(tmp_path)})
    pbx = LocalPbx(settings, INVENTORY_FOR_MODULES, say=lambda _: None)
    with pytest.raises(PbxError, match="libjemalloc2"):
        pbx.preload()  # a rootfs without the package: said, not ignored
    lib = pbx.rootfs / "usr/lib/aarch64-linux-gnu/libjemalloc.so.2"
    lib.parent.mkdir(parents=True)
    lib.touch()
    # The path as Asterisk sees it inside the chroot, set there rather than on chroot.
    assert pbx.preload() == [
        "/usr/bin/env",
        "LD_PRELOAD=/usr/lib/aarch64-linux-gnu/libjemalloc.so.2",
    ]
    stock = replace(settings, asterisk={"profile": "stock"})
    assert LocalPbx(stock, INVENTORY_FOR_MODULES, say=lambda _: None).preload() == []
