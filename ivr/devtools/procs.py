"""The local daemons' process bookkeeping: a pid file, and waiting for a process to go."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path


def pid_from_file(pidfile: Path, name: bytes = b"") -> int | None:
    """The live process the pid file names (and whose command line has ``name``)."""
    try:
        pid = int(pidfile.read_text().strip())
        os.kill(pid, 0)
    except (OSError, ValueError):
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
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False
