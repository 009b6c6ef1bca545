"""The local Asterisk: Debian unstable's package in a debootstrap chroot.

Asterisk is not packaged for Debian 12, and no Docker engine runs on our machines, so
development and tests run Debian unstable's Asterisk in a chroot kept in a cache
directory outside the repository (about 540 MB). It is built once, reused while the
package list is the same, and rebuilt when that list changes (the directory name
carries a hash of it). Each *instance* (``dev``, ``test``) has its own config, ports
and run directory inside the rootfs, so several can run side by side.

Everything here needs root (debootstrap, mount, chroot).
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ivr.clibase import CliError
from ivr.config import Settings
from ivr.devtools.procs import alive, pid_from_file, spawn
from ivr.trunks import Inventory, render

PACKAGES = ("asterisk", "asterisk-core-sounds-en-wav", "libjemalloc2")
# The minimal profile runs Asterisk on jemalloc (LD_PRELOAD): with glibc's allocator its
# RSS followed the most calls it had ever held at once (each stall of the machine raised
# it for good: +9.5 to +12.6 % between the 20,000th and the 100,000th call of a soak),
# while jemalloc hands freed pages back after about ten seconds (docs/benchmarks.md).
JEMALLOC = "libjemalloc.so.2"
DEFAULT_MIRROR_FALLBACK = "http://deb.debian.org/debian"


class PbxError(CliError):
    """The local Asterisk could not be provisioned, started or stopped."""

    def __init__(self, message: str) -> None:
        super().__init__(f"local asterisk: {message}")


@dataclass(frozen=True)
class PbxStatus:
    running: bool
    pid: int | None
    ari_ready: bool
    version: str | None
    rootfs: Path

    def as_dict(self) -> dict[str, object]:
        return {
            "running": self.running,
            "pid": self.pid,
            "ari_ready": self.ari_ready,
            "version": self.version,
            "rootfs": str(self.rootfs),
        }


def _version(info: dict[str, Any]) -> str:
    system = info.get("system")
    return str(system.get("version")) if isinstance(system, dict) else "unknown"


def _say(msg: str) -> None:
    print(f"pbx: {msg}", flush=True)


class LocalPbx:
    """Provision, start, stop and inspect one instance of the chrooted Asterisk."""

    def __init__(
        self, settings: Settings, inventory: Inventory, say: Callable[[str], None] = _say
    ) -> None:
        self.settings = settings
        self.inventory = inventory
        self.say = say
        self.cache = settings.pbx.cache_path
        key = f"{settings.pbx.suite}:{','.join(sorted(PACKAGES))}"
        self.rootfs = self.cache / f"rootfs-{hashlib.sha256(key.encode()).hexdigest()[:12]}"
        self.instance = settings.pbx.instance
        self.inside = f"/ivr/{self.instance}"  # the instance's directory as Asterisk sees it
        self.base = self.rootfs / self.inside.lstrip("/")
        self.pidfile = self.cache / "run" / f"{self.instance}.pid"
        self.console_log = self.cache / "run" / f"{self.instance}.log"
        self._proc: subprocess.Popen[bytes] | None = None  # when started by this process

    # -- the rootfs -------------------------------------------------------------------

    def _mirror(self) -> str:
        if self.settings.pbx.mirror:
            return self.settings.pbx.mirror
        # The Debian mirror this machine's apt already uses (deb822 or one-line format).
        for src in sorted(Path("/etc/apt").glob("sources.list.d/*.sources")) + [
            Path("/etc/apt/sources.list")
        ]:
            with contextlib.suppress(OSError):
                for line in src.read_text().splitlines():
                    words = line.replace("URIs:", " ").split()
                    for w in words:
                        if w.startswith("http") and w.rstrip("/").endswith("/debian"):
                            return w
        return DEFAULT_MIRROR_FALLBACK

    def ensure_rootfs(self) -> bool:
        """Build the rootfs unless a complete one exists. Returns True if it was built."""
        marker = self.rootfs / ".ivr-complete"
        if marker.exists():
            return False
        if os.geteuid() != 0:
            raise PbxError("provisioning the local Asterisk needs root (debootstrap, chroot)")
        if shutil.which("debootstrap") is None:
            raise PbxError("debootstrap is missing: apt-get install debootstrap")
        self.cache.mkdir(parents=True, exist_ok=True)
        partial = self.rootfs.with_name(self.rootfs.name + ".partial")
        if partial.exists():
            self._unmount(partial)
            shutil.rmtree(partial)
        mirror = self._mirror()
        self.say(f"building the Asterisk rootfs in {self.rootfs} from {mirror} (about a minute)")
        started = time.monotonic()
        cmd = [
            "debootstrap",
            "--variant=minbase",
            f"--include={','.join(PACKAGES)}",
            self.settings.pbx.suite,
            str(partial),
            mirror,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            tail = (result.stdout + result.stderr).strip().splitlines()[-3:]
            raise PbxError(f"debootstrap failed (exit {result.returncode}): {' | '.join(tail)}")
        (partial / ".ivr-complete").write_text(json.dumps({"packages": PACKAGES}) + "\n")
        partial.rename(self.rootfs)
        self.say(f"rootfs ready in {time.monotonic() - started:.0f} s")
        # Rootfs built for an older package list are no longer used.
        for old in self.cache.glob("rootfs-*"):
            if old != self.rootfs and old.is_dir():
                self._unmount(old)
                shutil.rmtree(old, ignore_errors=True)
        return True

    def _mounted(self, path: Path) -> bool:
        target = str(path.resolve())
        with open("/proc/mounts") as f:
            return any(line.split()[1] == target for line in f)

    def _unmount(self, rootfs: Path) -> None:
        proc = rootfs / "proc"
        if self._mounted(proc):
            subprocess.run(["umount", "-l", str(proc)], check=False)

    def _prepare_chroot(self) -> None:
        proc = self.rootfs / "proc"
        if not self._mounted(proc):
            subprocess.run(["mount", "-t", "proc", "proc", str(proc)], check=True)
        # Without a resolvable host name every call stalls 5 s on a DNS lookup.
        hosts = self.rootfs / "etc" / "hosts"
        name = socket.gethostname()
        text = hosts.read_text() if hosts.exists() else ""
        if f" {name}" not in text:
            hosts.write_text(text + f"127.0.0.1 localhost\n127.0.1.1 {name}\n")

    # -- config -----------------------------------------------------------------------

    def install_config(self) -> None:
        files = render.render(self.settings, self.inventory, self.inside)
        render.write(files, self.base / "etc")
        for sub in ("run", "log", "log/cdr-csv", "db", "spool"):  # cdr-csv: the stock set
            (self.base / sub).mkdir(parents=True, exist_ok=True)
        # Where ``calls.asterisk_prompts_dir`` points (by default PbxSettings.sounds_dir;
        # the cluster's nodes share one directory in the rootfs).
        self.install_prompts(Path(self.settings.calls.prompts_dir), "sounds")
        shared = self.settings.calls.asterisk_prompts_dir
        if shared and shared.startswith("/ivr/") and shared != f"{self.inside}/sounds":
            self._copy_prompts(Path(self.settings.calls.prompts_dir), self.rootfs / shared[1:])

    def install_prompts(self, source: Path, name: str) -> str:
        """Copy ``<lang>/<outcome>.wav`` files into the rootfs; returns the directory as
        Asterisk sees it (for ``calls.asterisk_prompts_dir``)."""
        target = self.base / name
        if target.exists():
            shutil.rmtree(target)
        self._copy_prompts(source, target)
        return f"{self.inside}/{name}"

    @staticmethod
    def _copy_prompts(source: Path, target: Path) -> None:
        # File by file, each replaced atomically: another node may be playing them.
        for wav in sorted(source.glob("*/*.wav")):
            dest = target / wav.parent.name / wav.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            partial = dest.with_suffix(".partial")
            shutil.copyfile(wav, partial)
            os.replace(partial, dest)

    # -- the process ------------------------------------------------------------------

    def pid(self) -> int | None:
        return pid_from_file(self.pidfile, b"asterisk")

    def ari_info(self, timeout: float = 1.0) -> dict[str, Any] | None:
        a = self.settings.asterisk
        token = base64.b64encode(f"{a.ari_user}:{a.ari_password}".encode()).decode()
        req = urllib.request.Request(
            f"{a.ari_url}/asterisk/info", headers={"Authorization": f"Basic {token}"}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                data: dict[str, Any] = json.loads(resp.read())
                return data
        except (OSError, ValueError):
            return None

    def up(self, timeout: float = 60.0) -> PbxStatus:
        """Provision if needed, (re)start with freshly rendered config, wait for ARI."""
        self.ensure_rootfs()
        self._prepare_chroot()
        if self.pid() is not None:
            self.down()
        if self._proc is not None and self._proc.poll() is not None:
            self._proc = None  # it died (killed by a test): reaped, not left a zombie
        self.install_config()
        self.pidfile.parent.mkdir(parents=True, exist_ok=True)
        for port_name in ("sip_port", "http_port", "ami_port"):
            self._check_port_free(port_name)
        started = time.monotonic()
        proc = spawn(
            [
                "chroot",
                str(self.rootfs),
                *self.preload(),
                "/usr/sbin/asterisk",
                "-f",
                "-n",
                "-C",
                f"{self.inside}/etc/asterisk.conf",
            ],
            self.console_log,
        )
        self._proc = proc
        self.pidfile.write_text(str(proc.pid))
        while time.monotonic() - started < timeout:
            if proc.poll() is not None:
                tail = self.console_log.read_text(errors="replace").strip().splitlines()[-3:]
                raise PbxError(f"asterisk exited with {proc.returncode}: {' | '.join(tail)}")
            info = self.ari_info()
            if info is not None:
                version = _version(info)
                self.say(
                    f"asterisk {version} ({self.instance}) ready in "
                    f"{time.monotonic() - started:.1f} s: SIP {self.settings.asterisk.host}:"
                    f"{self.settings.asterisk.sip_port}, ARI {self.settings.asterisk.ari_url}"
                )
                return self.status()
            time.sleep(0.2)
        self.down()
        raise PbxError(
            f"ARI did not answer at {self.settings.asterisk.ari_url} within {timeout:.0f} s"
        )

    def preload(self) -> list[str]:
        """What runs Asterisk inside the chroot on jemalloc (the minimal profile); the
        stock profile keeps glibc's allocator, as Debian runs it."""
        if self.settings.asterisk.profile == "stock":
            return []
        found = sorted(self.rootfs.glob(f"usr/lib/*/{JEMALLOC}"))
        if not found:
            raise PbxError(f"{JEMALLOC} is missing from {self.rootfs} (package libjemalloc2)")
        # Set inside the chroot, by env: the host's chroot binary must not preload it.
        return ["/usr/bin/env", f"LD_PRELOAD=/{found[0].relative_to(self.rootfs)}"]

    def _check_port_free(self, name: str) -> None:
        a = self.settings.asterisk
        port = getattr(a, name)
        kind = socket.SOCK_DGRAM if name == "sip_port" else socket.SOCK_STREAM
        # A node stopped a moment ago may still hold its socket for a little while.
        deadline = time.monotonic() + 5.0
        while True:
            with socket.socket(socket.AF_INET, kind) as s:
                s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                try:
                    s.bind((a.host, port))
                    return
                except OSError:
                    if time.monotonic() > deadline:
                        raise PbxError(
                            f"asterisk.{name}: {a.host}:{port} is already in use"
                        ) from None
            time.sleep(0.2)

    def down(self, timeout: float = 15.0) -> bool:
        """Stop cleanly (``core stop now``), then SIGTERM, then SIGKILL. True if it ran."""
        pid = self.pid()
        if pid is None:
            self.pidfile.unlink(missing_ok=True)
            return False
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.cli("core stop now")
        for sig in (None, signal.SIGTERM, signal.SIGKILL):
            if sig is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, sig)
            deadline = time.monotonic() + (timeout if sig is None else 5)
            while time.monotonic() < deadline:
                if not alive(pid):
                    if self._proc is not None and self._proc.pid == pid:
                        self._proc.wait()
                        self._proc = None
                    self.pidfile.unlink(missing_ok=True)
                    self.say(f"asterisk ({self.instance}) stopped")
                    return True
                time.sleep(0.1)
        raise PbxError(f"asterisk pid {pid} did not stop")

    def status(self) -> PbxStatus:
        pid = self.pid()
        info = self.ari_info() if pid is not None else None
        version = None
        if info is not None:
            version = _version(info)
        return PbxStatus(pid is not None, pid, info is not None, version, self.rootfs)

    def cli(self, command: str) -> str:
        """Run one Asterisk CLI command (``-rx``) and return its output."""
        result = subprocess.run(
            [
                "chroot",
                str(self.rootfs),
                "/usr/sbin/asterisk",
                "-C",
                f"{self.inside}/etc/asterisk.conf",
                "-rx",
                command,
            ],
            capture_output=True,
            text=True,
            timeout=15,
            check=False,
        )
        return result.stdout
