"""Prompt synthesis and test tones: build-time tooling, never imported by ``ivr serve``.

``ivr prompts build`` makes the shipped prompts from ``texts.toml`` with espeak-ng and sox
(without dither, so the same text gives the same bytes); :func:`write_tones` writes
short tones in the same layout for tests and benchmarks that measure the gateway, not
the recordings.
"""

from __future__ import annotations

import math
import shutil
import struct
import subprocess
import tempfile
import tomllib
import wave
from pathlib import Path

from ivr.prompts import DEFAULT_DIR, LANGUAGES, OUTCOMES, PromptError, prompt_path

_VOICES = {"ja": "ja", "en": "en-us"}


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
