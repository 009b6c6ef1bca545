"""The Node.js signature check in docs/portal-integration.md (examples/node) accepts the
gateway's signature and refuses a changed body, a wrong secret and an old timestamp."""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

from ivr.callbacks import sign

SCRIPT = Path(__file__).parents[2] / "examples" / "node" / "verify-callback.js"
SECRET = "whsec_cG9ydGFsLWEtc2VjcmV0LWtleS0x"


def run(secret: str, headers: dict[str, str], body: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["node", str(SCRIPT), secret, json.dumps(headers)],
        input=body.decode(),
        capture_output=True,
        text=True,
        timeout=20,
        check=False,
    )


def test_node_checks_the_gateways_signature() -> None:
    body = json.dumps(
        {"type": "verification.verified", "data": {"id": "vrf_x", "status": "verified"}},
        ensure_ascii=False,
    ).encode()
    ts = int(time.time())
    headers = {
        "webhook-id": "evt_1",
        "webhook-timestamp": str(ts),
        # Two secrets, as during a rotation: either one suffices.
        "webhook-signature": sign(
            ["whsec_b3RoZXItc2VjcmV0LWtleS0xMjM=", SECRET], "evt_1", ts, body
        ),
    }
    ok = run(SECRET, headers, body)
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout.strip() == "verification.verified verified"
    assert run(SECRET, headers, body.replace(b"verified", b"expired")).returncode == 1
    assert run("whsec_d3Jvbmctc2VjcmV0LWtleS0x", headers, body).returncode == 1
    old = ts - 3600
    stale = {
        **headers,
        "webhook-timestamp": str(old),
        "webhook-signature": sign([SECRET], "evt_1", old, body),
    }
    refused = run(SECRET, stale, body)
    assert refused.returncode == 1 and "timestamp" in refused.stderr
