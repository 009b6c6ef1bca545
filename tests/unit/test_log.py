from __future__ import annotations

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
