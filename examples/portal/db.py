"""The portal's own small SQLite: holders, their phone entries, logins, sessions."""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from examples.portal.rules import PhoneEntry, hash_password

SCHEMA = """
CREATE TABLE IF NOT EXISTS holders (
    login_id TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    birth_date TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 1,
    failures INTEGER NOT NULL DEFAULT 0,
    locked INTEGER NOT NULL DEFAULT 0,
    holder_is_insured INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS phones (
    login_id TEXT NOT NULL REFERENCES holders (login_id),
    role TEXT NOT NULL,
    e164 TEXT NOT NULL,
    effective TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS logins (
    verification_id TEXT PRIMARY KEY,
    login_id TEXT NOT NULL,
    phone_e164 TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    via TEXT
);
CREATE TABLE IF NOT EXISTS sessions (
    id TEXT PRIMARY KEY,
    login_id TEXT NOT NULL,
    stage TEXT NOT NULL,
    verification_id TEXT,
    csrf TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS seen_webhooks (id TEXT PRIMARY KEY);
"""


@dataclass
class Holder:
    login_id: str
    name: str
    birth_date: str
    password_hash: str
    must_change_password: bool
    failures: int
    locked: bool
    holder_is_insured: bool


@dataclass
class Session:
    id: str
    login_id: str
    stage: str  # "register_only", "password_ok" (verifying by phone), "in"
    verification_id: str | None
    csrf: str


class Db:
    def __init__(self, path: Path | str) -> None:
        self.conn = sqlite3.connect(str(path), isolation_level=None)
        self.conn.execute("PRAGMA journal_mode=WAL")
        self.conn.executescript(SCHEMA)

    def close(self) -> None:
        self.conn.close()

    # -- holders ----------------------------------------------------------------------

    def add_holder(
        self,
        login_id: str,
        password: str,
        name: str,
        birth_date: str,
        holder_is_insured: bool = False,
        must_change_password: bool = True,
    ) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO holders VALUES (?, ?, ?, ?, ?, 0, 0, ?)",
            (
                login_id,
                name,
                birth_date,
                hash_password(password),
                must_change_password,
                holder_is_insured,
            ),
        )

    def holder(self, login_id: str) -> Holder | None:
        row = self.conn.execute("SELECT * FROM holders WHERE login_id = ?", (login_id,)).fetchone()
        if row is None:
            return None
        lid, name, birth, pw, must, failures, locked, insured = row
        return Holder(lid, name, birth, pw, bool(must), failures, bool(locked), bool(insured))

    def set_attempt(self, login_id: str, failures: int, locked: bool) -> None:
        self.conn.execute(
            "UPDATE holders SET failures = ?, locked = ? WHERE login_id = ?",
            (failures, locked, login_id),
        )

    def set_password(self, login_id: str, password: str, must_change: bool) -> None:
        self.conn.execute(
            "UPDATE holders SET password_hash = ?, must_change_password = ?,"
            " failures = 0, locked = 0 WHERE login_id = ?",
            (hash_password(password), must_change, login_id),
        )

    # -- phone numbers ----------------------------------------------------------------

    def add_phone(self, login_id: str, role: str, e164: str, effective: date) -> None:
        self.conn.execute(
            "INSERT INTO phones VALUES (?, ?, ?, ?)",
            (login_id, role, e164, effective.isoformat()),
        )

    def phones(self, login_id: str) -> list[PhoneEntry]:
        rows = self.conn.execute(
            "SELECT role, e164, effective FROM phones WHERE login_id = ? ORDER BY rowid",
            (login_id,),
        ).fetchall()
        return [PhoneEntry(r, e, date.fromisoformat(d)) for r, e, d in rows]

    # -- logins (one per verification) ------------------------------------------------

    def add_login(self, verification_id: str, login_id: str, phone: str) -> None:
        self.conn.execute(
            "INSERT INTO logins (verification_id, login_id, phone_e164) VALUES (?, ?, ?)",
            (verification_id, login_id, phone),
        )

    def login(self, verification_id: str) -> tuple[str, str, str, str | None] | None:
        row = self.conn.execute(
            "SELECT login_id, phone_e164, status, via FROM logins WHERE verification_id = ?",
            (verification_id,),
        ).fetchone()
        return None if row is None else (row[0], row[1], row[2], row[3])

    def settle_login(self, verification_id: str, status: str, via: str) -> None:
        self.conn.execute(
            "UPDATE logins SET status = ?, via = coalesce(via, ?) WHERE verification_id = ?",
            (status, via, verification_id),
        )

    def first_delivery(self, webhook_id: str) -> bool:
        """Callbacks come at least once: handle each webhook-id once."""
        cur = self.conn.execute("INSERT OR IGNORE INTO seen_webhooks VALUES (?)", (webhook_id,))
        return cur.rowcount == 1

    # -- sessions ---------------------------------------------------------------------

    def new_session(self, login_id: str, stage: str) -> Session:
        s = Session(secrets.token_urlsafe(24), login_id, stage, None, secrets.token_urlsafe(16))
        self.conn.execute(
            "INSERT INTO sessions VALUES (?, ?, ?, ?, ?)",
            (s.id, s.login_id, s.stage, s.verification_id, s.csrf),
        )
        return s

    def session(self, sid: str) -> Session | None:
        row = self.conn.execute("SELECT * FROM sessions WHERE id = ?", (sid,)).fetchone()
        return None if row is None else Session(*row)

    def update_session(self, s: Session) -> None:
        self.conn.execute(
            "UPDATE sessions SET stage = ?, verification_id = ? WHERE id = ?",
            (s.stage, s.verification_id, s.id),
        )

    def end_session(self, sid: str) -> None:
        self.conn.execute("DELETE FROM sessions WHERE id = ?", (sid,))


def seed_demo(db: Db, today: date) -> list[tuple[str, str, str]]:
    """Demo holders (login ID, initial password, what they show). IDs and passwords avoid
    l, O, o and q, as the notice promises."""
    demo = [
        ("K7M2PA3B", "Tk7mW3pZ2x", "山田 太郎", "1980-04-01", False, "+819012345678"),
        ("R4TN8WX5", "Hb4nR8sV6y", "佐藤 花子", "1975-11-23", True, "+81312345678"),
        ("Z9C3HJ6E", "Wm5tK9dF3s", "鈴木 一郎", "1990-07-15", False, None),
    ]
    out = []
    for login_id, pw, name, birth, insured, phone in demo:
        if db.holder(login_id) is not None:
            continue
        db.add_holder(login_id, pw, name, birth, insured, must_change_password=False)
        if phone:
            role = "insured" if insured else "policy_holder"
            db.add_phone(login_id, role, phone, today)
        out.append((login_id, pw, name))
    return out
