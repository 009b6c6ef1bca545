"""The local daemons' process bookkeeping: starting one detached with its output in a
log, its pid file, and waiting for it to go."""

from __future__ import annotations

import contextlib
import os
import subprocess
import time
from collections.abc import Mapping, Sequence
from pathlib import Path


def spawn(
    argv: Sequence[str], log: Path, env: Mapping[str, str] | None = None, append: bool = False
) -> subprocess.Popen[bytes]:
    """Start a daemon in its own session (so a killpg reaches all of it), its stdout and
    stderr in ``log``, nothing on its stdin."""
    with open(log, "ab" if append else "wb") as out:
        return subprocess.Popen(
            list(argv),
            env=dict(env) if env is not None else None,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )


def alive(pid: int) -> bool:
    """Whether ``pid`` still runs. Reaps it if it is our child; a zombie (a daemon started
    by an earlier command, whose reaper may never come) counts as gone."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with contextlib.suppress(OSError):
        if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
            return False
    return True


def pid_from_file(pidfile: Path, name: bytes = b"") -> int | None:
    """The live process the pid file names (and whose command line has ``name``)."""
    try:
        pid = int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None
    if not alive(pid):
        return None
    if name:
        with contextlib.suppress(OSError):
            if name not in Path(f"/proc/{pid}/cmdline").read_bytes():
                return None
    return pid


def wait_gone(pid: int, timeout: float) -> bool:
    """Wait until ``pid`` has exited (reaping it if it is our child); False on timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive(pid):
            return True
        time.sleep(0.1)
    return False
