"""structlog, configured once: JSON lines off a terminal, console output on one.

Phone numbers never reach a log line whole: :func:`mask_phone_numbers` rewrites every
run of 9 or more digits (with an optional ``+``) in every value to ``090****5678``.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

from ivr import jsoncodec
from ivr.numbers import mask

# Not inside a longer word, id or decimal: Asterisk channel ids (1732543123.45) stay whole.
_NUMBER = re.compile(r"(?<![\w.\-])\+?\d[\d\-]{6,}\d(?![\w\-]|\.\d)")
# Our own authentication numbers are not personal data; ops need them whole.
_NEVER_MASK = frozenset({"timestamp", "level", "did", "dial_number", "dids"})


def _mask_match(m: re.Match[str]) -> str:
    text = m.group(0)
    # Japanese numbers have 10 or 11 digits with the leading 0; dates have 8.
    return mask(text) if sum(ch.isdigit() for ch in text) >= 9 else text


def _mask_value(value: Any) -> Any:
    if isinstance(value, str):
        return _NUMBER.sub(_mask_match, value)
    if isinstance(value, dict):
        return {k: _mask_value(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_mask_value(v) for v in value)
    return value


def mask_phone_numbers(
    _logger: Any, _method: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: mask anything that looks like a phone number."""
    for key, value in event_dict.items():
        if key not in _NEVER_MASK:
            event_dict[key] = _mask_value(value)
    return event_dict


def configure(level: str = "info", fmt: str = "auto") -> None:
    """Set up structlog for the process. ``fmt`` is ``auto``, ``json`` or ``console``."""
    use_console = fmt == "console" or (fmt == "auto" and sys.stderr.isatty())
    renderer: Any = (
        structlog.dev.ConsoleRenderer()
        if use_console
        else structlog.processors.JSONRenderer(serializer=jsoncodec.log_dumps)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            mask_phone_numbers,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
