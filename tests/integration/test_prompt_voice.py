"""The shipped prompts: 8 kHz mono 16-bit, rebuilt byte for byte from their texts (Open
JTalk for Japanese, espeak-ng for English, sox without dither)."""

from __future__ import annotations

import shutil
import wave
from pathlib import Path

from ivr.devtools import synth
from ivr.prompts import DEFAULT_DIR, LANGUAGES, OUTCOMES, prompt_path


def test_prompts_are_rebuilt_byte_for_byte_from_their_texts(tmp_path: Path) -> None:
    shutil.copy(DEFAULT_DIR / "texts.toml", tmp_path / "texts.toml")
    synth.build(tmp_path)
    durations = {}
    for language in LANGUAGES:
        for outcome in OUTCOMES:
            shipped = prompt_path(DEFAULT_DIR, language, outcome)
            with wave.open(str(shipped)) as w:
                assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (8000, 1, 2)
                durations[language, outcome] = w.getnframes() / 8000
            rebuilt = prompt_path(tmp_path, language, outcome)
            assert rebuilt.read_bytes() == shipped.read_bytes(), f"{language}/{outcome}"
    print("\nJapanese prompts (Open JTalk):")
    for outcome in OUTCOMES:
        print(f"  {outcome:<16} {durations['ja', outcome]:.2f} s")
    assert all(1.0 < d < 15.0 for d in durations.values())
