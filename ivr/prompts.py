"""The prompts: one per outcome and language, as 8 kHz mono 16-bit WAV files.

Asterisk plays only 8 kHz mono for ``.wav`` ("Not in mono", "frequency mismatch"
otherwise), and ``play`` answers 201 even for a missing file, failing later: so every
file is checked when the gateway starts, not at the first call.

The shipped files (package data, ``ivr/data/prompts``) are made from their
``texts.toml`` by ``ivr prompts build`` (:mod:`ivr.devtools.synth`, a build-time tool
the gateway never imports). Operators can point ``calls.prompts_dir`` at their own
recordings with the same names.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass
from pathlib import Path

from ivr.config import DEFAULT_PROMPTS
from ivr.vocabulary import Outcome

DEFAULT_DIR = DEFAULT_PROMPTS
LANGUAGES = ("ja", "en")
OUTCOMES = tuple(str(o) for o in Outcome)


class PromptError(ValueError):
    """A prompt file is missing or in a format Asterisk cannot play."""


@dataclass(frozen=True)
class Prompt:
    outcome: str
    language: str
    path: Path
    seconds: float


def prompt_path(directory: Path, language: str, outcome: str) -> Path:
    return directory / language / f"{outcome}.wav"


def inspect(path: Path) -> float:
    """The duration in seconds of a WAV Asterisk can play, or :class:`PromptError`."""
    try:
        with wave.open(str(path), "rb") as w:
            rate, channels, width, frames = (
                w.getframerate(),
                w.getnchannels(),
                w.getsampwidth(),
                w.getnframes(),
            )
    except FileNotFoundError:
        raise PromptError(f"{path} is missing") from None
    except (wave.Error, EOFError, OSError) as exc:
        raise PromptError(f"{path} is not a WAV file ({exc})") from None
    if (rate, channels, width) != (8000, 1, 2):
        raise PromptError(
            f"{path} is {rate} Hz, {channels} channel(s), {8 * width}-bit; "
            "Asterisk needs 8000 Hz mono 16-bit"
        )
    if frames == 0:
        raise PromptError(f"{path} is empty")
    return frames / rate


def load(directory: Path) -> dict[tuple[str, str], Prompt]:
    """Every (outcome, language) prompt under ``directory``, checked."""
    found = {}
    for language in LANGUAGES:
        for outcome in OUTCOMES:
            path = prompt_path(directory, language, outcome)
            found[(outcome, language)] = Prompt(outcome, language, path, inspect(path))
    return found
