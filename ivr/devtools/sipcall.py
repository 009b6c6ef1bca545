"""Place one real SIP call with sipp, with any caller identity, and report what the caller saw.

Used by the tests (as a pytest fixture), by ``ivr call`` and by the README walk-through.
sipp (Debian package ``sip-tester``) sends the INVITE; this module writes the scenario,
listens for the RTP itself (the SDP offer points at a UDP socket opened here, so the
helper counts audio without sipp's media support), and parses sipp's message trace into
the responses the caller received, with their times.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from xml.sax.saxutils import escape

# Final responses the scenario accepts instead of 200 OK (each jumps to an ACK).
_ERROR_CODES = (
    400,
    401,
    403,
    404,
    405,
    408,
    410,
    480,
    481,
    484,
    486,
    487,
    488,
    500,
    501,
    502,
    503,
    504,
    600,
    603,
    604,
    606,
)


@dataclass(frozen=True)
class CallSpec:
    """Who calls which number, and how the INVITE presents the caller."""

    did: str
    caller: str = "0312345678"  # the From user part
    display: str | None = None  # From display name
    pai: str | None = None  # P-Asserted-Identity URI, e.g. "tel:+81312345678"
    privacy: str | None = None  # Privacy header, e.g. "id"
    rpid: str | None = None  # whole Remote-Party-ID header value
    anonymous: bool = False  # From: "<display or Anonymous>" <sip:anonymous@anonymous.invalid>
    headers: tuple[str, ...] = ()  # more header lines, as sent ("Privacy: id")
    source_ip: str = "127.0.0.1"
    target_host: str = "127.0.0.1"
    target_port: int = 15060
    max_seconds: float = 30.0


@dataclass
class Response:
    status: int
    at: float  # wall-clock seconds (time.time())
    has_sdp: bool


@dataclass
class CallResult:
    spec: CallSpec
    invite_at: float | None = None
    responses: list[Response] = field(default_factory=list)
    bye_received: bool = False
    bye_at: float | None = None
    rtp_packets: int = 0
    rtp_payload_bytes: int = 0
    rtp_first_at: float | None = None
    rtp_last_at: float | None = None
    sipp_exit: int | None = None
    sipp_output: str = ""

    @property
    def statuses(self) -> list[int]:
        return [r.status for r in self.responses]

    @property
    def final(self) -> int | None:
        finals = [r.status for r in self.responses if r.status >= 200]
        return finals[0] if finals else None

    @property
    def answered(self) -> bool:
        return 200 in self.statuses

    @property
    def audio_seconds(self) -> float:
        """Seconds of G.711 audio received (8000 bytes a second)."""
        return self.rtp_payload_bytes / 8000.0

    def as_dict(self) -> dict[str, object]:
        return {
            "did": self.spec.did,
            "responses": self.statuses,
            "final": self.final,
            "answered": self.answered,
            "bye_from_gateway": self.bye_received,
            "rtp_packets": self.rtp_packets,
            "audio_seconds": round(self.audio_seconds, 3),
        }


class _RtpCounter(asyncio.DatagramProtocol):
    def __init__(self, result: CallResult) -> None:
        self.result = result

    def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
        if len(data) < 12 or data[0] >> 6 != 2:  # not RTP version 2
            return
        now = time.time()
        r = self.result
        r.rtp_packets += 1
        r.rtp_payload_bytes += len(data) - 12 - 4 * (data[0] & 0x0F)
        r.rtp_first_at = r.rtp_first_at or now
        r.rtp_last_at = now


def _free_udp_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        port: int = s.getsockname()[1]
        return port


def scenario_xml(spec: CallSpec, rtp_host: str, rtp_port: int) -> str:
    if spec.anonymous:
        display = spec.display if spec.display is not None else "Anonymous"
        from_header = f'"{display}" <sip:anonymous@anonymous.invalid>'
        user = "anonymous"
    else:
        name = f'"{spec.display}" ' if spec.display is not None else ""
        from_header = f"{name}<sip:{spec.caller}@[local_ip]:[local_port]>"
        user = spec.caller
    extra = []
    if spec.pai:
        extra.append(f"P-Asserted-Identity: <{spec.pai}>")
    if spec.privacy:
        extra.append(f"Privacy: {spec.privacy}")
    if spec.rpid:
        extra.append(f"Remote-Party-ID: {spec.rpid}")
    extra.extend(spec.headers)
    headers = "".join(f"{h}\n" for h in extra)
    errors = "\n".join(
        f'  <recv response="{c}" optional="true" next="rejected"/>' for c in _ERROR_CODES
    )
    invite = f"""INVITE sip:{spec.did}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: {from_header};tag=[pid]ivr[call_number]
To: <sip:{spec.did}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:{user}@[local_ip]:[local_port]>
Max-Forwards: 70
{headers}Content-Type: application/sdp
Content-Length: [len]

v=0
o=ivr 1 1 IN IP4 {rtp_host}
s=-
c=IN IP4 {rtp_host}
t=0 0
m=audio {rtp_port} RTP/AVP 0 8
a=rtpmap:0 PCMU/8000
a=rtpmap:8 PCMA/8000
a=sendrecv
"""
    ack = f"""ACK sip:{spec.did}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Contact: <sip:{escape(user)}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""
    ack_2xx = f"""ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
[routes]
CSeq: 1 ACK
Contact: <sip:{escape(user)}@[local_ip]:[local_port]>
Max-Forwards: 70
Content-Length: 0
"""
    ok_bye = """SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
"""
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="ivr call">
  <send retrans="500"><![CDATA[
{invite}
  ]]></send>
  <label id="provisional"/>
  <recv response="100" optional="true" next="provisional"/>
  <recv response="180" optional="true" next="provisional"/>
  <recv response="183" optional="true" next="provisional"/>
{errors}
  <recv response="200" rrs="true"/>
  <send><![CDATA[
{ack_2xx}
  ]]></send>
  <recv request="BYE"/>
  <send><![CDATA[
{ok_bye}
  ]]></send>
  <nop next="end"/>
  <label id="rejected"/>
  <send><![CDATA[
{ack}
  ]]></send>
  <label id="end"/>
</scenario>
"""


_ENTRY = re.compile(
    r"^-+ (\d{4}-\d{2}-\d{2}\s+\d{2}:\d{2}:\d{2}(?:\.\d+)?)\s*\n"
    r"(UDP|TCP) message (sent|received)[^\n]*\n\s*\n([^\n]*)",
    re.MULTILINE,
)


def parse_messages(text: str, result: CallResult) -> None:
    """Fill ``result`` from sipp's ``-trace_msg`` file."""
    for m in _ENTRY.finditer(text):
        stamp, _, direction, first_line = m.groups()
        at = datetime.strptime(" ".join(stamp.split()), "%Y-%m-%d %H:%M:%S.%f").timestamp()
        if direction == "sent" and first_line.startswith("INVITE") and result.invite_at is None:
            result.invite_at = at
        elif direction == "received" and first_line.startswith("SIP/2.0 "):
            status = int(first_line.split()[1])
            body_start = m.end()
            chunk = text[body_start : body_start + 3000].split("\n-----", 1)[0]
            has_sdp = "application/sdp" in chunk.lower()
            result.responses.append(Response(status, at, has_sdp))
        elif direction == "received" and first_line.startswith("BYE "):
            result.bye_received = True
            result.bye_at = at


async def place_call(spec: CallSpec) -> CallResult:
    """Place the call and wait until it is over (bounded by ``spec.max_seconds``)."""
    sipp = shutil.which("sipp")
    if sipp is None:
        raise RuntimeError("sipp is missing: apt-get install sip-tester")
    result = CallResult(spec)
    loop = asyncio.get_running_loop()
    transport, _ = await loop.create_datagram_endpoint(
        lambda: _RtpCounter(result), local_addr=(spec.source_ip, 0)
    )
    rtp_port = transport.get_extra_info("sockname")[1]
    try:
        with tempfile.TemporaryDirectory(prefix="ivr-call-") as tmp:
            scen = Path(tmp) / "call.xml"
            scen.write_text(scenario_xml(spec, spec.source_ip, rtp_port))
            messages = Path(tmp) / "messages.log"
            timeout_s = max(1, int(spec.max_seconds))
            # The local port is picked free just before sipp binds it; another process
            # may take it in between (calls placed at once): then sipp cannot bind and
            # sends nothing, and the call is placed again on another port.
            for _attempt in range(3):
                args = [
                    sipp,
                    f"{spec.target_host}:{spec.target_port}",
                    "-sf",
                    str(scen),
                    "-m",
                    "1",
                    "-l",
                    "1",
                    "-nostdin",
                    "-i",
                    spec.source_ip,
                    "-p",
                    str(_free_udp_port(spec.source_ip)),
                    "-recv_timeout",
                    str(timeout_s * 1000),
                    "-timeout",
                    f"{timeout_s + 5}s",
                    "-timeout_error",
                    "-trace_msg",
                    "-message_file",
                    str(messages),
                ]
                proc = await asyncio.create_subprocess_exec(
                    *args,
                    cwd=tmp,
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT,
                )
                try:
                    async with asyncio.timeout(timeout_s + 15):
                        out, _ = await proc.communicate()
                except TimeoutError:
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    out, _ = await proc.communicate()
                sent = messages.exists() and messages.stat().st_size > 0
                if sent or "bind" not in out.decode(errors="replace").lower():
                    break
            result.sipp_exit = proc.returncode
            result.sipp_output = out.decode(errors="replace")[-2000:]
            if messages.exists():
                parse_messages(messages.read_text(errors="replace"), result)
        # Let the last RTP packets already in flight land.
        await asyncio.sleep(0.05)
    finally:
        transport.close()
    return result
