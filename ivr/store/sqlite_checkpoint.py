"""WAL checkpoints off the commit path.

By default SQLite checkpoints inside the commit that takes the write-ahead log past
1,000 pages: that commit copies the log's pages into the database and syncs it before it
returns, so every hundredth call or so waits for it (and longer as the database grows).
This thread, on a connection of its own, runs a PASSIVE checkpoint every ``interval``
seconds instead: it copies what no reader still needs, never blocks the writer, and the
log starts over from its beginning once a checkpoint has caught up with it, so it stays
a few MB. A burst of writes can outrun it (a checkpoint never catches up while frames
keep coming), so the writer still checkpoints past 4,000 pages, when little is left to
copy, and the log is cut back to that size once it starts over.
Measured on 8,000 matched calls at 200/s: commit p99 2.2-3.2 ms with checkpoints in
the commits, 1.4-2.1 ms without.
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
