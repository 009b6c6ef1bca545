"""``make images``: the container images, built offline.

No registry is reachable from our machines, so ``FROM debian:...`` cannot pull. The
bases are made here instead: Debian 12 from ``debootstrap`` (with the packages the images
need already in it) and Debian unstable from the local Asterisk's chroot, each imported
with ``docker import``. The Dockerfiles in ``docker/`` then build on them with
``--build-arg BASE=...``; with a registry the same Dockerfiles pull ``debian:...`` and
install the packages with apt. The gateway image installs the project's wheel and its
dependencies' wheels, built here with ``pip wheel`` (no index inside the build).

Everything here needs root (debootstrap, dockerd).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from ivr import __version__
from ivr.clibase import CliError
from ivr.config import Settings
from ivr.devtools.pbx import LocalPbx
from ivr.trunks import Inventory

REPO = Path(__file__).resolve().parents[2]
DOCKERFILES = REPO / "docker"
# What the Debian 12 base carries, so no image build needs apt (offline) but the
# Dockerfiles still install them where a registry base lacks them.
BOOKWORM_PACKAGES = ("python3", "python3-venv", "postgresql-15", "kamailio", "passwd")
IMAGES = ("gateway", "asterisk", "postgres", "kamailio")
BASES = {
    "gateway": "bookworm",
    "asterisk": "asterisk",
    "postgres": "bookworm",
    "kamailio": "bookworm",
}


class ImageError(CliError):
    def __init__(self, message: str) -> None:
        super().__init__(f"images: {message}")


def _say(msg: str) -> None:
    print(f"images: {msg}", flush=True)


def docker_binary() -> str:
    # Debian's docker.io client matches its daemon; another client on PATH may not.
    for candidate in ("/usr/bin/docker", shutil.which("docker")):
        if candidate and Path(candidate).exists():
            return candidate
    raise ImageError("docker is missing: apt-get install docker.io")


def ensure_dockerd(log: Path, timeout: float = 60.0) -> None:
    """Start ``dockerd`` unless one answers (machines without systemd as PID 1)."""
    docker = docker_binary()
    if subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
        return
    if shutil.which("dockerd") is None:
        raise ImageError("dockerd is missing: apt-get install docker.io")
    log.parent.mkdir(parents=True, exist_ok=True)
    with open(log, "ab") as out:
        # Detached (setsid -f): a daemon that outlives this process, like one systemd
        # would have started, and no child left for this process to wait for.
        subprocess.run(
            ["setsid", "-f", "dockerd"],
            stdout=out,
            stderr=out,
            stdin=subprocess.DEVNULL,
            check=True,
        )
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if subprocess.run([docker, "info"], capture_output=True, check=False).returncode == 0:
            return
        time.sleep(0.5)
    raise ImageError(f"dockerd did not answer within {timeout:.0f} s (log: {log})")


class ImageBuilder:
    def __init__(
        self, settings: Settings, inventory: Inventory, say: Callable[[str], None] = _say
    ) -> None:
        self.settings = settings
        self.pbx = LocalPbx(settings, inventory, say)
        self.cache = settings.pbx.cache_path / "images"
        self.say = say
        self.docker = docker_binary()

    def _run(self, *cmd: str, stdin: int | None = None, cwd: Path | None = None) -> str:
        result = subprocess.run(
            list(cmd), capture_output=True, text=True, check=False, stdin=stdin, cwd=cwd
        )
        if result.returncode != 0:
            tail = " | ".join((result.stdout + result.stderr).strip().splitlines()[-4:])
            raise ImageError(f"{' '.join(cmd[:3])} ... failed: {tail}")
        return result.stdout

    def has_image(self, tag: str) -> bool:
        done = subprocess.run(
            [self.docker, "image", "inspect", tag], capture_output=True, check=False
        )
        return done.returncode == 0

    def _import(self, rootfs: Path, tag: str, exclude: tuple[str, ...] = ()) -> None:
        args = ["tar", "--numeric-owner", "-C", str(rootfs)]
        args += [f"--exclude=./{e}" for e in exclude] + ["-c", "."]
        tar = subprocess.Popen(args, stdout=subprocess.PIPE)
        assert tar.stdout is not None
        try:
            self._run(self.docker, "import", "-", tag, stdin=tar.stdout.fileno())
        finally:
            tar.stdout.close()
            tar.wait()

    def bookworm_base(self) -> str:
        """Debian 12 with the images' packages, from debootstrap (cached as an image)."""
        tag = "ivr-base:bookworm-" + _digest(",".join(BOOKWORM_PACKAGES))
        if self.has_image(tag):
            return tag
        self.cache.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
            rootfs = Path(tmp) / "rootfs"
            self.say(f"debootstrap bookworm into {rootfs} (a minute or two)")
            self._run(
                "debootstrap",
                "--variant=minbase",
                f"--include={','.join(BOOKWORM_PACKAGES)}",
                "bookworm",
                str(rootfs),
                self.pbx._mirror(),
            )
            # Services Debian's packages start at install time are not for an image.
            for cluster in (rootfs / "etc/postgresql").glob("*/main"):
                shutil.rmtree(cluster, ignore_errors=True)
            shutil.rmtree(rootfs / "var/lib/postgresql/15/main", ignore_errors=True)
            self._import(rootfs, tag, exclude=("proc/*", "sys/*", "dev/*", "var/cache/apt/*"))
        self.say(f"base {tag} imported")
        return tag

    def asterisk_base(self) -> str:
        """Debian unstable with Asterisk: the local chroot's rootfs, imported."""
        self.pbx.ensure_rootfs()
        tag = "ivr-base:asterisk-" + _digest(self.pbx.rootfs.name)
        if not self.has_image(tag):
            self._import(
                self.pbx.rootfs, tag, exclude=("proc/*", "sys/*", "dev/*", "ivr", ".ivr-complete")
            )
            self.say(f"base {tag} imported from {self.pbx.rootfs}")
        return tag

    def wheels(self, into: Path) -> None:
        """The project's wheel and every runtime dependency's, for an install with no index."""
        self._run(sys.executable, "-m", "pip", "wheel", "-q", "-w", str(into), str(REPO))

    def build(self, names: tuple[str, ...] = IMAGES) -> dict[str, str]:
        ensure_dockerd(self.cache / "dockerd.log")
        bases: dict[str, str] = {}
        tags: dict[str, str] = {}
        for name in names:
            kind = BASES[name]
            if kind not in bases:
                bases[kind] = self.bookworm_base() if kind == "bookworm" else self.asterisk_base()
            with tempfile.TemporaryDirectory(dir=self.cache) as tmp:
                context = Path(tmp)
                for f in DOCKERFILES.iterdir():
                    if f.is_file():
                        shutil.copy(f, context / f.name)
                if name == "gateway":
                    self.wheels(context / "wheels")
                tag = f"ivr-{name}:{__version__}"
                started = time.monotonic()
                self._run(
                    self.docker,
                    "build",
                    "--network",
                    "host",
                    "-f",
                    str(context / f"{name}.Dockerfile"),
                    "--build-arg",
                    f"BASE={bases[kind]}",
                    "-t",
                    tag,
                    "-t",
                    f"ivr-{name}:latest",
                    str(context),
                )
                self.say(f"{tag} built in {time.monotonic() - started:.0f} s")
                tags[name] = tag
        return tags


def _digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode()).hexdigest()[:12]


def image_sizes(docker: str, tags: dict[str, str]) -> dict[str, int]:
    out = {}
    for name, tag in tags.items():
        with contextlib.suppress(subprocess.CalledProcessError, ValueError):
            data = subprocess.run(
                [docker, "image", "inspect", tag], capture_output=True, text=True, check=True
            ).stdout
            out[name] = int(json.loads(data)[0]["Size"])
    return out


def main() -> int:
    from ivr.config import load_settings
    from ivr.trunks import load_inventory

    settings = load_settings(os.environ.get("IVR_CONFIG") or None)
    try:
        builder = ImageBuilder(settings, load_inventory(settings.inventory))
        tags = builder.build()
    except CliError as exc:
        print(f"ivr: {exc}", file=sys.stderr)
        return 2
    for name, size in image_sizes(builder.docker, tags).items():
        print(f"{tags[name]}: {size / 1e6:.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
