"""``ivr trunks apply``: write the generated config into the live directory, reload what changed."""

from __future__ import annotations

import contextlib
import difflib
import re
from dataclasses import dataclass
from pathlib import Path

from ivr.asterisk.ami import AmiClient, AmiError
from ivr.config import Settings
from ivr.trunks import render
from ivr.trunks.inventory import Inventory

# What a reload has to touch for each generated file (CLI commands over AMI).
RELOADS = {
    "pjsip.conf": (
        "module reload res_pjsip.so",
        "module reload res_pjsip_outbound_registration.so",
    ),
    "extensions.conf": ("dialplan reload",),
    "rtp.conf": ("module reload res_rtp_asterisk.so",),
    "ari.conf": ("module reload res_ari.so",),
    "manager.conf": ("manager reload",),
    "http.conf": ("module reload http",),
}


@dataclass(frozen=True)
class FileChange:
    name: str
    added: int
    removed: int

    def __str__(self) -> str:
        return f"{self.name} (+{self.added} -{self.removed})"


def changes(old_dir: Path, files: dict[str, str]) -> list[FileChange]:
    out = []
    for name, body in sorted(files.items()):
        path = old_dir / name
        old = path.read_text(encoding="utf-8") if path.exists() else ""
        if old == body:
            continue
        added = removed = 0
        for line in difflib.unified_diff(old.splitlines(), body.splitlines(), lineterm="", n=0):
            if line.startswith("+") and not line.startswith("+++"):
                added += 1
            elif line.startswith("-") and not line.startswith("---"):
                removed += 1
        out.append(FileChange(name, added, removed))
    return out


async def apply(
    settings: Settings, inventory: Inventory, live_dir: Path, base_dir: str, ami: AmiClient
) -> list[FileChange]:
    """Render into ``live_dir`` and reload what changed over AMI. Returns the changes."""
    files = render.render(settings, inventory, base_dir)
    changed = changes(live_dir, files)
    render.write(files, live_dir)
    done: set[str] = set()
    if any(c.name == "modules.conf" for c in changed):
        # Before the rest: a new dialplan may call a function only a newly listed module
        # provides (BASE64_ENCODE). Loading one already loaded only says so; a module
        # no longer listed stays loaded until Asterisk restarts, which costs nothing.
        # ("module load" is refused as a CLI command over AMI; ModuleLoad is the action.)
        for module in re.findall(r"^load = (\S+)$", files["modules.conf"], re.MULTILINE):
            with contextlib.suppress(AmiError):  # already loaded
                await ami.action("ModuleLoad", Module=module, LoadType="load")
    for change in changed:
        for command in RELOADS.get(change.name, ()):
            if command not in done:
                await ami.command(command)
                done.add(command)
    if any(c.name == "pjsip.conf" for c in changed):
        # A reload leaves a registration alone when only its auth changed; register
        # again now so new credentials take effect (or fail) at once, not at expiry.
        for trunk in inventory.trunks:
            if trunk.registration is not None:
                await ami.action("PJSIPRegister", Registration=trunk.name)
    return changed
