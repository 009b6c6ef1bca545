"""The whole topology on one machine: Kamailio, N Asterisk nodes, M gateways, PostgreSQL.

``ivr cluster up`` starts, in order, the private PostgreSQL (when ``store.url`` points at
a loopback port), every node of ``[[nodes]]`` (chroot instances of the local Asterisk),
the Kamailio edge, then one ``ivr serve`` per Stasis app of ``asterisk.apps``, each on
its own API port (``api.port``, ``api.port + 1``, ...). ``down`` stops them in reverse.
Everything listens on loopback; the embedded layout is ``ivr/data/cluster.toml``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from ivr.clibase import CliError
from ivr.config import Settings
from ivr.devtools.edge import LocalEdge, run_dir
from ivr.devtools.pbx import LocalPbx
from ivr.devtools.postgres import LocalPostgres, default_directory
from ivr.devtools.procs import pid_from_file, spawn, wait_gone
from ivr.trunks import Inventory


class ClusterError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"cluster: {message}")


def _say(msg: str) -> None:
    print(f"cluster: {msg}", flush=True)


def node_settings(settings: Settings, name: str) -> Settings:
    """The settings as one node's local Asterisk sees them: its ports, its instance."""
    for node_name, asterisk in settings.asterisk_nodes:
        if node_name == name:
            node = next(n for n in settings.nodes if n.name == name)
            return dataclasses.replace(
                settings,
                asterisk=asterisk,
                pbx=dataclasses.replace(settings.pbx, instance=node.pbx_instance),
            )
    raise ClusterError(f"no node named {name!r} in [[nodes]]")


@dataclass
class Gateway:
    app: str
    port: int
    pidfile: Path
    log: Path
    proc: subprocess.Popen[bytes] | None = None  # when started by this process

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def pid(self) -> int | None:
        return pid_from_file(self.pidfile)

    def ready(self) -> dict[str, object] | None:
        try:
            with urllib.request.urlopen(f"{self.url}/readyz", timeout=1) as resp:
                body: dict[str, object] = json.loads(resp.read())
                return body
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read() or b"{}")
            return body
        except (OSError, ValueError):
            return None


class LocalCluster:
    def __init__(
        self,
        settings: Settings,
        inventory: Inventory,
        config_path: Path,
        env: Mapping[str, str] | None = None,
        say: Callable[[str], None] = _say,
    ) -> None:
        if not settings.nodes:
            raise ClusterError("the settings list no [[nodes]]")
        self.settings = settings
        self.inventory = inventory
        self.config_path = config_path
        self.env = dict(env or {})
        self.say = say
        self.dir = run_dir(settings).parent / "cluster"
        # Without [edge] the nodes take calls directly (the benchmark's baseline).
        self.edge = LocalEdge(settings, inventory, say) if settings.edge.enabled else None
        self.nodes = {
            n.name: LocalPbx(node_settings(settings, n.name), inventory, say)
            for n in settings.nodes
        }
        self.gateways = [
            Gateway(app, settings.api.port + i, self.dir / f"{app}.pid", self.dir / f"{app}.log")
            for i, app in enumerate(settings.asterisk.stasis_apps)
        ]

    # -- PostgreSQL -----------------------------------------------------------------

    def _postgres(self) -> LocalPostgres | None:
        """The private PostgreSQL when store.url points at a loopback port, else None."""
        url = self.env.get("IVR_STORE_URL") or self.settings.store.url
        if not url:
            return None
        parts = urlsplit(url)
        if parts.hostname not in ("127.0.0.1", "localhost") or self.env.get("IVR_STORE_URL"):
            return None  # someone else's database (or the tests' own): not ours to start
        return LocalPostgres(default_directory("cluster"), parts.port or 5432)

    # -- up / down / status -----------------------------------------------------------

    def up(self, timeout: float = 60.0) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        pg = self._postgres()
        if pg is not None:
            self.say(f"postgresql: {pg.up()}")
        for node in self.nodes.values():
            node.up()
        if self.edge is not None:
            self.edge.up()
        for gw in self.gateways:
            self.start_gateway(gw)
        deadline = time.monotonic() + timeout
        for gw in self.gateways:
            while (state := gw.ready()) is None or not state.get("ready"):
                if gw.pid() is None:
                    tail = gw.log.read_text(errors="replace").strip().splitlines()[-3:]
                    raise ClusterError(f"gateway {gw.app} exited: {' | '.join(tail)}")
                if time.monotonic() > deadline:
                    raise ClusterError(f"gateway {gw.app} not ready after {timeout:.0f} s")
                time.sleep(0.2)
            self.say(f"gateway {gw.app} ready at {gw.url} (log {gw.log})")
        e, first = self.settings.edge, self.settings.asterisk_nodes[0][1]
        sip = f"{e.host}:{e.sip_port}" if self.edge else f"{first.host}:{first.sip_port}"
        self.say(f"up: carriers send to {sip}; API at {self.gateways[0].url}")

    def start_gateway(self, gw: Gateway) -> None:
        if gw.pid() is not None:
            self.stop_gateway(gw)
        env = {
            **os.environ,
            "IVR_CONFIG": str(self.config_path),
            "IVR_ASTERISK_APP": gw.app,
            "IVR_API_PORT": str(gw.port),
            "IVR_LOG_FORMAT": "json",
            **self.env,
        }
        proc = spawn([sys.executable, "-m", "ivr", "serve"], gw.log, env, append=True)
        gw.proc = proc
        gw.pidfile.write_text(str(proc.pid))

    def stop_gateway(self, gw: Gateway, sig: signal.Signals = signal.SIGTERM) -> None:
        pid = gw.pid()
        if pid is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)
        if not wait_gone(pid, 10.0):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            wait_gone(pid, 5.0)
        if gw.proc is not None:
            gw.proc.wait(5)
            gw.proc = None
        gw.pidfile.unlink(missing_ok=True)

    def down(self) -> None:
        for gw in self.gateways:
            self.stop_gateway(gw)
        if self.edge is not None:
            self.edge.down()
        for node in self.nodes.values():
            node.down()
        pg = self._postgres()
        if pg is not None and pg.down():
            self.say("postgresql stopped")

    def status(self) -> dict[str, object]:
        return {
            "edge": {
                "pid": self.edge.pid() if self.edge else None,
                "nodes": self.edge.nodes() if self.edge and self.edge.pid() else [],
            },
            "nodes": {
                name: {"pid": pbx.pid(), "ari": pbx.ari_info() is not None}
                for name, pbx in self.nodes.items()
            },
            "gateways": {
                gw.app: {"pid": gw.pid(), "url": gw.url, "readyz": gw.ready()}
                for gw in self.gateways
            },
        }
