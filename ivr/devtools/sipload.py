"""Many real calls with sipp at a steady rate, each call's final response logged.

For the edge's fault and flood tests and the cluster benchmark: sipp places calls from
the callers of a list to one DID at ``rate`` calls a second and writes one log line per
call with its final response (200 for answered, else the 4xx-6xx it got). A call that
gets no final response writes none; :class:`LoadResult` counts it as lost.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ivr.devtools.sipcall import _ERROR_CODES

_LINE = re.compile(r"^(\d+) (\d{3})$")


def scenario(did: str, headers: tuple[str, ...] = ()) -> str:
    extra = "".join(f"{h}\n" for h in headers)
    logged = '<action><log message="[call_number] {code}"/></action>'
    errors = "\n".join(
        f'  <recv response="{c}" optional="{"false" if i == len(_ERROR_CODES) - 1 else "true"}"'
        f' next="rejected">{logged.format(code=c)}</recv>'
        for i, c in enumerate(_ERROR_CODES)
    )
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<scenario name="ivr load call">
  <send retrans="500"><![CDATA[
INVITE sip:{did}@[remote_ip]:[remote_port] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
From: <sip:[field0]@[local_ip]:[local_port]>;tag=[pid]l[call_number]
To: <sip:{did}@[remote_ip]:[remote_port]>
Call-ID: [call_id]
CSeq: 1 INVITE
Contact: <sip:[field0]@[local_ip]:[local_port]>
Max-Forwards: 70
{extra}Content-Type: application/sdp
Content-Length: [len]

v=0
o=load 1 1 IN IP4 [local_ip]
s=-
c=IN IP4 [local_ip]
t=0 0
m=audio 9 RTP/AVP 0
a=rtpmap:0 PCMU/8000
a=sendrecv
  ]]></send>
  <label id="wait"/>
  <recv response="100" optional="true" next="wait"/>
  <recv response="180" optional="true" next="wait"/>
  <recv response="183" optional="true" next="wait"/>
  <recv response="200" optional="true" rrs="true" next="answered">{logged.format(code=200)}</recv>
{errors}
  <label id="rejected"/>
  <send><![CDATA[
ACK sip:{did}@[remote_ip]:[remote_port] SIP/2.0
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
  ]]></send>
  <nop next="end"/>
  <label id="answered"/>
  <send><![CDATA[
ACK [next_url] SIP/2.0
Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
[last_From:]
[last_To:]
[last_Call-ID:]
[routes]
CSeq: 1 ACK
Max-Forwards: 70
Content-Length: 0
  ]]></send>
  <recv request="BYE"/>
  <send><![CDATA[
SIP/2.0 200 OK
[last_Via:]
[last_From:]
[last_To:]
[last_Call-ID:]
[last_CSeq:]
Content-Length: 0
  ]]></send>
  <label id="end"/>
</scenario>
"""


@dataclass
class LoadResult:
    rate: float
    placed: int
    finals: dict[int, int] = field(default_factory=dict)  # call number -> final status
    seconds: float = 0.0

    def started_at(self, call_number: int) -> float:
        """When sipp placed the call, in seconds after the run began (steady rate)."""
        return (call_number - 1) / self.rate

    @property
    def statuses(self) -> Counter[int]:
        return Counter(self.finals.values())

    @property
    def lost(self) -> list[int]:
        return [n for n in range(1, self.placed + 1) if n not in self.finals]


async def run_load(
    work: Path,
    target: tuple[str, int],
    did: str,
    callers: list[str],
    rate: float,
    source_ip: str = "127.0.0.1",
    local_port: int = 0,
    headers: tuple[str, ...] = (),
    recv_timeout_ms: int = 15000,
) -> LoadResult:
    """Place ``len(callers)`` calls at ``rate`` a second; wait for all of them."""
    xml, inf, log = _prepare(work, did, headers, callers)
    bound = int(len(callers) / rate + recv_timeout_ms / 1000 + 30)
    args = [
        "sipp",
        f"{target[0]}:{target[1]}",
        "-sf",
        str(xml),
        "-inf",
        str(inf),
        "-r",
        str(rate),
        "-m",
        str(len(callers)),
        "-l",
        str(max(10, int(rate * 30))),
        "-i",
        source_ip,
        "-nostdin",
        "-recv_timeout",
        str(recv_timeout_ms),
        "-timeout",
        f"{bound}s",
        "-timeout_error",
        "-trace_logs",
        "-log_file",
        str(log),
        "-max_socket",
        "10000",
    ]
    if local_port:
        args += ["-p", str(local_port)]
    loop = asyncio.get_running_loop()
    started = loop.time()
    proc = await asyncio.create_subprocess_exec(
        *args,
        cwd=work,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    await proc.wait()
    result = LoadResult(rate, len(callers), seconds=loop.time() - started)
    for number, code in _read_log(log):
        result.finals.setdefault(number, code)
    return result


def _prepare(
    work: Path, did: str, headers: tuple[str, ...], callers: list[str]
) -> tuple[Path, Path, Path]:
    work.mkdir(parents=True, exist_ok=True)
    xml = work / "load.xml"
    xml.write_text(scenario(did, headers))
    inf = work / "callers.csv"
    inf.write_text("SEQUENTIAL\n" + "".join(f"{c};\n" for c in callers))
    log = work / "calls.log"
    log.unlink(missing_ok=True)
    return xml, inf, log


def _read_log(log: Path) -> list[tuple[int, int]]:
    if not log.exists():
        return []
    lines = log.read_text(errors="replace").splitlines()
    return [(int(m.group(1)), int(m.group(2))) for x in lines if (m := _LINE.match(x.strip()))]
