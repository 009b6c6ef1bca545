"""The local Kamailio edge: Debian's ``kamailio`` package, run in the foreground by us.

Its config is generated (``ivr.edge.render``) into a run directory outside the
repository (``edge.run_dir``, by default ``<pbx cache>/edge``), together with its control
socket, pid file and log. A changed inventory or node list is reloaded without a
restart (``permissions.addressReload``, ``dispatcher.reload`` over ``kamcmd``).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

from ivr.clibase import CliError
from ivr.config import Settings
from ivr.devtools.procs import pid_from_file, spawn, wait_gone
from ivr.edge.render import render as render_edge
from ivr.edge.render import write as write_edge
from ivr.trunks import Inventory


class EdgeError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"local edge: {message}")


def _say(msg: str) -> None:
    print(f"edge: {msg}", flush=True)


def run_dir(settings: Settings) -> Path:
    if settings.edge.run_dir:
        return Path(settings.edge.run_dir)
    return settings.pbx.cache_path / "edge"


class LocalEdge:
    def __init__(
        self, settings: Settings, inventory: Inventory, say: Callable[[str], None] = _say
    ) -> None:
        self.settings = settings
        self.inventory = inventory
        self.say = say
        self.dir = run_dir(settings)
        self.pidfile = self.dir / "edge.pid"  # ours (-DD: the main process)
        self.log = self.dir / "kamailio.log"
        self.ctl = self.dir / "kamailio.ctl"
        self._proc: subprocess.Popen[bytes] | None = None  # when started by this process

    def render(self) -> list[str]:
        files = render_edge(self.settings, self.inventory, str(self.dir))
        return write_edge(files, self.dir)

    def pid(self) -> int | None:
        return pid_from_file(self.pidfile, b"kamailio")

    def up(self, timeout: float = 15.0) -> int:
        """(Re)start Kamailio on freshly rendered config; returns its pid."""
        if shutil.which("kamailio") is None:
            raise EdgeError("kamailio is missing: apt-get install kamailio")
        if self.pid() is not None:
            self.down()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.render()
        e = self.settings.edge
        for port in (e.sip_port, e.node_port):
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
                try:
                    s.bind((e.host, port))
                except OSError:
                    raise EdgeError(f"{e.host}:{port} (udp) is already in use") from None
        check = subprocess.run(
            ["kamailio", "-c", "-f", str(self.dir / "kamailio.cfg")],
            capture_output=True,
            text=True,
            check=False,
        )
        if check.returncode != 0:
            tail = " | ".join(check.stderr.strip().splitlines()[-3:])
            raise EdgeError(f"kamailio rejected its config: {tail}")
        self.ctl.unlink(missing_ok=True)
        started = time.monotonic()
        cfg = str(self.dir / "kamailio.cfg")
        proc = spawn(
            ["kamailio", "-DD", "-E", "-f", cfg, "-Y", str(self.dir), "-m", "64", "-M", "8"],
            self.log,
        )
        self._proc = proc
        self.pidfile.write_text(str(proc.pid))
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                last = self.log.read_text(errors="replace").strip().splitlines()[-3:]
                raise EdgeError(f"kamailio exited with {proc.returncode}: {' | '.join(last)}")
            if self.ctl.exists() and self.rpc("core.version") is not None:
                self.say(
                    f"kamailio ready in {time.monotonic() - started:.1f} s: carriers send to "
                    f"{e.host}:{e.sip_port}, nodes hear from {e.host}:{e.node_port}"
                )
                return proc.pid
            time.sleep(0.1)
        self.down()
        raise EdgeError(f"kamailio did not answer on {self.ctl} within {timeout:.0f} s")

    def down(self, timeout: float = 10.0) -> bool:
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        for sig in (signal.SIGTERM, signal.SIGKILL):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, sig)
            if wait_gone(pid, timeout):
                if self._proc is not None and self._proc.pid == pid:
                    self._proc.wait()
                    self._proc = None
                self.pidfile.unlink(missing_ok=True)
                self.say("kamailio stopped")
                return True
        raise EdgeError(f"kamailio pid {pid} did not stop")

    def rpc(self, *command: str) -> str | None:
        """One RPC over the control socket (``kamcmd``); None if Kamailio does not answer."""
        try:
            result = subprocess.run(
                ["kamcmd", "-s", f"unix:{self.ctl}", *command],
                capture_output=True,
                text=True,
                timeout=5,
                check=False,
            )
        except subprocess.TimeoutExpired:
            return None
        return result.stdout if result.returncode == 0 else None

    def reload(self) -> list[str]:
        """Rewrite the trunk and node tables and have the running Kamailio read them."""
        changed = self.render()
        if self.pid() is None:
            return changed
        if "kamailio.cfg" in changed:
            raise EdgeError("the [edge] settings changed: restart it (`ivr edge up`)")
        for name, command in (
            ("db/address", "permissions.addressReload"),
            ("dispatcher.list", "dispatcher.reload"),
        ):
            if name in changed and self.rpc(command) is None:
                raise EdgeError(f"kamailio refused {command}")
        return changed

    def nodes(self) -> list[dict[str, str]]:
        """The dispatcher's view of each node: its URI, duid and state flags
        (``AP`` active and probed, ``IP``/``TP`` inactive or trying)."""
        out = self.rpc("dispatcher.list") or ""
        nodes: list[dict[str, str]] = []
        current: dict[str, str] = {}
        for raw in out.splitlines():
            line = raw.strip()
            if line.upper().startswith("URI:"):
                current = {"uri": line.split(":", 1)[1].strip()}
                nodes.append(current)
            elif line.upper().startswith("FLAGS:") and current:
                current["flags"] = line.split(":", 1)[1].strip()
            elif line.upper().startswith("DUID:") and current:
                current["name"] = line.split(":", 1)[1].strip()
        return nodes
