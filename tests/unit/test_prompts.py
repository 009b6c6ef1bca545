"""The shipped prompts: playable by Asterisk, one per outcome and language, from their
texts; a missing one stops start-up naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from ivr import prompts
from ivr.config import ConfigError
from ivr.devtools import synth
from tests.conftest import MakeGateway


async def test_missing_prompt_is_reported_at_startup(
    make_gateway: MakeGateway, tmp_path: Path
) -> None:
    (tmp_path / "ja").mkdir()
    with pytest.raises(ConfigError) as info:
        await make_gateway(connect=False, fake=True, calls={"prompts_dir": str(tmp_path)})
    assert info.value.key == "calls.prompts_dir"
    assert "verified.wav is missing" in str(info.value)


def test_shipped_prompts_are_playable_and_match_their_texts() -> None:
    texts = synth.texts()
    for (outcome, language), prompt in prompts.load(prompts.DEFAULT_DIR).items():
        assert 1.0 < prompt.seconds < 12.0, prompt
        assert texts[outcome][language]["text"]
        assert prompt.path.is_relative_to(Path(prompts.__file__).parent / "data")
    assert set(texts) == set(prompts.OUTCOMES)


def test_a_prompt_asterisk_cannot_play_is_refused(tmp_path: Path) -> None:
    synth.write_tones(tmp_path, 0.2)
    import wave

    bad = prompts.prompt_path(tmp_path, "ja", "verified")
    with wave.open(str(bad), "wb") as w:
        w.setnchannels(2)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(b"\0\0\0\0" * 100)
    with pytest.raises(prompts.PromptError, match="Asterisk needs 8000 Hz mono"):
        prompts.load(tmp_path)
