"""The one place that builds the gateway: store, services, ARI, AMI, HTTP API.

:func:`create_app` makes every service and passes each its dependencies by constructor;
the adapters (store, ARI, AMI) can be passed in, so API tests run on fakes and
integration tests on the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import aiohttp
from aiohttp import web

from ivr import api, numbers
from ivr.api.errors import error_middleware
from ivr.api.portal import bearer_auth
from ivr.asterisk.ami import AmiClient, AmiError
from ivr.asterisk.ari import AriClient
from ivr.callbacks import CallbackSender
from ivr.clienttoken import ClientTokens
from ivr.config import AsteriskSettings, ConfigError, PortalSettings, Settings
from ivr.log import configure, get_logger
from ivr.metrics import Metrics
from ivr.ratelimit import Limits
from ivr.sdnotify import notify
from ivr.stasis import AriConnection, CallFlow, CallPolicy, CallRouter
from ivr.store import make_store
from ivr.trunks import Inventory, InventoryError, load_inventory
from ivr.trunks.status import AmiPort, TrunkMonitor
from ivr.verification.ports import Store
from ivr.verification.service import VerificationService

log = get_logger("ivr.app")


class AmiConnection(AmiPort, Protocol):
    async def connect(self, timeout: float | None = None) -> None: ...

    def close(self) -> None: ...


MAX_HEADER_BYTES = 32768
ROUTER = web.AppKey("router", CallRouter)
ARI = web.AppKey[AriConnection]("ari")
AMI = web.AppKey[AmiConnection]("ami")


NODES = web.AppKey("nodes", dict)


@dataclass
class Node:
    """One Asterisk node: its own ARI connection (reconnecting on its own) and router."""

    name: str
    ari: AriConnection
    router: CallRouter


@dataclass
class Components:
    """What :func:`create_app` built, for tests that want to look inside."""

    store: Store
    service: VerificationService
    router: CallRouter  # the first node's
    ari: AriConnection
    sender: CallbackSender
    nodes: dict[str, Node]


def dial_pool(inventory: Inventory) -> tuple[str, ...]:
    """Only a trusted trunk's DIDs can verify anyone, so only they are handed out."""
    return tuple(sorted(n for n, (trunk, _) in inventory.dids.items() if trunk.trusted))


def create_app(
    settings: Settings,
    inventory: Inventory | None = None,
    *,
    store: Store | None = None,
    ari: AriConnection | None = None,
    aris: Mapping[str, AriConnection] | None = None,
    ami: AmiConnection | None = None,
    call_policy: CallPolicy | None = None,
) -> web.Application:
    """``ari`` stands for the one node (tests on a fake); ``aris`` for several, by node
    name; neither: one :class:`AriClient` per node of the settings."""
    inventory = inventory or load_inventory(settings.inventory)
    store = store or make_store(settings)
    node_settings = settings.asterisk_nodes
    if aris is None:
        if ari is not None:
            aris = {node_settings[0][0]: ari}
        else:
            aris = {name: AriClient(node) for name, node in node_settings}
    # Trunk status (AMI) is read from the first node: every node carries the same trunks.
    ami = ami or AmiClient(node_settings[0][1])
    call_policy = call_policy or CallPolicy.from_settings(settings)
    policy = numbers.NumberPolicy(settings.numbers.allow_060, settings.numbers.deny_prefixes)
    metrics = Metrics()
    limits = Limits(settings.limits)

    sender = CallbackSender(store, settings.callbacks, settings.portals, metrics=metrics)
    store.set_commit_listener(sender.offer)  # committed events are delivered at once
    service = VerificationService(
        store, dial_pool(inventory), settings.verification, policy, metrics=metrics
    )
    store.set_change_listener(service.on_store_change, service.recheck_waiters)
    nodes: dict[str, Node] = {}
    for name, node_ari in aris.items():
        flow = CallFlow(node_ari, service, inventory, policy, call_policy, metrics, limits, name)
        nodes[name] = Node(name, node_ari, CallRouter(node_ari, flow))
        metrics.ari_connected.labels(name).set_function(_connected(node_ari))
    first = next(iter(nodes.values()))
    monitor = TrunkMonitor(ami, inventory)
    metrics.ami_connected.set_function(lambda: float(ami.connected))
    metrics.long_polls.set_function(lambda: float(service.waiting))

    app = web.Application(
        middlewares=[error_middleware, bearer_auth],
        client_max_size=settings.api.max_body_bytes,
        # aiohttp answers a header past its limit (8190 bytes by default) in plain text,
        # before any middleware: raise the limit so an over-long Idempotency-Key gets
        # the API's JSON error. Headers past 32 KiB still get aiohttp's 400.
        handler_args={"max_field_size": MAX_HEADER_BYTES},
    )
    app[api.SETTINGS] = settings
    app[api.STORE] = store
    app[api.POLICY] = policy
    app[api.METRICS] = metrics
    app[api.LIMITS] = limits
    app[api.SENDER] = sender
    app[api.SERVICE] = service
    app[api.CLIENT_TOKENS] = ClientTokens(settings.api.client_token_secret)
    if not settings.api.client_token_secret and settings.store.url:
        log.warning(
            "client_token_secret_unset",
            detail="client tokens work on this process only; set api.client_token_secret"
            " to the same value on every gateway",
        )
    app[api.MONITOR] = monitor
    app[ROUTER] = first.router
    app[ARI] = first.ari
    app[NODES] = nodes
    app[AMI] = ami

    async def ari_ready() -> bool:
        # Calls flow while any node is connected; /readyz lists each node.
        return any(n.ari.connected.is_set() for n in nodes.values())

    checks: dict[str, api.ReadyCheck] = {"store": store.ping, "asterisk": ari_ready}
    app[api.NODE_STATE] = lambda: {n: node.ari.connected.is_set() for n, node in nodes.items()}
    app[api.READY_CHECKS] = checks
    api.add_routes(app)

    async def store_ctx(app: web.Application) -> AsyncIterator[None]:
        await store.open()
        yield
        await service.flush_ends()
        await store.close()

    async def expiry_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(service.run_expiry(), name="expiry")
        yield
        await _cancel(task)

    async def ari_ctx(app: web.Application) -> AsyncIterator[None]:
        for node in nodes.values():
            await node.ari.start()
        yield
        for node in nodes.values():
            await node.router.close()
            await node.ari.close()

    async def retention_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(service.run_retention(settings.retention), name="retention")
        yield
        await _cancel(task)

    async def sender_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(sender.run(), name="callbacks")
        yield
        await _cancel(task)

    async def ami_ctx(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(_keep_ami(ami), name="ami")
        yield
        await _cancel(task)
        await monitor.close()
        ami.close()

    async def release_polls(app: web.Application) -> None:
        # Runs before the server waits for its handlers: long polls answer at once.
        service.release_waiters()

    app.on_shutdown.append(release_polls)
    app.cleanup_ctx.extend([store_ctx, expiry_ctx, retention_ctx, sender_ctx, ami_ctx, ari_ctx])
    return app


def _connected(ari: AriConnection) -> Callable[[], float]:
    return lambda: float(ari.connected.is_set())


async def _cancel(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _keep_ami(ami: AmiConnection) -> None:
    """Log in to AMI, retrying until it answers; panoramisk reconnects after that."""
    delay = 0.5
    while True:
        try:
            await ami.connect()
            return
        except AmiError as exc:
            log.warning("ami_connect_failed", error=str(exc), retry_in=delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def reload_inventory(app: web.Application, inventory: Inventory) -> None:
    """Use a new trunk inventory without dropping a call (SIGHUP after `trunks apply`)."""
    pool = dial_pool(inventory)
    app[api.SERVICE].pool = pool
    for node in app[NODES].values():
        node.router.flow.reload_inventory(inventory)
    app[api.MONITOR].reload_inventory(inventory)
    log.info("inventory_reloaded", trunks=len(inventory.trunks), dids=len(pool))


def components(app: web.Application) -> Components:
    return Components(
        app[api.STORE], app[api.SERVICE], app[ROUTER], app[ARI], app[api.SENDER], app[NODES]
    )


async def check_asterisk(settings: Settings) -> str:
    """Fail fast, naming the setting, when no node's ARI can be reached or one refuses
    us. With several nodes, one that is down only warns: it joins when it comes back."""
    versions: list[str] = []
    unreachable: list[ConfigError] = []
    for name, node in settings.asterisk_nodes:
        try:
            versions.append(await _check_node(node))
        except _Unreachable as exc:
            unreachable.append(exc.error)
            if len(settings.asterisk_nodes) > 1:
                log.warning("asterisk_node_unreachable", node=name, error=str(exc.error))
    if not versions:
        raise unreachable[0]
    return versions[0]


class _Unreachable(Exception):
    def __init__(self, error: ConfigError) -> None:
        self.error = error


async def _check_node(a: AsteriskSettings) -> str:
    auth = aiohttp.encode_basic_auth(a.ari_user, a.ari_password)
    url = f"{a.ari_url}/asterisk/info"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=a.connect_timeout)) as s,
            s.get(url, headers={"Authorization": auth}) as resp,
        ):
            if resp.status == 401:
                raise ConfigError(
                    "asterisk.ari_password", f"ARI at {a.ari_url} refused user {a.ari_user!r}"
                )
            if resp.status != 200:
                raise ConfigError("asterisk.http_port", f"ARI at {url} answered {resp.status}")
            info = await resp.json()
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        reason = str(exc) or type(exc).__name__
        raise _Unreachable(
            ConfigError(
                "asterisk.http_port",
                f"cannot reach ARI at {a.ari_url} ({reason}); is Asterisk up? "
                "(`ivr pbx up` starts the local one)",
            )
        ) from None
    return str(info.get("system", {}).get("version", "unknown"))


async def check_store(settings: Settings) -> None:
    """Fail fast, naming ``store.url`` (password masked), when PostgreSQL is unreachable."""
    if settings.store.url:
        from ivr.store.postgres import PostgresStore

        probe = PostgresStore(settings.store, "probe")
        await probe.connect(1, 1)
        await probe.close()


async def serve(settings: Settings) -> int:
    configure(settings.log.level, settings.log.format)
    inventory = load_inventory(settings.inventory)
    await check_store(settings)
    version = await check_asterisk(settings)
    app = create_app(settings, inventory)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, settings.api.host, settings.api.port)
    try:
        await site.start()
    except OSError as exc:
        await runner.cleanup()
        raise ConfigError(
            "api.port", f"cannot listen on {settings.api.host}:{settings.api.port} ({exc.strerror})"
        ) from None
    dev = PortalSettings()
    for portal in settings.portals:
        if set(portal.tokens) & set(dev.tokens) or set(portal.callback_secrets) & set(
            dev.callback_secrets
        ):
            log.warning(
                "development_credentials",
                portal=portal.name,
                hint="set your own [[portals]] tokens and callback_secrets",
            )
    log.info(
        "gateway_started",
        api=f"http://{settings.api.host}:{settings.api.port}",
        asterisk=version,
        app=settings.asterisk.app,
        nodes=[name for name, _ in settings.asterisk_nodes],
        dids=len(inventory.dids),
        store=settings.store.describe,
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    def on_hup() -> None:
        notify("RELOADING=1")
        try:
            reload_inventory(app, load_inventory(settings.inventory))
        except InventoryError as exc:
            log.error("inventory_reload_failed", error=str(exc), kept="the previous inventory")
        notify("READY=1")

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    # systemd (Type=notify): ready once the API listens; ARI connects on its own after.
    notify(f"READY=1\nSTATUS=serving on {settings.api.host}:{settings.api.port}")
    await stop.wait()
    notify("STOPPING=1")
    log.info("gateway_stopping")
    await runner.cleanup()
    return 0
