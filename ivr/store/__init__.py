"""Stores: adapters that persist what the domain decides.

The ``Store`` protocol and its records are the domain's (:mod:`ivr.verification.ports`);
each store here implements them and imports the domain, never the reverse. The embedded
default is :class:`ivr.store.sqlite.SqliteStore`.
"""
