"""The prompt and the release, handed to Asterisk's dialplan in one ARI request.

Once a call's outcome is committed, the gateway sends the channel on to the
``ivr-release`` context with one ``continue``. The extension says everything the
dialplan needs: the DID's answer mode, the language, the outcome (which prompt) and the
Q.850 cause to release with, as ``early_media-ja-withheld-17``. The dialplan (rendered by
:mod:`ivr.trunks.render`) sends 183 or answers, plays ``<prompts>/<language>/<outcome>``
and releases. One request instead of three (answer or progress, play, hang-up), and no
playback events to read: less work per call for Asterisk and for the gateway, and the
prompt plays on even if the gateway stops right after the commit.
"""

from __future__ import annotations

from ivr.config import Settings
from ivr.vocabulary import AnswerMode, Outcome, ReleaseCause

CONTEXT = "ivr-release"
# ReleaseCause.NORMAL: an answered call ends with a BYE.
ANSWERED_CAUSE = ReleaseCause.NORMAL.q850


def extension(mode: AnswerMode, language: str, outcome: Outcome, cause: ReleaseCause) -> str:
    """The ``ivr-release`` extension for one call (``mode`` is answer or early_media:
    the dialplan tells them apart by the first letter)."""
    return f"{mode}-{language}-{outcome}-{cause.q850}"


def prompts_dir(settings: Settings) -> str:
    """Where Asterisk reads the prompts: ``<dir>/<language>/<outcome>``."""
    return settings.calls.asterisk_prompts_dir or settings.pbx.sounds_dir


def dialplan(prompts_dir: str, prompt_timeout: float) -> str:
    """The ``ivr-release`` context: ``prompts_dir`` as Asterisk sees it; the prompt and
    its release end after ``prompt_timeout`` seconds at the latest. One pattern per
    answer mode (``[a]``/``[e]``: a bare letter n, x or z would be a digit class), so an
    answered call runs four priorities and sets no variable (each priority and variable
    is a message to every Stasis subscriber, :mod:`ivr.trunks.dialplan`)."""
    prompt = f"{prompts_dir}/${{CUT(EXTEN,-,2)}}/${{CUT(EXTEN,-,3)}}"
    return (
        f"[{CONTEXT}]\n"
        "; <answer mode>-<language>-<outcome>-<Q.850 cause>, from the gateway's continue\n"
        f"exten => _[a].,1,Set(TIMEOUT(absolute)={prompt_timeout:g})\n"
        " same => n,Answer()\n"
        f" same => n,Playback({prompt})\n"
        f" same => n,Hangup({ANSWERED_CAUSE})\n"
        f"exten => _[e].,1,Set(TIMEOUT(absolute)={prompt_timeout:g})\n"
        " same => n,Set(IVR_CAUSE=${CUT(EXTEN,-,4)})\n"
        " same => n,Progress()\n"
        f" same => n,Playback({prompt},noanswer)\n"
        " same => n,Hangup(${IVR_CAUSE})\n"
        # TIMEOUT(absolute) expired during the prompt: release as the prompt would have
        # (an answered call has no IVR_CAUSE: Hangup() is normal clearing, a BYE).
        "exten => T,1,Hangup(${IVR_CAUSE})\n"
    )
