"""Trunk status rules, pure: the snapshot from AMI list responses, and AMI events on it."""

from __future__ import annotations

from ivr.trunks import Did, Inventory, Registration, Trunk
from ivr.trunks.status import TrunkState, apply_event, build_snapshot

INVENTORY = Inventory(
    (
        Trunk("carrier", ("192.0.2.1",), trusted=True, dids=(Did("+81355550001"),)),
        Trunk(
            "reg",
            ("192.0.2.2",),
            registration=Registration("u", "p", "192.0.2.2"),
        ),
        Trunk("gone", ("192.0.2.3",)),
    )
)
CARRIER = [
    {"Event": "EndpointDetail", "DeviceState": "Not in use"},
    {
        "Event": "ContactStatusDetail",
        "URI": "sip:192.0.2.1:5060",
        "Status": "Reachable",
        "RoundtripUsec": "1500",
    },
]
REGS = [{"Event": "OutboundRegistrationDetail", "ObjectName": "reg", "Status": "Rejected"}]


def snapshot() -> dict[str, TrunkState]:
    details = {
        "carrier": CARRIER,
        "reg": [{"Event": "EndpointDetail", "DeviceState": "Unavailable"}],
    }
    return build_snapshot(INVENTORY, details, REGS)


def test_snapshot_from_list_responses() -> None:
    snap = snapshot()
    carrier, reg, gone = snap["carrier"], snap["reg"], snap["gone"]
    assert carrier.up and carrier.endpoint == "Not in use" and carrier.dids == 1
    [contact] = carrier.contacts.values()
    assert (contact.status, contact.rtt_ms) == ("Reachable", 1.5)
    assert not reg.up and reg.registration == "Rejected"  # registration failing: down
    assert not gone.up and gone.endpoint == "Missing"  # not loaded in Asterisk


def test_a_registered_trunk_without_contacts_is_up() -> None:
    regs = [{**REGS[0], "Status": "Registered"}]
    snap = build_snapshot(INVENTORY, {"reg": []}, regs)
    assert snap["reg"].up


def test_contact_events_change_the_snapshot_only_when_something_changed() -> None:
    snap = snapshot()
    lost = {"Event": "ContactStatus", "AOR": "carrier", "URI": "sip:192.0.2.1:5060"}
    assert apply_event(snap, {**lost, "ContactStatus": "Unreachable"})
    assert not snap["carrier"].up
    assert not apply_event(snap, {**lost, "ContactStatus": "Unreachable"})  # no change
    # "Updated" says nothing about reachability: the known state stays.
    assert not apply_event(snap, {**lost, "ContactStatus": "Updated"})
    assert snap["carrier"].contacts["sip:192.0.2.1:5060"].status == "Unreachable"
    assert apply_event(snap, {**lost, "ContactStatus": "Reachable", "RoundtripUsec": "900"})
    assert snap["carrier"].up and snap["carrier"].contacts["sip:192.0.2.1:5060"].rtt_ms == 0.9
    assert apply_event(snap, {**lost, "ContactStatus": "Removed"})
    assert snap["carrier"].contacts == {}
    assert not apply_event(snap, {**lost, "AOR": "unknown", "ContactStatus": "Reachable"})


def test_device_state_events() -> None:
    snap = snapshot()
    event = {"Event": "DeviceStateChange", "Device": "PJSIP/carrier", "State": "Unavailable"}
    assert apply_event(snap, event) and snap["carrier"].endpoint == "Unavailable"
    assert not apply_event(snap, event)
    assert not apply_event(snap, {**event, "Device": "SIP/carrier"})
    assert not apply_event(snap, {**event, "Device": "PJSIP/nobody"})
    assert not apply_event(snap, {"Event": "Newchannel"})
