"""Kamailio at the SIP edge: its config, generated from the settings and the trunk inventory."""

from ivr.edge.render import render, write

__all__ = ["render", "write"]
