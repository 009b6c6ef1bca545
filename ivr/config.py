"""Typed settings: embedded defaults, then a TOML file, then ``IVR_*`` environment variables.

Every value is checked when the settings are loaded. A bad value raises
:class:`ConfigError` whose message names the key (``api.port``), so start-up can stop
with one clear line instead of a traceback from deep inside the service.

Environment variables are ``IVR_<SECTION>_<KEY>``: ``IVR_API_PORT=8081``,
``IVR_ASTERISK_ARI_PASSWORD=...``. Lists are comma-separated (``IVR_API_TOKENS=a,b``).
"""

from __future__ import annotations

import base64
import dataclasses
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from urllib.parse import urlsplit

from ivr.config_base import ConfigError, check_node_ports, check_port
from ivr.config_cluster import EdgeSettings, NodeSettings, node_views, validate_nodes
from ivr.urls import callback_url_problem
from ivr.vocabulary import Outcome, ReleaseCause


def package_data(*parts: str) -> Path:
    """A file shipped inside the package (installed from a wheel or checked out alike)."""
    return Path(str(resources.files("ivr").joinpath("data", *parts)))


DEFAULT_INVENTORY = package_data("trunks.local.toml")
DEFAULT_PROMPTS = package_data("prompts")
# Settings that name files: a relative value in a settings file is taken relative to that
# file, so a gateway starts the same from any working directory.
PATH_SETTINGS = {
    ("store", "path"),
    ("calls", "prompts_dir"),
    ("pbx", "cache_dir"),
    ("edge", "run_dir"),
}


_port = check_port


@dataclass(frozen=True)
class AsteriskSettings:
    """How the gateway reaches Asterisk, and the loopback ports the local one listens on."""

    host: str = "127.0.0.1"
    sip_port: int = 15060
    http_port: int = 18088
    ami_port: int = 15038
    rtp_start: int = 10000
    rtp_end: int = 10999
    ari_user: str = "ivr"
    ari_password: str = "ivr-local-only"
    ami_user: str = "ivr"
    ami_password: str = "ivr-local-only"
    app: str = "phone-auth"  # this gateway's Stasis app (one WebSocket per app)
    # Every gateway's app, in the order the dialplan tries them: a call goes to the first
    # one connected, so a dead gateway costs no calls. Empty: just ``app``.
    apps: tuple[str, ...] = ()
    # With several apps: each call starts at a random one and falls through the rest in
    # turn, so live gateways share the calls; false: always the first connected one.
    spread_calls: bool = True
    connect_timeout: float = 5.0
    heartbeat: float = 5.0
    # Asterisk's systemname: prefixes channel ids, so they stay unique across nodes
    # (set per node from [[nodes]]).
    system_name: str = ""
    # "minimal": Asterisk does only the work the gateway needs (its modules, no CDRs, no
    # ICE, no timing module, no per-call AMI events, a dialplan that sets nothing on the
    # way); "stock": Debian's module set and defaults with the dialplan of before (the
    # benchmark's comparison; docs/benchmarks.md).
    profile: str = "minimal"

    def validate(self) -> None:
        check_node_ports("asterisk", self)
        for key, name in (("app", self.app), *(("apps", a) for a in self.apps)):
            if not name or not name.replace("-", "").replace("_", "").isalnum():
                raise ConfigError(
                    f"asterisk.{key}", f"must be letters, digits, - or _, got {name!r}"
                )
        if self.apps and self.app not in self.apps:
            raise ConfigError("asterisk.apps", f"must include this gateway's app {self.app!r}")
        if len(set(self.apps)) != len(self.apps):
            raise ConfigError("asterisk.apps", "lists an app twice")
        if self.profile not in ("minimal", "stock"):
            raise ConfigError("asterisk.profile", f"must be minimal or stock, got {self.profile!r}")
        if self.connect_timeout <= 0:
            raise ConfigError("asterisk.connect_timeout", "must be positive")
        if self.heartbeat <= 0:
            raise ConfigError("asterisk.heartbeat", "must be positive")

    @property
    def stasis_apps(self) -> tuple[str, ...]:
        return self.apps or (self.app,)

    @property
    def ari_url(self) -> str:
        return f"http://{self.host}:{self.http_port}/ari"


@dataclass(frozen=True)
class PbxSettings:
    """The local Asterisk in a Debian chroot (development and tests)."""

    cache_dir: str = ""  # default: $XDG_CACHE_HOME/ivr or ~/.cache/ivr
    instance: str = "dev"
    suite: str = "sid"
    mirror: str = ""  # default: the Debian mirror this machine's apt already uses

    def validate(self) -> None:
        if not self.instance or not self.instance.replace("-", "").isalnum():
            raise ConfigError(
                "pbx.instance", f"must be letters, digits or -, got {self.instance!r}"
            )

    @property
    def sounds_dir(self) -> str:
        """Where the local chroot's Asterisk finds the prompts (``ivr pbx up`` puts them
        there): the default of ``calls.asterisk_prompts_dir``."""
        return f"/ivr/{self.instance}/sounds"

    @property
    def cache_path(self) -> Path:
        if self.cache_dir:
            return Path(self.cache_dir).expanduser()
        base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
        return Path(base) / "ivr"


@dataclass(frozen=True)
class ApiSettings:
    host: str = "127.0.0.1"
    port: int = 8080
    ops_tokens: tuple[str, ...] = ("dev-ops-token",)  # for /admin; portal tokens cannot
    max_wait: int = 60
    max_body_bytes: int = 16384
    # Keys the browser-safe client tokens (ivr/clienttoken.py); every gateway behind one
    # address needs the same. Empty: each process draws its own at start.
    client_token_secret: str = ""
    # "asyncio" (the standard loop) or "uvloop": about 5 % less CPU per call, about 10 MiB
    # more with 10,000 long polls open (docs/benchmarks.md)
    event_loop: str = "asyncio"

    def validate(self) -> None:
        _port("api.port", self.port)
        if any(len(t) < 8 for t in self.ops_tokens):
            raise ConfigError("api.ops_tokens", "tokens need 8 or more characters")
        if not 1 <= self.max_wait <= 600:
            raise ConfigError("api.max_wait", "must be between 1 and 600 seconds")
        if self.max_body_bytes < 1024:
            raise ConfigError("api.max_body_bytes", "must be at least 1024")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise ConfigError(
                "api.event_loop", f"must be uvloop or asyncio, got {self.event_loop!r}"
            )
        if self.client_token_secret and len(self.client_token_secret) < 32:
            raise ConfigError("api.client_token_secret", "needs 32 or more characters")


@dataclass(frozen=True)
class StoreSettings:
    """SQLite at ``path`` (the embedded default), or PostgreSQL when ``url`` is set
    (``postgresql://user:password@host:port/db``; give it as ``IVR_STORE_URL`` or
    ``env:NAME`` so the password stays out of the file)."""

    path: str = "var/ivr.sqlite3"
    url: str = ""
    pool_min: int = 2
    pool_max: int = 10
    # How long one gateway holds a callback it took from the shared outbox; past it,
    # another gateway may take it (its holder died). Longer than callbacks.timeout.
    lease_seconds: float = 60.0

    def validate(self) -> None:
        if not self.path and not self.url:
            raise ConfigError("store.path", "must not be empty")
        if self.url:
            parts = urlsplit(self.url)
            if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
                raise ConfigError(
                    "store.url",
                    f"must be postgresql://user:password@host:port/database, got {self.masked_url}",
                )
        if not 1 <= self.pool_min <= self.pool_max:
            raise ConfigError("store.pool_min", "must be at least 1 and at most pool_max")
        if self.lease_seconds < 5:
            raise ConfigError("store.lease_seconds", "must be at least 5 seconds")

    @property
    def kind(self) -> str:
        return "postgres" if self.url else "sqlite"

    @property
    def masked_url(self) -> str:
        """The URL with its password hidden, for logs and error messages."""
        parts = urlsplit(self.url)
        if parts.password is None:
            return self.url
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        return parts._replace(netloc=netloc).geturl()

    @property
    def describe(self) -> str:
        return self.masked_url if self.url else self.path


@dataclass(frozen=True)
class VerificationSettings:
    default_ttl: int = 180
    min_ttl: int = 30
    max_ttl: int = 900

    def validate(self) -> None:
        if not 1 <= self.min_ttl <= self.max_ttl:
            raise ConfigError("verification.min_ttl", "must be at least 1 and at most max_ttl")
        if not self.min_ttl <= self.default_ttl <= self.max_ttl:
            raise ConfigError("verification.default_ttl", "must lie between min_ttl and max_ttl")


@dataclass(frozen=True)
class NumbersSettings:
    """The number policy: which Japanese numbers may authenticate."""

    allow_060: bool = False
    deny_prefixes: tuple[str, ...] = ()

    def validate(self) -> None:
        for prefix in self.deny_prefixes:
            if not prefix.isdigit() or not prefix.startswith("0"):
                raise ConfigError(
                    "numbers.deny_prefixes", f"{prefix!r} is not a national prefix like '0180'"
                )


@dataclass(frozen=True)
class PortalSettings:
    """One portal (a client of the API): its tokens and where its callbacks go.

    ``tokens`` and ``callback_secrets`` entries may be ``env:NAME`` to read the value
    from the environment instead of the file.
    """

    name: str = "dev"
    tokens: tuple[str, ...] = ("dev-token",)
    callback_url: str = ""  # default for verifications created without one
    # Standard Webhooks secrets ("whsec_" + base64). Several at once during a rotation:
    # every callback then carries one signature per secret.
    callback_secrets: tuple[str, ...] = ("whsec_ZGV2LW9ubHktc2VjcmV0LWRvLW5vdC11c2U=",)
    callback_hosts: tuple[str, ...] = ("127.0.0.1", "localhost")  # allowed callback hosts
    # Origins of the portal's login pages (scheme://host[:port]): the only ones whose
    # browsers may read a verification with its client token (CORS).
    browser_origins: tuple[str, ...] = ("http://127.0.0.1:8090", "http://localhost:8090")

    def validate(self, key: str) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ConfigError(f"{key}.name", f"must be letters, digits, - or _, got {self.name!r}")
        if not self.tokens or any(len(t) < 8 for t in self.tokens):
            raise ConfigError(f"{key}.tokens", "needs at least one token of 8 or more characters")
        for secret in self.callback_secrets:
            if not secret.startswith("whsec_"):
                raise ConfigError(f"{key}.callback_secrets", "each secret starts with whsec_")
            try:
                raw = base64.b64decode(secret.removeprefix("whsec_"), validate=True)
            except ValueError:
                raise ConfigError(
                    f"{key}.callback_secrets", "whsec_ must be followed by base64"
                ) from None
            if len(raw) < 16:
                raise ConfigError(f"{key}.callback_secrets", "a secret needs at least 16 bytes")
        for origin in self.browser_origins:
            parts = urlsplit(origin)
            if (
                parts.scheme not in ("http", "https")
                or not parts.hostname
                or origin != (f"{parts.scheme}://{parts.netloc}")
            ):
                raise ConfigError(
                    f"{key}.browser_origins", f"{origin!r} is not scheme://host[:port]"
                )
        if self.callback_url:
            if problem := callback_url_problem(self.callback_url):
                raise ConfigError(f"{key}.callback_url", problem)
            if urlsplit(self.callback_url).hostname not in self.callback_hosts:
                raise ConfigError(f"{key}.callback_url", "its host is not in callback_hosts")


@dataclass(frozen=True)
class CallbacksSettings:
    """Delivery of signed callbacks from the outbox."""

    timeout: float = 5.0  # one attempt
    max_age: float = 86400.0  # retry until an event is this old, then mark it failed
    concurrency: int = 64  # deliveries in flight in all
    per_portal: int = 16  # in flight to one portal: a dead portal cannot hold every slot
    backoff_base: float = 1.0
    backoff_max: float = 600.0

    def validate(self) -> None:
        for name in ("timeout", "max_age", "backoff_base", "backoff_max"):
            if getattr(self, name) <= 0:
                raise ConfigError(f"callbacks.{name}", "must be positive")
        if not 1 <= self.per_portal <= self.concurrency:
            raise ConfigError("callbacks.per_portal", "must be between 1 and concurrency")


RELEASE_CAUSES: dict[str, int] = {str(c): c.sip_status for c in ReleaseCause}
CALL_OUTCOMES = tuple(str(o) for o in Outcome)


@dataclass(frozen=True)
class CallsSettings:
    """What the caller hears and how the call ends (see docs/operations.md)."""

    language: str = "ja"  # ja | en; a DID in the inventory may set its own
    prompts_dir: str = str(DEFAULT_PROMPTS)  # <lang>/<outcome>.wav, 8 kHz mono
    # The same files as Asterisk sees them; empty: the local chroot's copy (pbx.sounds_dir).
    asterisk_prompts_dir: str = ""
    release_cause: str = "busy"  # for unanswered calls (early_media, reject)
    cause_verified: str = ""  # per-outcome overrides; empty: release_cause
    cause_withheld: str = ""
    cause_not_eligible: str = ""
    cause_no_pending: str = ""
    cause_rejected_source: str = ""
    cause_failed: str = ""
    prompt_timeout: float = 30.0

    def validate(self) -> None:
        if self.language not in ("ja", "en"):
            raise ConfigError("calls.language", f"must be ja or en, got {self.language!r}")
        for name in ("release_cause", *(f"cause_{o}" for o in CALL_OUTCOMES)):
            value = getattr(self, name)
            if (value or name == "release_cause") and value not in RELEASE_CAUSES:
                raise ConfigError(
                    f"calls.{name}",
                    f"unknown cause {value!r}; one of {', '.join(RELEASE_CAUSES)}",
                )
        if self.prompt_timeout <= 0:
            raise ConfigError("calls.prompt_timeout", "must be positive")

    def cause(self, outcome: Outcome | str) -> ReleaseCause:
        value: str = getattr(self, f"cause_{outcome}", "") or self.release_cause
        return ReleaseCause(value)


@dataclass(frozen=True)
class LimitsSettings:
    """Abuse controls (per gateway process). 0 switches a limit off."""

    creates_per_second: float = 50.0  # per portal, with a burst of twice that
    creates_per_number_per_hour: int = 30  # a login page hammered for one holder
    checks_per_second: float = 20.0  # number checks per portal, burst twice that
    calls_per_caller_per_minute: int = 10  # released at once past it, before any store work
    # Caller numbers or prefixes whose calls are released at once ("+8150", "0312345678").
    block_callers: tuple[str, ...] = ()
    call_release_cause: str = "busy"  # for limited and blocked callers

    def validate(self) -> None:
        for name in (
            "creates_per_second",
            "creates_per_number_per_hour",
            "checks_per_second",
            "calls_per_caller_per_minute",
        ):
            if getattr(self, name) < 0:
                raise ConfigError(f"limits.{name}", "must be 0 (off) or more")
        for prefix in self.block_callers:
            if not prefix.lstrip("+").isdigit():
                raise ConfigError(
                    "limits.block_callers", f"{prefix!r} is not a number or number prefix"
                )
        if self.call_release_cause not in RELEASE_CAUSES:
            raise ConfigError(
                "limits.call_release_cause",
                f"unknown cause {self.call_release_cause!r}; one of {', '.join(RELEASE_CAUSES)}",
            )

    @property
    def blocked_prefixes(self) -> tuple[str, ...]:
        """The block list in E.164 form (national prefixes 0... become +81...)."""
        return tuple("+81" + p[1:] if p.startswith("0") else p for p in self.block_callers)


@dataclass(frozen=True)
class RetentionSettings:
    """How long personal data is kept (docs/privacy.md); then it is deleted."""

    calls_days: float = 90.0  # call records (masked caller, outcome, timings)
    verifications_days: float = 30.0  # after a verification ended (its full number)
    interval: float = 3600.0  # seconds between sweeps

    def validate(self) -> None:
        for name in ("calls_days", "verifications_days"):
            if getattr(self, name) < 1:
                raise ConfigError(f"retention.{name}", "must be at least 1 day")
        if self.interval < 10:
            raise ConfigError("retention.interval", "must be at least 10 seconds")


@dataclass(frozen=True)
class LogSettings:
    level: str = "info"
    format: str = "auto"  # auto | json | console

    def validate(self) -> None:
        if self.level.lower() not in {"debug", "info", "warning", "error"}:
            raise ConfigError(
                "log.level", f"must be debug, info, warning or error, got {self.level!r}"
            )
        if self.format not in {"auto", "json", "console"}:
            raise ConfigError("log.format", f"must be auto, json or console, got {self.format!r}")


@dataclass(frozen=True)
class Settings:
    asterisk: AsteriskSettings = field(default_factory=AsteriskSettings)
    pbx: PbxSettings = field(default_factory=PbxSettings)
    api: ApiSettings = field(default_factory=ApiSettings)
    store: StoreSettings = field(default_factory=StoreSettings)
    verification: VerificationSettings = field(default_factory=VerificationSettings)
    numbers: NumbersSettings = field(default_factory=NumbersSettings)
    calls: CallsSettings = field(default_factory=CallsSettings)
    callbacks: CallbacksSettings = field(default_factory=CallbacksSettings)
    limits: LimitsSettings = field(default_factory=LimitsSettings)
    retention: RetentionSettings = field(default_factory=RetentionSettings)
    log: LogSettings = field(default_factory=LogSettings)
    edge: EdgeSettings = field(default_factory=EdgeSettings)
    portals: tuple[PortalSettings, ...] = (PortalSettings(),)
    nodes: tuple[NodeSettings, ...] = ()  # several Asterisk nodes; empty: [asterisk] alone
    inventory: str = str(DEFAULT_INVENTORY)

    def validate(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if dataclasses.is_dataclass(value) and f.name != "edge":
                value.validate()  # type: ignore[union-attr]
        self.edge.validate()
        self._validate_nodes()
        if not self.portals:
            raise ConfigError("portals", "at least one portal is needed")
        seen_names: set[str] = set()
        seen_tokens: set[str] = set()
        for i, portal in enumerate(self.portals):
            portal.validate(f"portals[{i}]")
            if portal.name in seen_names:
                raise ConfigError(f"portals[{i}].name", f"{portal.name!r} is used twice")
            seen_names.add(portal.name)
            if seen_tokens & set(portal.tokens):
                raise ConfigError(f"portals[{i}].tokens", "a token belongs to one portal only")
            seen_tokens |= set(portal.tokens)
        if seen_tokens & set(self.api.ops_tokens):
            raise ConfigError("api.ops_tokens", "must differ from every portal token")
        if self.edge.enabled:
            for name in ("release_cause", *(f"cause_{o}" for o in CALL_OUTCOMES)):
                value = getattr(self.calls, name)
                if value and RELEASE_CAUSES[value] >= 500:
                    raise ConfigError(
                        f"calls.{name}",
                        f"{value!r} is a {RELEASE_CAUSES[value]} response: behind the edge a "
                        "5xx means a failed node and the call would be tried on another one",
                    )
        if not Path(self.inventory).is_file():
            raise ConfigError("inventory", f"trunk inventory {self.inventory} does not exist")

    def _validate_nodes(self) -> None:
        validate_nodes(self.nodes)

    @property
    def asterisk_nodes(self) -> tuple[tuple[str, AsteriskSettings], ...]:
        """Every Asterisk node as (name, its [asterisk] settings): ``[asterisk]`` alone
        (named ``main``) when no ``[[nodes]]`` are given."""
        return node_views(self.asterisk, self.nodes)


# Loading (TOML file, environment) lives beside the sections, in its own module.
from ivr.config_load import load_settings, replace  # noqa: E402

__all__ = [
    "ApiSettings",
    "AsteriskSettings",
    "CallbacksSettings",
    "CallsSettings",
    "ConfigError",
    "EdgeSettings",
    "LimitsSettings",
    "LogSettings",
    "NodeSettings",
    "NumbersSettings",
    "PbxSettings",
    "PortalSettings",
    "RetentionSettings",
    "Settings",
    "StoreSettings",
    "VerificationSettings",
    "load_settings",
    "replace",
]
