"""``net.applied.<owner>``: what netd tells each owner about its desired set after a reconcile.

One retained report per owner (not ``~leftover``): its generation, how many merged items it
holds, the ``fingerprint`` of the intent held (vrrpd.resume compares it) and every failure that
concerns it — kernel operations the kernel refused, protodown a VMAC refused, an item lost to
another owner's item of the same identity, and ``no_accept`` drop rules that could not be
installed. A report goes out only when what it says changes. An owner whose lease ran out gets
a last, unretained report saying so (``expired``): a restarted vrrpd must not resume from a
retained report that still lists its items as installed.

Beside them, one retained ``net.held`` names every ``vrrp:`` owner whose report lists
installed items or is about to (netd holds a non-empty set for it), from netd's start on (empty
on a cold start): a starting vrrpd waits for the report of an instance netd holds, and for no other
(vrrpd.resume).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from bus import messages
from netd.desired import Item, describe, item_key
from netd.errors import KernelError
from netd.kernel import ApplyResult
from netd.owners import LEFTOVER, VRRP_PREFIX, Owners
from netd.reconcile import Merged
from netd.store import DesiredStore

__all__ = [
    "HeldSummary",
    "Publisher",
    "failures_by_owner",
    "held_owners",
    "publish_applied",
    "publish_expired",
    "reported_item",
]

HELD_TOPIC = "net.held"


class Publisher(Protocol):
    def publish(self, topic: str, body: Mapping[str, Any]) -> None: ...

    def retain(self, topic: str, body: Mapping[str, Any]) -> None: ...

    def forget(self, topic: str) -> None: ...


def reported_item(item: Item) -> Mapping[str, Any]:
    """How a failure report names an item: as the intent (or, for ``static``, the
    configuration) gave it, ``{"kind": ..., "spec": <core model part>}``. An item netd did not
    get from one (a leftover it found in the kernel) is named by its kernel identity."""
    if item.origin is not None:
        return item.origin
    return {"kind": "kernel", "key": describe(item)}


def failures_by_owner(
    result: ApplyResult,
    merged: Merged,
    vmac_failures: Iterable[tuple[str, messages.Failure]],
    unblocked: Mapping[str, KernelError],
    table: str,
) -> dict[str, list[messages.Failure]]:
    """Owner -> its failures, in net.applied's form."""
    desired = {item_key(i): i for i in merged.items}
    failed: dict[str, list[messages.Failure]] = {}
    for f in result.failures:
        key = item_key(f.op.item)
        for owner in merged.owners.get(key, ()):
            failed.setdefault(owner, []).append(
                messages.Failure(
                    item=reported_item(desired.get(key, f.op.item)),
                    action=str(f.op.action),
                    errno=f.errno_name,
                    reason=f.reason,
                )
            )
    for owner, failure in vmac_failures:
        failed.setdefault(owner, []).append(failure)
    for c in merged.conflicts:
        failed.setdefault(c.dropped_owner, []).append(
            messages.Failure(
                item=reported_item(c.dropped),
                action="add",
                errno="EEXIST",
                reason=f"conflicts with {c.kept_owner}'s item of the same identity",
            )
        )
    for owner, exc in unblocked.items():  # no_accept not enforced: say so
        failed.setdefault(owner, []).append(
            messages.Failure(
                item={"kind": "firewall", "table": table},
                action="add",
                errno=exc.errno_name,
                reason=exc.reason,
            )
        )
    return failed


def publish_applied(
    publisher: Publisher,
    store: DesiredStore,
    owners: Owners,
    failed: Mapping[str, list[messages.Failure]],
) -> None:
    """Retain a report for every owner whose report would change."""
    for owner in store.owners():
        generation = store.generation(owner)
        if owner == LEFTOVER or generation is None:
            continue
        failures = failed.get(owner, [])
        state = owners.of(owner)
        items = len(state.owned)
        marker = (generation, len(failures), items, state.fingerprint)
        if state.published == marker:
            continue
        state.published = marker
        report = messages.Applied(
            owner,
            generation,
            tuple(failures),
            items=items,
            fingerprint=state.fingerprint or None,
        )
        publisher.retain(f"net.applied.{owner}", report.encode())


def publish_expired(publisher: Publisher, owner: str) -> None:
    """The retained report must not go on saying an expired owner's items are installed:
    a restarted vrrpd resumes only what netd still holds (vrrpd.resume)."""
    topic = f"net.applied.{owner}"
    publisher.forget(topic)
    gone = messages.Applied(owner, -1, (), items=0, expired=True)
    publisher.publish(topic, gone.encode())


def held_owners(owners: Owners) -> tuple[str, ...]:
    """The ``vrrp:`` owners netd holds a set for, or whose last ``net.applied`` report lists
    installed items (a report saying so is out, or comes with the next reconcile), sorted."""
    return tuple(
        s.name
        for s in owners.sorted()
        if s.name.startswith(VRRP_PREFIX)
        and (s.held or (s.published is not None and s.published[2] > 0))
    )


class HeldSummary:
    """``net.held``: retained at netd's start and again whenever the held owners change."""

    def __init__(self) -> None:
        self._last: tuple[str, ...] | None = None

    def publish(self, publisher: Publisher, owners: Owners) -> None:
        held = held_owners(owners)
        if held == self._last:
            return
        self._last = held
        publisher.retain(HELD_TOPIC, messages.Held(held).encode())
