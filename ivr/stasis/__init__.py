"""Call handling for the Stasis app: ``router`` (ARI events -> a task per call),
``flow`` (one call: identity -> outcome -> commit -> hand-over), ``release`` (the prompt
and the release in the dialplan), ``policy`` (prompts and release causes), ``ports``
(what both need from ARI)."""

from ivr.stasis.flow import ActiveCall, CallFlow, CallStart
from ivr.stasis.policy import CallPolicy
from ivr.stasis.ports import AriConnection, AriPort
from ivr.stasis.router import CallRouter

__all__ = [
    "ActiveCall",
    "AriConnection",
    "AriPort",
    "CallFlow",
    "CallPolicy",
    "CallRouter",
    "CallStart",
]
