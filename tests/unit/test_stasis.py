"""The call controller's event routing: unknown or malformed events never raise."""

from __future__ import annotations

from typing import Any

import pytest

from ivr.stasis import CallController
from ivr.trunks import Inventory


def controller() -> CallController:
    dummy: Any = object()
    return CallController(dummy, dummy, Inventory(), dummy, dummy)


@pytest.mark.parametrize(
    "event",
    [
        {},
        {"type": "SomethingNew", "channel": {"id": "1.1"}},
        {"type": "StasisEnd"},
        {"type": "StasisEnd", "channel": None},
        {"type": "PlaybackFinished", "playback": {"id": "x", "target_uri": "channel:9.9"}},
        {"type": "PlaybackFinished"},
        {"type": "ChannelDestroyed", "channel": {"id": "nope"}},
        {"type": "ApplicationReplaced", "application": "phone-auth"},
    ],
)
def test_unknown_and_odd_events_are_ignored(event: dict[str, Any]) -> None:
    c = controller()
    c.on_event(event)
    assert c.active_calls == 0
