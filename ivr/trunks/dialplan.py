"""``extensions.conf``: every DID to the gateways' Stasis apps, and the prompt's release.

Asterisk publishes a new channel snapshot for every dialplan priority a call runs and a
VarSet message for every variable it sets, and each goes to every Stasis subscriber
(the AMI, the ARI app, the channel cache). At hundreds of calls a second that work shows
in Asterisk's CPU (docs/benchmarks.md), so the ``minimal`` profile's dialplan runs as few
priorities as it can and sets no variable on the common path: the DID and the trunk ride
in the extension and the context, the identity headers in the Stasis() arguments
(:mod:`ivr.stasis.handoff`). An answered call runs 7 priorities and sets no variable
of its own; the ``stock`` profile's dialplan (the form before, kept for the benchmark's
comparison) runs 16 and sets 7 (19 and 9 with the release context of before).
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.stasis import handoff, release
from ivr.trunks.inventory import Inventory

EDGE_ENDPOINT = "ivr-edge"
TRUNK_HEADER = "X-Ivr-Trunk"  # set by the edge, removed from whatever a carrier sent
# Channel variables the older dialplan sets for the StasisStart event (ari.conf).
CHANNEL_VARS = ("SIP_PAI", "SIP_PRIVACY", "SIP_RPID", "SIP_FROM", "CID_NUMPRES")
# Without any connected gateway every Stasis() fails at once and the caller is released
# (34: no circuit available) instead of being left ringing; the absolute timeout ends any
# channel the gateway lost track of.
GUARD_SECONDS = 60


def extensions_conf(settings: Settings, inventory: Inventory) -> str:
    lean = settings.asterisk.profile == "minimal"
    out = ["[general]\nstatic = yes\nwriteprotect = yes\n"]
    out += _lean_entry(settings, inventory) if lean else _stock_entry(settings, inventory)
    # A gateway took the call and let it go on (it never does): end it.
    out.append("[ivr-done]\nexten => s,1,Hangup()\n")
    # The prompt and the release, once the gateway has committed the outcome.
    out.append(release.dialplan(release.prompts_dir(settings), settings.calls.prompt_timeout))
    if settings.edge.enabled:
        out.append(_edge_entry())
    return "\n".join(out)


def _handoff(apps: tuple[str, ...], args: str) -> str:
    """Offer the call to each app in turn. Stasis() fails at once (STASISSTATUS=FAILED)
    for an app with no WebSocket connected, so a dead gateway costs no call."""
    return "".join(
        f" same => n,Stasis({app},{args})\n"
        ' same => n,GotoIf($["${STASISSTATUS}" != "FAILED"]?ivr-done,s,1)\n'
        for app in apps
    )


def _to_gateways(
    settings: Settings,
    context: str,
    exten: str,
    args: str,
    order: tuple[str, str],
    before: str = "",
) -> str:
    """``context`` hands the call to the gateways (after the priorities ``before``): at
    a random one first when there are several and ``spread_calls`` is on, each order in
    a context of its own named ``<order[0]><n><order[1]>``."""
    apps = settings.asterisk.stasis_apps
    head = f"[{context}]\nexten => {exten},1,Set(TIMEOUT(absolute)={GUARD_SECONDS})\n" + before
    if len(apps) > 1 and settings.asterisk.spread_calls:
        pick = f"{order[0]}${{RAND(1,{len(apps)})}}{order[1]}"
        first = f" same => n,Goto({pick},${{EXTEN}},1)\n"
        rotations = "".join(
            f"\n[{order[0]}{i + 1}{order[1]}]\n"
            f"exten => {exten},1,NoOp(gateway order {i + 1})\n"
            + _handoff(apps[i:] + apps[:i], args)
            + " same => n,Hangup(34)\n"
            for i in range(len(apps))
        )
        return head + first + rotations
    return head + _handoff(apps, args) + " same => n,Hangup(34)\n"


def _lean_entry(settings: Settings, inventory: Inventory) -> list[str]:
    """Per trunk: each DID form jumps to ``ivr-in-<trunk>`` with the DID in E.164 as the
    extension, which hands it over with the identity read inline."""
    out = []
    for t in inventory.trunks:
        lines = [f"[from-{t.name}]"]
        for d in t.dids:
            # Carriers send the DID nationally (0312345678), in E.164, or as 81...
            for form in (d.national, d.number, d.number[1:]):
                lines.append(f"exten => {form},1,Goto(ivr-in-{t.name},{d.number},1)")
        out.append("\n".join(lines) + "\n")
        args = f"${{EXTEN}},{t.name},{handoff.dialplan_args()}"
        # A trunk's name is letters, digits, - and _: "ivr-in-" and "ivr-order<n>-"
        # contexts of different trunks never share a name.
        order = ("ivr-order", f"-{t.name}")
        out.append(_to_gateways(settings, f"ivr-in-{t.name}", "_+X.", args, order))
    return out


def _stock_entry(settings: Settings, inventory: Inventory) -> list[str]:
    """The form before the minimal profile: the DID and trunk in variables, the identity
    headers captured into channel variables by a Gosub (ari.conf passes them on)."""
    out = [
        # An absent header reads as empty here (over REST it would be an HTTP 500).
        "[ivr-capture-ids]\n"
        "exten => s,1,Set(SIP_PAI=${PJSIP_HEADER(read,P-Asserted-Identity)})\n"
        # Every Privacy header, joined by spaces (a ";" would start a comment).
        " same => n,Set(SIP_PRIVACY=${PJSIP_HEADER(read,Privacy,1)} "
        "${PJSIP_HEADER(read,Privacy,2)} ${PJSIP_HEADER(read,Privacy,3)})\n"
        " same => n,Set(SIP_RPID=${PJSIP_HEADER(read,Remote-Party-ID)})\n"
        " same => n,Set(SIP_FROM=${PJSIP_HEADER(read,From)})\n"
        " same => n,Set(CID_NUMPRES=${CALLERID(num-pres)})\n"
        " same => n,Return()\n",
        _to_gateways(
            settings,
            "ivr-to-gateway",
            "s",
            "${IVR_DID},${IVR_TRUNK}",
            ("ivr-gateways-", ""),
            " same => n,Gosub(ivr-capture-ids,s,1)\n",
        ),
    ]
    for t in inventory.trunks:
        lines = [f"[from-{t.name}]"]
        for d in t.dids:
            for form in (d.national, d.number, d.number[1:]):
                lines.append(
                    f"exten => {form},1,Set(IVR_DID={d.number})\n"
                    f" same => n,Set(IVR_TRUNK={t.name})\n"
                    " same => n,Goto(ivr-to-gateway,s,1)"
                )
        out.append("\n".join(lines) + "\n")
    return out


def _edge_entry() -> str:
    """Behind Kamailio: the trunk the edge identified, checked against the inventory (a
    trunk name is letters, digits, - and _; anything else never names a context)."""
    read = f"${{FILTER(a-zA-Z0-9_\\-,${{PJSIP_HEADER(read,{TRUNK_HEADER})}})}}"
    edge = [f"[from-{EDGE_ENDPOINT}]"]
    for pattern in ("_X.", "_+X."):
        edge.append(
            f"exten => {pattern},1,Set(IVR_EDGE_TRUNK={read})\n"
            " same => n,GotoIf(${DIALPLAN_EXISTS(from-${IVR_EDGE_TRUNK},${EXTEN},1)}"
            "?from-${IVR_EDGE_TRUNK},${EXTEN},1)\n"
            " same => n,Hangup(1)"
        )
    return "\n".join(edge) + "\n"
