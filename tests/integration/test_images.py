"""The container images, built offline, and the compose stack: a real call verifies.

`make images`'s code builds the images (bases from debootstrap and the local Asterisk's
chroot, `docker import`; dockerd started if none answers). The compose file of `docker/`
runs on its own ports with a `.env` of secrets; the gateway container's API creates a
verification and a sipp call into the Asterisk container verifies it.
"""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ivr.config import Settings
from ivr.devtools.images import ImageBuilder, docker_binary
from ivr.devtools.sipcall import CallSpec, place_call
from ivr.trunks import Inventory
from tests.portal import wait_ready

REPO = Path(__file__).resolve().parents[2]
SIP, HTTP, AMI, API, PG = 27060, 27088, 27038, 27080, 27432
TOKEN = "compose-portal-token-1"
PROJECT = "ivrtest"

SETTINGS = f"""inventory = "trunks.toml"

[asterisk]
sip_port = {SIP}
http_port = {HTTP}
ami_port = {AMI}
rtp_start = 27100
rtp_end = 27400
app = "phone-auth-compose"

[calls]
asterisk_prompts_dir = "/ivr/docker/sounds"

[api]
port = {API}
"""

PORTALS = json.dumps(
    [
        {
            "name": "portal",
            "tokens": [TOKEN],
            "callback_hosts": ["127.0.0.1"],
            "callback_secrets": ["whsec_Y29tcG9zZS10ZXN0LXNlY3JldC0x"],
        }
    ]
)
ENV = (
    "IVR_ASTERISK_ARI_PASSWORD=compose-ari-secret\n"
    "IVR_ASTERISK_AMI_PASSWORD=compose-ami-secret\n"
    "IVR_API_OPS_TOKENS=compose-ops-token\n"
    f"IVR_PORTALS={PORTALS}\n"
    # The postgres profile: the database the container creates, and the gateway on it.
    "PG_PASSWORD_FILE=/run/ivr-pg-password\n"
    f"PG_PORT={PG}\n"
    f"IVR_STORE_URL=postgresql://ivr:compose-db-secret@127.0.0.1:{PG}/ivr\n"
)


def compose() -> list[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is missing (make deps installs it)"
    return [tool, "-p", PROJECT]


@pytest.fixture(scope="module")
def images(test_settings: Settings, test_inventory: Inventory) -> dict[str, str]:
    return ImageBuilder(test_settings, test_inventory).build()


@pytest.fixture
def stack(images: dict[str, str], tmp_path: Path) -> Iterator[Path]:
    shutil.copy(REPO / "docker" / "compose.yaml", tmp_path / "compose.yaml")
    (tmp_path / "conf").mkdir()
    (tmp_path / "conf" / "ivr.toml").write_text(SETTINGS)
    shutil.copy(REPO / "docker" / "conf" / "trunks.toml", tmp_path / "conf" / "trunks.toml")
    (tmp_path / ".env").write_text(ENV)
    (tmp_path / "pg-password").write_text("compose-db-secret\n")
    # The password as a mounted secret file (PG_PASSWORD_FILE).
    text = (tmp_path / "compose.yaml").read_text()
    text = text.replace(
        "      - postgres:/var/lib/ivr-postgres\n",
        "      - postgres:/var/lib/ivr-postgres\n      - ./pg-password:/run/ivr-pg-password:ro\n",
    )
    (tmp_path / "compose.yaml").write_text(text)
    base = [*compose(), "-f", str(tmp_path / "compose.yaml"), "--profile", "postgres"]
    up = subprocess.run(
        [*base, "up", "-d"], capture_output=True, text=True, check=False, cwd=tmp_path
    )
    try:
        assert up.returncode == 0, up.stdout + up.stderr
        yield tmp_path
    finally:
        logs = subprocess.run([*base, "logs", "--no-color"], capture_output=True, text=True)
        (tmp_path / "compose.log").write_text(logs.stdout + logs.stderr)
        subprocess.run([*base, "down", "-v", "-t", "10"], capture_output=True, check=False)


async def test_compose_stack_verifies_a_real_call(stack: Path) -> None:
    """Asterisk, the gateway on PostgreSQL, PostgreSQL: all three containers."""
    url = f"http://127.0.0.1:{API}"
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession(headers=auth) as http:
        ready = await wait_ready(url, tries=300)
        assert ready, "the gateway container never got ready"
        async with http.post(
            f"{url}/v1/verifications", json={"phone_number": "090-2222-3333"}
        ) as resp:
            assert resp.status == 201, await resp.text()
            created = await resp.json()
        dial = created["dial_number"]["national"].replace("-", "")
        result = await place_call(
            CallSpec(did=dial, caller="09022223333", target_port=SIP, max_seconds=20)
        )
        async with http.get(f"{url}/v1/verifications/{created['id']}?wait=5") as resp:
            body = await resp.json()
    assert body["status"] == "verified"
    logs = subprocess.run(
        [*compose(), "-f", str(stack / "compose.yaml"), "logs", "--no-color", "gateway"],
        capture_output=True,
        text=True,
    ).stdout
    assert f"127.0.0.1:{PG}/ivr" in logs  # the gateway ran on the PostgreSQL container
    assert result.audio_seconds > 1.0  # the prompt the render service put in the volume
    # The gateway runs as its own user on a read-only root, and reports healthy.
    docker = docker_binary()
    ps = subprocess.run(
        [docker, "ps", "--filter", f"name={PROJECT}_gateway", "--format", "{{.Status}}"],
        capture_output=True,
        text=True,
    ).stdout
    inspect = subprocess.run(
        [
            docker,
            "inspect",
            "--format",
            "{{.Config.User}} {{.HostConfig.ReadonlyRootfs}}",
            f"{PROJECT}_gateway_1",
        ],
        capture_output=True,
        text=True,
    ).stdout.split()
    assert inspect == ["ivr", "true"]
    # Asterisk runs on jemalloc, as the chroot's does (docs/operations.md).
    maps = subprocess.run(
        [docker, "exec", f"{PROJECT}_asterisk_1", "cat", "/proc/1/maps"],
        capture_output=True,
        text=True,
    ).stdout
    assert "/libjemalloc.so.2" in maps
    for _ in range(30):
        if "healthy" in ps:
            break
        await asyncio.sleep(1)
        ps = subprocess.run(
            [docker, "ps", "--filter", f"name={PROJECT}_gateway", "--format", "{{.Status}}"],
            capture_output=True,
            text=True,
        ).stdout
    assert "(healthy)" in ps


def test_the_kamailio_image_runs_the_generated_edge_config(
    images: dict[str, str], tmp_path: Path
) -> None:
    settings = tmp_path / "edge.toml"
    settings.write_text(
        "[edge]\nenabled = true\nsip_port = 27070\nnode_port = 27071\n"
        '[[nodes]]\nname = "a"\nsip_port = 27061\nhttp_port = 27089\nami_port = 27039\n'
    )
    rendered = subprocess.run(
        [
            sys.executable,
            "-m",
            "ivr",
            "--config",
            str(settings),
            "trunks",
            "render",
            "--out",
            str(tmp_path / "out"),
            "--edge-base",
            "/etc/kamailio-ivr",
        ],
        capture_output=True,
        text=True,
    )
    assert rendered.returncode == 0, rendered.stderr
    check = subprocess.run(
        [
            docker_binary(),
            "run",
            "--rm",
            "-v",
            f"{tmp_path / 'out' / 'kamailio'}:/etc/kamailio-ivr",
            images["kamailio"],
            "kamailio",
            "-c",
            "-f",
            "/etc/kamailio-ivr/kamailio.cfg",
        ],
        capture_output=True,
        text=True,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "udp: 127.0.0.1 [127.0.0.1]:27070" in check.stdout + check.stderr
