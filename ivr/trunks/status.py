"""Trunk status: a snapshot of every trunk's endpoint, contacts and registration.

Loaded over AMI when AMI logs in (and after ``apply``), then kept current from AMI
events (ContactStatus, DeviceStateChange, Registry): a status request reads memory,
never Asterisk. The snapshot-building and event-applying parts are pure.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ivr.asterisk.ami import AmiError, AmiEvent
from ivr.log import get_logger
from ivr.trunks.inventory import Inventory

log = get_logger("ivr.trunks")


class AmiPort(Protocol):
    """What trunk status needs from AMI (``ivr.asterisk.ami.AmiClient``, or a fake)."""

    @property
    def connected(self) -> bool: ...

    async def action(self, name: str, **params: str) -> list[AmiEvent]: ...

    def subscribe(
        self, on_event: Callable[[AmiEvent], None], on_login: Callable[[], None] | None = None
    ) -> None: ...


@dataclass
class ContactState:
    uri: str
    status: str  # Reachable, Unreachable, Unknown, NonQualified
    rtt_ms: float | None

    def as_dict(self) -> dict[str, object]:
        return {"uri": self.uri, "status": self.status, "rtt_ms": self.rtt_ms}


@dataclass
class TrunkState:
    name: str
    trusted: bool
    dids: int
    endpoint: str = "Unknown"  # Asterisk's device state: Not in use, Unavailable, ...
    contacts: dict[str, ContactState] = field(default_factory=dict)
    registration: str | None = None  # None: the trunk does not register

    @property
    def up(self) -> bool:
        reachable = all(c.status in ("Reachable", "NonQualified") for c in self.contacts.values())
        registered = self.registration in (None, "Registered")
        return self.endpoint != "Missing" and reachable and registered

    def as_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "up": self.up,
            "trusted": self.trusted,
            "dids": self.dids,
            "endpoint": self.endpoint,
            "contacts": [c.as_dict() for c in self.contacts.values()],
            "registration": self.registration,
        }


def _rtt(value: str | None) -> float | None:
    try:
        usec = float(value or "")
    except ValueError:
        return None
    return round(usec / 1000, 3) if usec > 0 else None


def build_snapshot(
    inventory: Inventory,
    endpoint_details: dict[str, list[AmiEvent]],
    registrations: list[AmiEvent],
) -> dict[str, TrunkState]:
    """The snapshot from ``PJSIPShowEndpoint`` (per trunk) and
    ``PJSIPShowRegistrationsOutbound`` responses."""
    snap: dict[str, TrunkState] = {}
    regs = {
        m.get("ObjectName", ""): m.get("Status", "Unknown")
        for m in registrations
        if m.get("Event") == "OutboundRegistrationDetail"
    }
    for t in inventory.trunks:
        state = TrunkState(t.name, t.trusted, len(t.dids))
        details = endpoint_details.get(t.name)
        if details is None:
            state.endpoint = "Missing"  # not loaded in Asterisk: apply the config
        for m in details or []:
            if m.get("Event") == "EndpointDetail":
                state.endpoint = m.get("DeviceState", "Unknown")
            elif m.get("Event") == "ContactStatusDetail":
                uri = m.get("URI", "")
                state.contacts[uri] = ContactState(
                    uri, m.get("Status", "Unknown"), _rtt(m.get("RoundtripUsec"))
                )
        if t.registration is not None:
            state.registration = regs.get(t.name, "Missing")
        snap[t.name] = state
    return snap


def apply_event(snapshot: dict[str, TrunkState], event: AmiEvent) -> bool:
    """Update the snapshot from one AMI event; True if something changed."""
    kind = event.get("Event")
    if kind == "ContactStatus":
        state = snapshot.get(event.get("AOR", ""))
        if state is None:
            return False
        uri = event.get("URI", "")
        status = event.get("ContactStatus", "Unknown")
        if status == "Removed":
            return state.contacts.pop(uri, None) is not None
        status = {"Created": "Unknown", "Updated": "Unknown"}.get(status, status)
        new = ContactState(uri, status, _rtt(event.get("RoundtripUsec")))
        old = state.contacts.get(uri)
        if status == "Unknown" and old is not None:
            return False
        state.contacts[uri] = new
        return old != new
    if kind == "DeviceStateChange":
        device = event.get("Device", "")
        if not device.startswith("PJSIP/"):
            return False
        state = snapshot.get(device[6:])
        if state is None or state.endpoint == event.get("State"):
            return False
        state.endpoint = event.get("State", state.endpoint)
        return True
    return False


class TrunkMonitor:
    """Keeps the snapshot; 503 (``loaded`` false) until the first load."""

    def __init__(self, ami: AmiPort, inventory: Inventory) -> None:
        self.ami = ami
        self.inventory = inventory
        self.snapshot: dict[str, TrunkState] = {}
        self.loaded = False
        self._refreshing: asyncio.Task[None] | None = None
        self._again = False
        ami.subscribe(self.on_event, self.schedule_refresh)

    def reload_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        if self.ami.connected:
            self.schedule_refresh()

    async def refresh(self) -> None:
        details: dict[str, list[AmiEvent]] = {}
        for t in self.inventory.trunks:
            with contextlib.suppress(AmiError):  # "Unable to retrieve endpoint"
                details[t.name] = await self.ami.action("PJSIPShowEndpoint", Endpoint=t.name)
        registrations = await self.ami.action("PJSIPShowRegistrationsOutbound")
        self.snapshot = build_snapshot(self.inventory, details, registrations)
        self.loaded = True

    def schedule_refresh(self) -> None:
        """Refresh soon; an event during a refresh in flight gets a refresh of its own
        (the one in flight may have read the state before the event)."""
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh_logged())
        else:
            self._again = True

    async def _refresh_logged(self) -> None:
        while True:
            self._again = False
            try:
                await self.refresh()
            except (AmiError, TimeoutError) as exc:
                log.warning("trunk_status_refresh_failed", error=str(exc))
            if not self._again:
                return

    def on_event(self, event: AmiEvent) -> None:
        if not self.ami.connected:
            return  # FullyBooted comes before our login completes; the login refreshes
        kind = event.get("Event")
        if kind in ("Registry", "FullyBooted", "Reload"):
            # Registry events name the registrar URI, not our registration object:
            # one list action (about a millisecond) gives the exact state instead.
            self.schedule_refresh()
        elif apply_event(self.snapshot, event):
            log.info(
                "trunk_state_changed",
                event=kind,
                aor=event.get("AOR"),
                device=event.get("Device"),
                status=event.get("ContactStatus"),
            )

    def as_list(self) -> list[dict[str, object]]:
        return [
            self.snapshot[t.name].as_dict()
            for t in self.inventory.trunks
            if t.name in self.snapshot
        ]

    async def close(self) -> None:
        if self._refreshing is not None:
            self._refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._refreshing


async def status(ami: AmiPort, inventory: Inventory) -> list[TrunkState]:
    monitor = TrunkMonitor(ami, inventory)
    await monitor.refresh()
    return [monitor.snapshot[t.name] for t in inventory.trunks]


def status_table(states: list[TrunkState]) -> str:
    rows = [("trunk", "up", "endpoint", "contacts (rtt)", "registration", "dids")]
    for s in states:
        contacts = (
            ", ".join(
                f"{c.uri} {c.status}" + (f" {c.rtt_ms:.1f} ms" if c.rtt_ms is not None else "")
                for c in s.contacts.values()
            )
            or "-"
        )
        rows.append(
            (
                s.name,
                "yes" if s.up else "NO",
                s.endpoint,
                contacts,
                s.registration or "-",
                str(s.dids),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )
