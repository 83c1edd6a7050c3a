"""A disk outbox for telemetry and events: a row is written (and so acknowledged) before anything is sent,
and deleted only on PUBACK. paho keeps unacknowledged messages in memory only; this survives a broker
outage and an agent crash. Bounded: past max_rows the oldest rows go, and the count of dropped rows is kept.

Delivery is at least once: a row sent just before a crash may be sent again; receivers dedupe on seq.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL,
                                   payload BLOB NOT NULL, qos INTEGER NOT NULL, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""


log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Row:
    id: int
    topic: str
    payload: bytes
    qos: int


class Outbox:
    def __init__(self, path: Path, max_rows: int = 100_000) -> None:
        self.path, self.max_rows = path, max_rows
        # Why the outbox is not the file it should be (damaged and replaced, or in memory only), for an event.
        self.problem: str | None = None
        self._db = self._open()
        self._lock = threading.Lock()
        self._inflight: dict[int, int] = {}  # mid → row id
        # A full or failing disk: rows that could not be written are counted here (and reported as dropped),
        # sequence numbers go on in memory, and the agent keeps serving.
        self._unwritten = 0
        self._seqs: dict[str, int] = {}

    def _open(self) -> sqlite3.Connection:
        """The outbox file; a damaged one is moved aside and started afresh; on a disk that takes no writes
        the outbox lives in memory (sent as usual, but a restart loses what was not acknowledged)."""
        try:
            return _connect(self.path)
        except (sqlite3.DatabaseError, OSError) as exc:
            fault = f"{self.path}: {exc}"
        if self.path.is_file() and ("not a database" in fault or "malformed" in fault):
            try:
                os.replace(self.path, self.path.with_name(self.path.name + ".damaged"))
                self.problem = f"{fault}; moved to {self.path.name}.damaged, a new outbox started"
                return _connect(self.path)
            except (OSError, sqlite3.DatabaseError) as exc:
                fault += f"; cannot replace it ({exc})"
        self.problem = f"{fault}; the outbox is in memory only until the state directory takes writes"
        return _connect(Path(":memory:"))

    def next_seq(self, name: str = "seq") -> int:
        """A per-device sequence number that survives restarts (and a full disk, in memory)."""
        with self._lock:
            try:
                self._db.execute("INSERT INTO meta VALUES (?, 1) ON CONFLICT(key) DO UPDATE SET value = value + 1",
                                 (name,))
                value = int(self._db.execute("SELECT value FROM meta WHERE key = ?", (name,)).fetchone()[0])
            except sqlite3.Error as exc:
                self._disk_error("sequence", exc)
                value = self._seqs.get(name, 0) + 1
            value = max(value, self._seqs.get(name, 0) + 1)
            self._seqs[name] = value
            return value

    def put(self, topic: str, payload: bytes, qos: int = 1, created: float = 0.0) -> None:
        with self._lock:
            try:
                self._insert(topic, payload, qos, created)
            except sqlite3.Error as exc:
                if self._db.in_transaction:
                    self._db.execute("ROLLBACK")
                self._unwritten += 1
                self._disk_error(topic, exc)

    def _insert(self, topic: str, payload: bytes, qos: int, created: float) -> None:
        self._db.execute("BEGIN IMMEDIATE")
        self._db.execute("INSERT INTO outbox (topic, payload, qos, created) VALUES (?, ?, ?, ?)",
                         (topic, payload, qos, created))
        excess = self._count() - self.max_rows
        if excess > 0:
            self._db.execute("DELETE FROM outbox WHERE id IN (SELECT id FROM outbox ORDER BY id LIMIT ?)",
                             (excess,))
            self._db.execute("INSERT INTO meta VALUES ('dropped', ?) "
                             "ON CONFLICT(key) DO UPDATE SET value = value + ?", (excess, excess))
        self._db.execute("COMMIT")

    def _disk_error(self, what: str, exc: sqlite3.Error) -> None:
        if self._unwritten <= 1 or self._unwritten % 100 == 0:
            log.warning("outbox %s: cannot write %s (%s); %d row(s) lost so far", self.path, what, exc,
                        self._unwritten)

    def _count(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0])

    def depth(self) -> int:
        with self._lock:
            return self._count()

    def dropped(self) -> int:
        """Rows dropped at the bound, plus rows a failing disk would not take."""
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key = 'dropped'").fetchone()
            return (int(row[0]) if row else 0) + self._unwritten

    def pending(self, limit: int) -> list[Row]:
        """Oldest rows not already in flight."""
        with self._lock:
            busy = set(self._inflight.values())
            rows = self._db.execute("SELECT id, topic, payload, qos FROM outbox ORDER BY id LIMIT ?",
                                    (limit + len(busy),)).fetchall()
        return [Row(*r) for r in rows if r[0] not in busy][:limit]

    def sent(self, row: Row, mid: int) -> None:
        with self._lock:
            self._inflight[mid] = row.id

    def acked(self, mid: int) -> None:
        with self._lock:
            row_id = self._inflight.pop(mid, None)
            if row_id is not None:
                try:
                    self._db.execute("DELETE FROM outbox WHERE id = ?", (row_id,))
                except sqlite3.Error as exc:  # the row stays and goes out again: at least once
                    self._disk_error("an acknowledgement", exc)

    def inflight(self) -> int:
        with self._lock:
            return len(self._inflight)

    def reset_inflight(self) -> None:
        """On disconnect: unacknowledged rows go out again after the reconnect."""
        with self._lock:
            self._inflight.clear()

    def drain(self, publish: Callable[[str, bytes, int], int | None], window: int = 50) -> int:
        """Send pending rows while the in-flight window allows; returns how many were sent."""
        room = window - self.inflight()
        count = 0
        for row in self.pending(max(room, 0)):
            mid = publish(row.topic, row.payload, row.qos)
            if mid is None:
                break
            self.sent(row, mid)
            count += 1
        return count

    def close(self) -> None:
        with self._lock:
            self._db.close()


def _connect(path: Path) -> sqlite3.Connection:
    if str(path) != ":memory:":
        path.parent.mkdir(parents=True, exist_ok=True)
    db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
    try:
        db.execute("PRAGMA journal_mode=WAL")
        # NORMAL in WAL mode survives a process crash; only a power cut may lose the last transaction.
        db.execute("PRAGMA synchronous=NORMAL")
        db.executescript(SCHEMA)
    except sqlite3.DatabaseError:
        db.close()
        raise
    return db
