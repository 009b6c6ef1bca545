"""The prompts: one per outcome and language, as 8 kHz mono 16-bit WAV files.

Asterisk plays only 8 kHz mono for ``.wav`` ("Not in mono", "frequency mismatch"
otherwise), and ``play`` answers 201 even for a missing file, failing later: so every
file is checked when the gateway starts, not at the first call.

The shipped files are made from ``prompts/texts.toml`` by :func:`build` (espeak-ng and
sox, without dither so the same text gives the same bytes). Operators can point
``calls.prompts_dir`` at their own recordings with the same names.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import tempfile
import tomllib
import wave
from dataclasses import dataclass
from pathlib import Path

from ivr.calls import Outcome
from ivr.config import REPO_ROOT

DEFAULT_DIR = REPO_ROOT / "prompts"
LANGUAGES = ("ja", "en")
OUTCOMES = tuple(str(o) for o in Outcome)
_VOICES = {"ja": "ja", "en": "en-us"}


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


def write_tones(directory: Path, seconds: float, hz: int = 440) -> Path:
    """A tone for every outcome and language, in the layout of real prompts: for tests
    and benchmarks that measure the gateway, not the recordings."""
    frames = b"".join(
        struct.pack("<h", int(6000 * math.sin(2 * math.pi * hz * i / 8000)))
        for i in range(int(8000 * seconds))
    )
    for language in LANGUAGES:
        for outcome in OUTCOMES:
            path = prompt_path(directory, language, outcome)
            path.parent.mkdir(parents=True, exist_ok=True)
            with wave.open(str(path), "wb") as w:
                w.setnchannels(1)
                w.setsampwidth(2)
                w.setframerate(8000)
                w.writeframes(frames)
    return directory


def texts(directory: Path = DEFAULT_DIR) -> dict[str, dict[str, dict[str, str]]]:
    data: dict[str, dict[str, dict[str, str]]] = tomllib.loads(
        (directory / "texts.toml").read_text(encoding="utf-8")
    )
    return data


def build(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Synthesize every prompt from ``texts.toml`` into ``directory/<lang>/<outcome>.wav``."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is missing: apt-get install espeak-ng sox")
    written = []
    table = texts(directory)
    for outcome in OUTCOMES:
        for language in LANGUAGES:
            speak = table[outcome][language]["speak"]
            out = prompt_path(directory, language, outcome)
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                subprocess.run(
                    ["espeak-ng", "-v", _VOICES[language], "-s", "175", "-w", str(raw), speak],
                    check=True,
                    capture_output=True,
                )
                # -D: no dither, so the output is the same bytes every time.
                subprocess.run(
                    [
                        "sox",
                        "-D",
                        str(raw),
                        "-r",
                        "8000",
                        "-c",
                        "1",
                        "-b",
                        "16",
                        "-e",
                        "signed-integer",
                        str(out),
                        "pad",
                        "0.1",
                        "0.2",
                    ],
                    check=True,
                    capture_output=True,
                )
            written.append(out)
    return written
