from __future__ import annotations

import pytest

from ivr.log import mask_phone_numbers


def test_numbers_are_masked_everywhere() -> None:
    event = {
        "event": "call from 09012345678",
        "caller": "+819012345678",
        "nested": {"n": "090-1234-5678"},
        "channel_id": "1732543123.45",
        "timestamp": "2026-11-25T09:41:39Z",
        "did": "+81355550101",
        "date": "2026-11-25",
    }
    out = mask_phone_numbers(None, "info", dict(event))
    assert out["event"] == "call from 090****5678"
    assert out["caller"] == "+819*****5678"
    assert out["nested"] == {"n": "090****5678"}
    assert out["channel_id"] == "1732543123.45"  # Asterisk ids stay whole
    assert out["did"] == "+81355550101"  # our own numbers are not personal data
    assert out["date"] == "2026-11-25"


def test_bound_values_reach_the_lines_of_their_task_only() -> None:
    import asyncio

    from ivr.log import bind, bound, merge_context

    async def call(channel: str) -> dict[str, object]:
        bind(channel_id=channel)
        await asyncio.sleep(0)
        bind(did="+81355550101")
        return dict(merge_context(None, "info", {"event": "x", "channel_id": "own"}))

    async def both() -> list[dict[str, object]]:
        return list(await asyncio.gather(call("c1"), call("c2")))

    first, second = asyncio.run(both())
    assert first == {"event": "x", "channel_id": "own", "did": "+81355550101"}  # the line wins
    assert second["did"] == "+81355550101"
    assert bound() == {}  # nothing leaked out of the tasks


def test_a_json_line_is_one_masked_object_with_a_utc_timestamp(
    capfd: pytest.CaptureFixture[str],
) -> None:
    import json
    import re

    import ivr.log

    ivr.log.configure("info", "json")
    ivr.log.get_logger("t").info("call_decided", caller="09012345678", did="+81355550101")
    line = json.loads(capfd.readouterr().err.strip().splitlines()[-1])
    assert line["caller"] == "090****5678" and line["did"] == "+81355550101"
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
    assert line["level"] == "info" and line["event"] == "call_decided"
