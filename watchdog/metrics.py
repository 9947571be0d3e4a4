"""Prometheus metrics for the whole daemon, served by the watchdog from what the bus carries.

Off unless asked for (``pykeepalived --metrics HOST:PORT``, or ``metrics_listen HOST:PORT`` in
``global_defs``, a pykeepalived-only keyword). The watchdog already follows every component's
heartbeat and owns their restarts, so it serves the metrics: no extra process, and it sees the
same retained state (``vrrp.state.*``, ``health.*``) that ``pykeepalivedctl status`` shows.

Names: every metric mehdy/keepalived-exporter publishes keeps its name and labels, so existing
dashboards and alerts keep working — both its current names
(``keepalived_advertisements_received_total``, …) and its earlier ones
(``keepalived_advert_rcvd_total``, …). Ours sit beside them as ``pykeepalived_*``.
prometheus-client builds the exposition text (it knows the format's escaping and types); the
HTTP side is one GET on the watchdog's asyncio loop, so no thread runs beside the event loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

log = structlog.get_logger(__name__)

STATE_NUMBERS = {"INIT": 0, "BACKUP": 1, "MASTER": 2, "FAULT": 3}

# keepalived's statistic (its JSON name) -> (exporter's current name, its earlier name, help)
VRRP_COUNTERS: tuple[tuple[str, str, str, str], ...] = (
    ("advert_rcvd", "advertisements_received", "advert_rcvd", "Advertisements received"),
    ("advert_sent", "advertisements_sent", "advert_sent", "Advertisements sent"),
    ("become_master", "become_master", "become_master", "Became master"),
    ("release_master", "release_master", "release_master", "Released master"),
    ("packet_len_err", "packet_length_errors", "packet_len_err", "Packet length errors"),
    (
        "advert_interval_err",
        "advertisements_interval_errors",
        "advert_interval_err",
        "Advertisement interval errors",
    ),
    ("ip_ttl_err", "ip_ttl_errors", "ip_ttl_err", "TTL errors"),
    ("invalid_type_rcvd", "invalid_type_received", "invalid_type_rcvd", "Invalid type errors"),
    ("addr_list_err", "address_list_errors", "addr_list_err", "Address list errors"),
    ("invalid_authtype", "authentication_invalid", "invalid_authtype", "Authentication invalid"),
    (
        "authtype_mismatch",
        "authentication_mismatch",
        "authtype_mismatch",
        "Authentication mismatch",
    ),
    ("auth_failure", "authentication_failure", "auth_failure", "Authentication failure"),
    ("pri_zero_rcvd", "priority_zero_received", "pri_zero_rcvd", "Priority zero received"),
    ("pri_zero_sent", "priority_zero_sent", "pri_zero_sent", "Priority zero sent"),
)
COMMON_LABELS = ("iname", "intf", "vrid", "state")


@dataclass(slots=True)
class BusView:
    """The latest retained state per instance and per check, as the bus last said it."""

    instances: dict[str, Mapping[str, Any]] = field(default_factory=dict)
    verdicts: dict[str, Mapping[str, Any]] = field(default_factory=dict)

    def apply(self, topic: str, body: Mapping[str, Any]) -> None:
        if topic.startswith("vrrp.state."):
            self.instances[str(body["instance"])] = body
        elif topic.startswith("health."):
            self.verdicts[str(body["name"])] = body


class DaemonCollector(Collector):
    """Renders a BusView, the watchdog's restart counts and bus counters as metric families."""

    def __init__(
        self,
        view: BusView,
        restarts: Callable[[], Mapping[str, int]],
        bus_drops: Callable[[], Mapping[str, int]],
        bus_gaps: Callable[[], int],
    ) -> None:
        self.view = view
        self.restarts = restarts
        self.bus_drops = bus_drops
        self.bus_gaps = bus_gaps

    def collect(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("keepalived_up", "Status", value=1)
        yield from self._vrrp()
        yield from self._checks()
        yield from self._daemon()

    def _vrrp(self) -> Iterator[Metric]:
        state = GaugeMetricFamily(
            "keepalived_vrrp_state", "State of vrrp", labels=["iname", "intf", "vrid", "ip_address"]
        )
        counters = {
            stat: tuple(
                CounterMetricFamily(f"keepalived_{name}", text, labels=COMMON_LABELS)
                for name in dict.fromkeys((now, old))  # once where both names are one
            )
            for stat, now, old, text in VRRP_COUNTERS
        }
        prio = GaugeMetricFamily(
            "pykeepalived_vrrp_priority",
            "Priority: base as configured, effective after trackers",
            labels=["iname", "kind"],
        )
        transitions = CounterMetricFamily(
            "pykeepalived_vrrp_transitions", "State transitions", labels=["iname"]
        )
        drops = CounterMetricFamily(
            "pykeepalived_vrrp_drops",
            "Received adverts dropped, by reason",
            labels=["iname", "reason"],
        )
        for name, body in sorted(self.view.instances.items()):
            labels = [name, str(body.get("interface", "")), str(body.get("vrid", ""))]
            number = STATE_NUMBERS.get(str(body["state"]))
            for vip in body.get("vips", ()):
                if number is not None:
                    state.add_metric([*labels, str(vip).split("/", 1)[0]], number)
            stats = body.get("stats") or {}
            for stat, pair in counters.items():
                for family in pair:
                    family.add_metric([*labels, str(body["state"])], int(stats.get(stat, 0)))
            prio.add_metric([name, "effective"], int(body["priority"]))
            prio.add_metric([name, "base"], int(body.get("base_priority", body["priority"])))
            transitions.add_metric([name], int(body.get("transitions", 0)))
            for key, count in sorted((body.get("drops") or {}).items()):
                if str(key).startswith("drop."):
                    drops.add_metric([name, str(key)[5:]], int(count))
        yield state
        for pair in counters.values():
            yield from pair
        yield from (prio, transitions, drops)

    def _checks(self) -> Iterator[Metric]:
        status = GaugeMetricFamily(
            "keepalived_script_status", "Tracker Script Status", labels=["name"]
        )
        script_state = GaugeMetricFamily(
            "keepalived_script_state", "Tracker Script State", labels=["name"]
        )
        ok = GaugeMetricFamily(
            "pykeepalived_check_ok", "1 while a check's verdict is good", labels=["name", "kind"]
        )
        for name, body in sorted(self.view.verdicts.items()):
            good = 1 if body.get("ok") else 0
            kind = str(body.get("kind", "external"))
            if kind == "script":
                status.add_metric([name], good)  # the exporter's BAD=0, GOOD=1
                script_state.add_metric([name], 0)  # idle: runs are not reported on the bus
            ok.add_metric([name, kind], good)
        yield from (status, script_state, ok)

    def _daemon(self) -> Iterator[Metric]:
        restarts = CounterMetricFamily(
            "pykeepalived_component_restarts", "Restarts by the watchdog", labels=["component"]
        )
        for component, count in sorted(self.restarts().items()):
            restarts.add_metric([component], count)
        dropped = CounterMetricFamily(
            "pykeepalived_bus_dropped",
            "Bus messages dropped by the watchdog's reader",
            labels=["reason"],
        )
        for reason, count in sorted(self.bus_drops().items()):
            dropped.add_metric([reason], count)
        gaps = CounterMetricFamily("pykeepalived_bus_gaps", "Gaps in bus sequence numbers seen")
        gaps.add_metric([], self.bus_gaps())
        yield from (restarts, dropped, gaps)


def exposition(collector: Collector) -> bytes:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return generate_latest(registry)


def _response(status: str, content_type: str, body: bytes) -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    )
    return head.encode() + body


async def serve(
    collector: Collector,
    host: str,
    port: int,
    fresh: Callable[[], Awaitable[None]] | None = None,
) -> asyncio.Server:
    """``GET /metrics`` (any path) answers the exposition; anything else is 405.

    ``fresh`` is awaited before each exposition: it brings the view up to date (vrrpd's
    counters are re-sent only when asked).
    """

    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            if request.startswith(b"GET "):
                if fresh is not None:
                    await fresh()
                writer.write(_response("200 OK", CONTENT_TYPE_LATEST, exposition(collector)))
            else:
                writer.write(_response("405 Method Not Allowed", "text/plain", b"only GET\n"))
            await writer.drain()
        except (
            TimeoutError,
            asyncio.IncompleteReadError,
            asyncio.LimitOverrunError,
            OSError,
        ) as exc:
            log.info("watchdog.metrics.bad_request", reason=type(exc).__name__)
        finally:
            writer.close()

    server = await asyncio.start_server(answer, host, port)
    log.info("watchdog.metrics.listening", host=host, port=port)
    return server
