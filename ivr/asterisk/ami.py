"""AMI over panoramisk (asyncio): actions, CLI commands, events. Protocol only.

panoramisk reconnects and logs in again by itself after an Asterisk restart; its
``on_disconnect`` receives the Shutdown event rather than an exception (LAB-NOTES).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from panoramisk import Manager

from ivr.config import AsteriskSettings
from ivr.log import get_logger

log = get_logger("ivr.ami")

AmiEvent = dict[str, str]


class AmiError(RuntimeError):
    pass


def _plain(message: Any) -> AmiEvent:
    return {str(k): str(v) for k, v in dict(message).items()}


class AmiClient:
    def __init__(
        self,
        settings: AsteriskSettings,
        on_event: Callable[[AmiEvent], None] | None = None,
        on_login: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.on_event = on_event
        self.on_login_hook = on_login
        self._manager: Manager | None = None
        self.logged_in = asyncio.Event()

    def subscribe(
        self, on_event: Callable[[AmiEvent], None], on_login: Callable[[], None] | None = None
    ) -> None:
        """Where events go, and what runs after every login (first or after a restart)."""
        self.on_event = on_event
        self.on_login_hook = on_login

    async def connect(self, timeout: float | None = None) -> None:
        """Connect and log in; raises :class:`AmiError` if that fails within ``timeout``."""
        loop = asyncio.get_running_loop()
        quiet = logging.getLogger("ivr.ami.panoramisk")
        quiet.setLevel(logging.CRITICAL)  # its reconnect chatter; we log state ourselves
        self._manager = Manager(
            loop=loop,
            host=self.settings.host,
            port=self.settings.ami_port,
            username=self.settings.ami_user,
            secret=self.settings.ami_password,
            ping_delay=5,
            ping_interval=5,
            reconnect_timeout=2,
            # Only the "system" class (ContactStatus, Registry, FullyBooted, Reload...):
            # with all events on, Asterisk sends dozens per call (Newchannel, VarSet,
            # Newexten, ...) that cost it and us CPU on the busiest path for nothing.
            events="system",
            on_login=self._on_login,
            on_disconnect=self._on_disconnect,
            log=quiet,
        )
        self._manager.register_event("*", self._dispatch)
        try:
            async with asyncio.timeout(timeout or self.settings.connect_timeout):
                await self._connect_once()
        except (OSError, TimeoutError) as exc:
            self.close()
            raise AmiError(
                f"cannot log in to AMI at {self.settings.host}:{self.settings.ami_port} "
                f"({exc or type(exc).__name__})"
            ) from None

    async def _connect_once(self) -> None:
        assert self._manager is not None
        await self._manager.connect()
        await self.logged_in.wait()

    def _on_login(self, manager: Manager) -> None:
        self.logged_in.set()
        log.info("ami_logged_in", host=self.settings.host, port=self.settings.ami_port)
        if self.on_login_hook is not None:
            self.on_login_hook()

    def _on_disconnect(self, manager: Manager, exc: Any) -> None:
        self.logged_in.clear()
        log.warning("ami_disconnected")

    def _dispatch(self, manager: Manager, message: Any) -> None:
        if self.on_event is None:
            return
        try:
            self.on_event(_plain(message))
        except Exception:
            log.exception("ami_event_failed", event=message.get("Event"))

    @property
    def connected(self) -> bool:
        return self.logged_in.is_set()

    async def action(self, name: str, **params: str) -> list[AmiEvent]:
        """Send an action and return every message of its response (list actions end
        with a ``...Complete`` event)."""
        if self._manager is None or not self.connected:
            raise AmiError("AMI is not connected")
        async with asyncio.timeout(self.settings.connect_timeout):
            result = await self._manager.send_action({"Action": name, **params})
        messages = result if isinstance(result, list) else [result]
        out = [_plain(m) for m in messages]
        if out and out[0].get("Response") == "Error":
            raise AmiError(f"{name}: {out[0].get('Message', 'error')}")
        return out

    async def command(self, command: str) -> str:
        """A CLI command; its output as text."""
        [response] = (await self.action("Command", Command=command))[:1]
        output = response.get("Output", "")
        return output if isinstance(output, str) else "\n".join(output)

    def close(self) -> None:
        if self._manager is not None:
            self._manager.close()
            # panoramisk schedules a reconnect from connection_lost; stop it from doing so.
            self._manager.connection_lost = lambda exc: None
            self._manager = None
        self.logged_in.clear()
