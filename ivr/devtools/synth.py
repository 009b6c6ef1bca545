"""Prompt synthesis and test tones: build-time tooling, never imported by ``ivr serve``.

``ivr prompts build`` makes the shipped prompts from ``texts.toml``: Japanese with Open
JTalk (``pyopenjtalk-plus``, the ``voice`` extra: its dictionary reads the kanji as
written, and its HTS voice "Mei" by the Nagoya Institute of Technology, CC BY 3.0, is
far more natural than espeak-ng), English with espeak-ng. sox resamples to 8 kHz mono
16-bit without dither, so the same text gives the same bytes. :func:`write_tones` writes
short tones in the same layout for tests and benchmarks that measure the gateway, not
the recordings.
"""

from __future__ import annotations

import contextlib
import io
import math
import shutil
import struct
import subprocess
import tempfile
import tomllib
import warnings
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


def _open_jtalk(text: str, raw: Path) -> None:
    """Japanese as written (kanji included) with Open JTalk, at its own 48 kHz."""
    try:
        import numpy as np

        # It prints a note about an optional ONNX model it does not need here.
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            import pyopenjtalk
    except ImportError:
        raise PromptError(
            "Open JTalk is missing: pip install 'ivr-phone-auth[voice]' (pyopenjtalk-plus)"
        ) from None
    with warnings.catch_warnings():
        # Its tokenizer calls a deprecated SudachiPy API; not ours to fix.
        warnings.simplefilter("ignore", DeprecationWarning)
        samples, rate = pyopenjtalk.tts(text)
    # Its output can pass the 16-bit range: scale down rather than clip (sox then
    # normalises every prompt to the same peak).
    peak = float(np.max(np.abs(samples))) or 1.0
    samples = samples * min(1.0, 30000.0 / peak)
    pcm = np.clip(np.round(samples), -32768, 32767).astype("<i2").tobytes()
    with wave.open(str(raw), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(int(rate))
        w.writeframes(pcm)


def voice_of(language: str) -> str:
    return "Open JTalk (HTS voice Mei, CC BY 3.0)" if language == "ja" else "espeak-ng en-us"


def build(directory: Path = DEFAULT_DIR) -> list[Path]:
    """Synthesize every prompt from ``texts.toml`` into ``directory/<lang>/<outcome>.wav``."""
    for tool in ("espeak-ng", "sox"):
        if shutil.which(tool) is None:
            raise PromptError(f"{tool} is missing: apt-get install espeak-ng sox")
    written = []
    table = texts(directory)
    for outcome in OUTCOMES:
        for language in LANGUAGES:
            entry = table[outcome][language]
            out = prompt_path(directory, language, outcome)
            out.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryDirectory() as tmp:
                raw = Path(tmp) / "raw.wav"
                if language == "ja":
                    _open_jtalk(entry.get("voice", entry["text"]), raw)
                else:
                    subprocess.run(
                        [
                            "espeak-ng",
                            "-v",
                            _VOICES[language],
                            "-s",
                            "175",
                            "-w",
                            str(raw),
                            entry["speak"],
                        ],
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
                        "gain",
                        "-n",
                        "-3",  # every prompt peaks at -3 dBFS: one loudness, no clipping
                        "pad",
                        "0.1",
                        "0.2",
                    ],
                    check=True,
                    capture_output=True,
                )
            written.append(out)
    return written
