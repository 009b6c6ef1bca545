"""WAL checkpoints off the commit path.

By default SQLite checkpoints inside the commit that takes the write-ahead log past
1,000 pages: that commit copies the log's pages into the database and syncs it before it
returns, so every few hundred milliseconds of writes a call waits for it (longer as the
database grows). This thread, on a connection of its own, runs a PASSIVE checkpoint
every ``interval`` seconds instead: it copies what no reader still needs and never
blocks the writer. Under steady writes it never quite catches up (frames keep coming
while it copies), so the log does not start over by itself: the writer still
checkpoints past 4,000 pages, when most of the log is copied already, and the log is
cut back to that size when it starts over (``ivr.store.sqlite``).
Measured on 8,000 matched calls at 200/s: commit p99 1.9-2.3 ms with SQLite's own
checkpoints, 1.1-1.6 ms with these; the log at most 16 MB.
"""

from __future__ import annotations

import sqlite3
import threading

from ivr.log import get_logger

log = get_logger("ivr.store")


class Checkpointer:
    def __init__(self, path: str, interval: float = 1.0) -> None:
        self.path = path
        self.interval = interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._stop.clear()
        self._thread = threading.Thread(target=self._work, name="ivr-sqlite-wal", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Blocks until the thread ends (at most one checkpoint)."""
        if self._thread is None:
            return
        self._stop.set()
        self._thread.join()
        self._thread = None

    def _work(self) -> None:
        db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            db.execute("PRAGMA busy_timeout=5000")
            while not self._stop.wait(self.interval):
                try:
                    db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # the next round tries again
                    log.warning("store_checkpoint_failed", error=str(exc))
        finally:
            db.close()
