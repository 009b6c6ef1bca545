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
    """The ``ivr-release`` extension for one call (``mode`` is answer or early_media)."""
    return f"{mode}-{language}-{outcome}-{cause.q850}"


def prompts_dir(settings: Settings) -> str:
    """Where Asterisk reads the prompts: ``<dir>/<language>/<outcome>``."""
    return settings.calls.asterisk_prompts_dir or settings.pbx.sounds_dir


def dialplan(prompts_dir: str, prompt_timeout: float) -> str:
    """The ``ivr-release`` context: ``prompts_dir`` as Asterisk sees it; the prompt and
    its release end after ``prompt_timeout`` seconds at the latest."""
    return (
        f"[{CONTEXT}]\n"
        "; <answer mode>-<language>-<outcome>-<Q.850 cause>, from the gateway's continue\n"
        f"exten => _[ae].,1,Set(TIMEOUT(absolute)={prompt_timeout:g})\n"
        f" same => n,Set(IVR_PROMPT={prompts_dir}/${{CUT(EXTEN,-,2)}}/${{CUT(EXTEN,-,3)}})\n"
        f' same => n,GotoIf($["${{CUT(EXTEN,-,1)}}" = "{AnswerMode.ANSWER}"]?answered)\n'
        " same => n,Set(IVR_CAUSE=${CUT(EXTEN,-,4)})\n"
        " same => n,Progress()\n"
        " same => n,Playback(${IVR_PROMPT},noanswer)\n"
        " same => n,Hangup(${IVR_CAUSE})\n"
        f" same => n(answered),Set(IVR_CAUSE={ANSWERED_CAUSE})\n"
        " same => n,Answer()\n"
        " same => n,Playback(${IVR_PROMPT})\n"
        " same => n,Hangup(${IVR_CAUSE})\n"
        # TIMEOUT(absolute) expired during the prompt: release as the prompt would have.
        "exten => T,1,Hangup(${IVR_CAUSE})\n"
    )
