"""How calls end: the prompt per outcome and language, the release cause per outcome."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from ivr import prompts
from ivr.config import CallsSettings, ConfigError, Settings
from ivr.stasis import release
from ivr.vocabulary import Outcome, ReleaseCause


@dataclass(frozen=True)
class CallPolicy:
    # (outcome, language) -> the prompt as Asterisk plays it (ivr.stasis.release)
    media: Mapping[tuple[str, str], str]
    durations: Mapping[tuple[str, str], float]
    calls: CallsSettings

    @classmethod
    def from_settings(cls, settings: Settings) -> CallPolicy:
        """Check every prompt file now (``play`` would only fail at the call)."""
        calls = settings.calls
        try:
            loaded = prompts.load(Path(calls.prompts_dir))
        except prompts.PromptError as exc:
            raise ConfigError("calls.prompts_dir", str(exc)) from None
        base = release.prompts_dir(settings)
        media = {key: f"sound:{base}/{p.language}/{p.outcome}" for key, p in loaded.items()}
        return cls(media, {k: p.seconds for k, p in loaded.items()}, calls)

    def cause(self, outcome: Outcome) -> ReleaseCause:
        return self.calls.cause(outcome)
