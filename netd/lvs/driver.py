"""netd's LVS driver: the configuration and checkd's pools in, the datapath table out.

netd's daemon hands it ``config.current`` and every ``check.pool.*`` message; the driver works
out the virtual servers (:mod:`netd.lvs.fromconfig`) and applies them through the backend on
the daemon's netlink worker thread, one reconcile at a time: changes that arrive while one runs
are coalesced into the next, and each reconcile is one transaction (only what differs).

* **Start.** A table an earlier run left (netd was killed) keeps forwarding until the first
  apply replaces it in the same transaction that builds the new one, so restarting netd does
  not interrupt the service. The first apply waits for checkd's pools (at most
  :data:`POOL_GRACE` after the configuration): a restarted netd must not put a real server
  that checkd has taken out back in for a moment. With no virtual server configured the
  leftovers are removed at once.
* **Drift.** The table is read back and rebuilt when someone changed it
  (:meth:`netd.lvs.LvsBackend.reconcile`): at once when another process commits an nftables
  transaction touching it (:class:`netd.nftwatch.NftWatch`; at most once every
  :data:`WATCH_SPACING`),
  and every :data:`RECONCILE_EVERY_WATCHED` seconds as a backstop (:data:`RECONCILE_EVERY`
  when the notifications cannot be had).
* **Failures.** A virtual server that cannot be programmed, or whose transaction the kernel
  refuses, is reported on ``net.applied.lvs:<key>`` (the same :class:`bus.messages.Applied` as
  for VIPs) and the others are applied without it.
* **Stop.** :meth:`LvsDriver.stop` withdraws the table, as keepalived removes its IPVS services
  at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Final, Protocol

import structlog
from pyroute2.netlink.nfnetlink.nftsocket import NFPROTO_INET, NFPROTO_NETDEV

from bus import messages
from core.model import Config
from netd.errors import (
    KernelError,
    LvsApplyError,
    LvsConfigError,
    LvsUnsupportedError,
    NetdError,
    NftError,
)
from netd.lvs.backend import LvsBackend, choose_backend
from netd.lvs.fromconfig import Desired, desired_servers
from netd.lvs.model import VirtualServer
from netd.lvs.nft_backend import DEFAULT_DR_TABLE, DEFAULT_TABLE
from netd.lvs.settings import LvsSettings, lvs_settings
from netd.nftwatch import NftWatch

__all__ = ["OWNER_PREFIX", "POOL_GRACE", "RECONCILE_EVERY", "RECONCILE_EVERY_WATCHED", "LvsDriver"]

log = structlog.get_logger(__name__)

POOL_GRACE: Final = 2.0  # longest the first apply waits for checkd's retained pools
RECONCILE_EVERY: Final = 5.0  # read the table back this often (someone may have changed it)
# With the kernel's commit notifications (NftWatch) the periodic read-back is only a backstop,
# and one notification-driven read-back a second is enough: a 1,000-server table took
# 0.3-0.6 s to read (loaded 2-core machine) on netd's one netlink thread, which VIPs share,
# and a busy firewall manager may commit many times a second.
RECONCILE_EVERY_WATCHED: Final = 30.0
WATCH_SPACING: Final = 1.0
OWNER_PREFIX: Final = "lvs:"  # net.applied.lvs:<key>
#: others' commits to these count
WATCHED: Final = frozenset({(NFPROTO_INET, DEFAULT_TABLE), (NFPROTO_NETDEV, DEFAULT_DR_TABLE)})


class Reports(Protocol):
    """The part of :class:`bus.Publisher` the driver uses."""

    def retain(self, topic: str, body: Mapping[str, Any]) -> None: ...

    def forget(self, topic: str) -> None: ...

    def publish(self, topic: str, body: Mapping[str, Any]) -> None: ...


class Watch(Protocol):
    """What :class:`netd.nftwatch.NftWatch` offers: other processes' nftables commits."""

    def fileno(self) -> int: ...

    def read(self) -> bool: ...

    def close(self) -> None: ...


Worker = Callable[..., Awaitable[Any]]  # the daemon's ``_kernel(fn, *args)``


class LvsDriver:
    def __init__(
        self,
        reports: Reports,
        worker: Worker,
        backend: Callable[[LvsSettings], LvsBackend] = choose_backend,
        *,
        enabled: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._enabled = enabled  # off: every input is ignored and the kernel never touched
        self._reports = reports
        self._worker = worker
        self._make_backend = backend
        self._clock = clock
        self._backend: LvsBackend | None = None
        self._config: Config | None = None
        self._config_at = 0.0
        self._generation = 0
        self._pools: dict[str, messages.PoolReport] = {}
        self._first_done = False
        self._dirty = False
        self._drift = False
        self._task: asyncio.Task[None] | None = None
        self._ticker: asyncio.Task[None] | None = None
        self._published: dict[str, tuple[int, int, tuple[messages.Failure, ...]]] = {}
        self._keys: frozenset[str] = frozenset()  # keys of the last desired state
        self._last_full = 0.0  # when the table was last applied or read back
        self._watch: Watch | None = None
        self._installed: dict[str, VirtualServer] = {}  # key -> the version the kernel holds
        self._stopping = False
        self._every = RECONCILE_EVERY  # periodic read-back (longer once commits are watched)
        self._drift_due: asyncio.TimerHandle | None = None

    # ---- inputs (event loop) ----------------------------------------------------------------

    def start(self, watch: Callable[[], Watch] | None = lambda: NftWatch(WATCHED)) -> None:
        """Begin the drift checks: periodic, and at once when another process commits an
        nftables transaction (``watch``). The first apply waits for a configuration."""
        if not self._enabled:
            return
        self._ticker = asyncio.create_task(self._tick(), name="netd.lvs.tick")
        if watch is None:
            return
        try:
            self._watch = watch()
        except NftError as exc:
            log.warning("netd.lvs.unwatched", reason=str(exc), detail="drift found every 5 s")
            return
        asyncio.get_running_loop().add_reader(self._watch.fileno(), self._foreign_commit)
        self._every = RECONCILE_EVERY_WATCHED

    def _foreign_commit(self) -> None:
        """Someone else changed the ruleset (maybe our table): read ours back soon."""
        assert self._watch is not None
        try:
            changed = self._watch.read()
        except NftError as exc:
            log.error("netd.lvs.watch_failed", reason=str(exc))
            changed = True
        if not changed or not self._first_done or self._drift_due is not None:
            return
        wait = max(0.0, self._last_full + WATCH_SPACING - self._clock())
        self._drift_due = asyncio.get_running_loop().call_later(wait, self._check_drift)

    def _check_drift(self) -> None:
        self._drift_due = None
        self._drift = True
        self._mark_dirty()

    def configure(self, config: Config, generation: int) -> None:
        if not self._enabled:
            return
        if self._config is None:
            self._config_at = self._clock()
        self._config, self._generation = config, generation
        self._mark_dirty()

    def pool(self, key: str, report: messages.PoolReport) -> None:
        """checkd's pool of the virtual server ``key`` (``check.pool.<key>``); an unchanged
        one (the periodic re-send) costs nothing."""
        if self._pools.get(key) == report:
            return
        self._pools[key] = report
        self._mark_dirty()

    async def stop(self, *, withdraw: bool = True) -> None:
        """Finish the apply under way, then withdraw the table (unless told to leave it)."""
        self._stopping = True
        if self._drift_due is not None:
            self._drift_due.cancel()
        if self._watch is not None:
            with contextlib.suppress(ValueError, OSError):
                asyncio.get_running_loop().remove_reader(self._watch.fileno())
            self._watch.close()
            self._watch = None
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._task is not None:
            # Not cancelled: its netlink call runs on the worker thread regardless, and a
            # backend or table it is creating must be known to be withdrawn.
            await self._task
        backend = self._backend
        if backend is None:
            return
        self._backend = None
        try:
            if withdraw:
                await self._worker(backend.withdraw)
        except KernelError as exc:
            log.error("netd.lvs.withdraw_failed", reason=str(exc))
        finally:
            await self._worker(backend.close)

    # ---- reconcile ---------------------------------------------------------------------------

    def _mark_dirty(self) -> None:
        self._dirty = True
        if self._stopping:
            return
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="netd.lvs.reconcile")

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(min(POOL_GRACE, RECONCILE_EVERY) / 4)
            if not self._first_done and self._config is not None:
                self._mark_dirty()  # the grace may have ended
            elif self._first_done and self._clock() - self._last_full >= self._every:
                self._check_drift()

    async def _run(self) -> None:
        while self._dirty and not self._stopping:
            self._dirty = False
            config = self._config
            if config is None or not self._ready(config):
                return
            desired = desired_servers(config, self._pools)
            try:
                if self._backend is None:
                    settings = lvs_settings(config)
                    self._backend = await self._worker(self._make_backend, settings)
                failures = await self._apply(self._backend, desired)
            except NetdError as exc:
                log.error("netd.lvs.failed", reason=str(exc))
                failures = {
                    key: _failure(key, desired.names[key], "apply", exc) for key in desired.servers
                }
            self._first_done = True
            self._last_full = self._clock()
            self._report(desired, failures)

    def _ready(self, config: Config) -> bool:
        """The first apply waits until checkd published every pool, or the grace ended."""
        if self._first_done:
            return True
        desired = desired_servers(config, {})
        waiting = [k for k in desired.servers if k not in self._pools]
        return not waiting or self._clock() - self._config_at >= POOL_GRACE

    async def _apply(self, backend: LvsBackend, desired: Desired) -> dict[str, messages.Failure]:
        """Apply every virtual server in one transaction; if the kernel refuses it, one at a
        time, so that each refusal is reported for the virtual server it belongs to."""
        failures = {
            key: _failure(key, desired.names[key], "configure", exc)
            for key, exc in desired.errors.items()
        }
        want = {}
        for key, vs in desired.servers.items():
            try:
                backend.check(vs)  # what this datapath cannot forward fails alone
            except LvsConfigError as exc:
                failures[key] = _failure(key, desired.names[key], "configure", exc)
                continue
            want[key] = vs
        if not want and not self._first_done:
            removed = await self._worker(backend.start)  # nothing to replace leftovers with
            if removed:
                log.info("netd.lvs.leftovers_removed", tables=removed)
            return failures
        fn = backend.reconcile if self._drift else backend.apply
        self._drift = False
        try:
            applied = await self._worker(fn, list(want.values()))
            self._installed = want
            if applied.ops:
                log.info(
                    "netd.lvs.applied",
                    services=len(want),
                    operations=len(applied.ops),
                    generation=applied.generation,
                    rebuilt=applied.rebuilt,
                )
            return failures
        except LvsApplyError as exc:
            # The backend applied the others and says which it could not (IPVS, no
            # transactions): report those, no retries.
            refused = {key for key, vs in want.items() if vs.service in exc.failures}
            for key in refused:
                reason = exc.failures[want[key].service]
                log.error("netd.lvs.vs_failed", vs=desired.names[key], reason=str(reason))
                failures[key] = _failure(key, desired.names[key], "apply", reason)
            self._installed = {k: vs for k, vs in want.items() if k not in refused}
            return failures
        except KernelError as exc:
            log.error("netd.lvs.apply_failed", reason=str(exc), detail="retrying one at a time")
        # A refused virtual server keeps what the kernel held for it (a stale pool still
        # serves); one the configuration dropped goes.
        held = {k: vs for k, vs in self._installed.items() if k in want}
        for key, vs in want.items():
            trial = {**held, key: vs}
            try:
                await self._worker(fn, list(trial.values()))
            except KernelError as exc:
                log.error("netd.lvs.vs_failed", vs=desired.names[key], reason=str(exc))
                failures[key] = _failure(key, desired.names[key], "apply", exc)
                continue
            held = trial
        await self._worker(fn, list(held.values()))  # nothing passed: still drop the removed
        self._installed = held
        return failures

    def _report(self, desired: Desired, failures: Mapping[str, messages.Failure]) -> None:
        """``net.applied.lvs:<key>`` for every virtual server; a removed one's goes."""
        keys = frozenset(desired.names)
        for key in sorted(self._keys - keys):
            topic = f"net.applied.{OWNER_PREFIX}{key}"
            self._reports.forget(topic)
            self._published.pop(key, None)
            gone = messages.Applied(f"{OWNER_PREFIX}{key}", self._generation, (), items=0)
            self._reports.publish(topic, gone.encode())
        self._keys = keys
        for key in sorted(keys):
            failed = failures.get(key)
            vs = desired.servers.get(key)
            items = len(vs.pool()) if vs is not None and failed is None else 0
            marker = (self._generation, items, (failed,) if failed else ())
            if self._published.get(key) == marker:
                continue
            self._published[key] = marker
            report = messages.Applied(
                f"{OWNER_PREFIX}{key}",
                self._generation,
                marker[2],
                items=items,
                backend=self._backend.name if self._backend is not None else None,
            )
            self._reports.retain(f"net.applied.{OWNER_PREFIX}{key}", report.encode())


def _failure(key: str, name: str, action: str, exc: NetdError) -> messages.Failure:
    """A virtual server that is not forwarded as configured, named as ``-t`` and checkd name
    it (the configuration's ``virtual_server`` line and the key of its topics)."""
    if isinstance(exc, KernelError):
        code, reason = exc.errno_name, exc.reason
    else:
        unsupported = isinstance(exc, LvsUnsupportedError)
        # Named, not looked up: errno.errorcode spells EOPNOTSUPP as its Linux alias ENOTSUP.
        code, reason = ("EOPNOTSUPP" if unsupported else "EINVAL"), str(exc)
    return messages.Failure(
        item={"kind": "virtual_server", "key": key, "name": name},
        action=action,
        errno=code,
        reason=reason,
    )
