"""The layers hold: the serve path imports no development tooling, and the domain
imports no adapter."""

from __future__ import annotations

import subprocess
import sys

PROBE = """
import sys
from ivr.config import load_settings
from ivr.app import create_app
create_app(load_settings(None, environ={}))
import ivr.cli  # the command line itself imports tooling only inside its commands
loaded = sorted(m for m in sys.modules if m.startswith("ivr."))
print("\\n".join(loaded))
"""


def _loaded(code: str) -> list[str]:
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return out.split()


def test_the_serve_path_never_imports_devtools() -> None:
    loaded = _loaded(PROBE)
    assert "ivr.app" in loaded and "ivr.stasis.flow" in loaded
    assert [m for m in loaded if m.startswith("ivr.devtools")] == []


def test_the_domain_imports_no_adapter() -> None:
    code = "import ivr.verification.decisions, ivr.verification.service, ivr.calls, sys\n"
    code += "print('\\n'.join(sorted(m for m in sys.modules if m.startswith('ivr.'))))"
    loaded = _loaded(code)
    adapters = ("ivr.store", "ivr.asterisk", "ivr.api", "ivr.stasis", "ivr.app", "ivr.devtools")
    assert [m for m in loaded if m.startswith(adapters)] == []
