"""Stores: adapters that persist what the domain decides.

The ``Store`` protocol and its records are the domain's (:mod:`ivr.verification.ports`);
each store here implements them and imports the domain, never the reverse. SQLite
(:mod:`ivr.store.sqlite`) is the embedded default; PostgreSQL (:mod:`ivr.store.postgres`)
is for several gateways sharing one database (``store.url``).
"""

from __future__ import annotations

import os
import socket

from ivr.config import Settings
from ivr.verification.ports import Store


def instance_name(settings: Settings) -> str:
    """Who this gateway is in a shared store (it holds outbox leases under this name)."""
    return f"{socket.gethostname()}/{settings.asterisk.app}/{os.getpid()}"


def make_store(settings: Settings) -> Store:
    """The store the settings name: PostgreSQL when ``store.url`` is set, else SQLite."""
    if settings.store.url:
        from ivr.store.postgres import PostgresStore

        return PostgresStore(settings.store, instance_name(settings))
    from ivr.store.sqlite import SqliteStore

    return SqliteStore(settings.store.path)
