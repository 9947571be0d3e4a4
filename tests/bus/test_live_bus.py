"""The broker as a real process, with real publishers and subscribers on ipc sockets."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Iterator

import msgpack
import pytest
import zmq
import zmq.asyncio

from bus import Event, Publisher, RuntimeDir, Stamper, Subscriber, encode
from bus.subscriber import BATCH
from tests.daemon import (
    REPO,
    connected,
    next_event,
    raw_publisher,
    running_bus,
    runtime_dir,
)
from tests.lab import wait_until


@pytest.fixture
def bus() -> Iterator[RuntimeDir]:
    with runtime_dir() as rt, running_bus(rt):
        yield rt


def test_external_publisher_health_reaches_exact_subscriber_only(bus: RuntimeDir) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, bus, ["health.web1"])
        sub.start()
        await connected(sub, ctx, bus, "health.web1")
        # The shell-level external checker: pykeepalivedctl publish.
        for topic, ok in (("health.web10", "false"), ("health.web1", "true")):
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ctl",
                    "--runtime-dir",
                    str(bus.path),
                    "publish",
                    topic,
                    f"ok={ok}",
                ],
                check=True,
                cwd=REPO,
                timeout=20,
            )
        event = await next_event(sub, lambda e: True, 5)
        assert (event.topic, event.body["name"], event.body["ok"]) == ("health.web1", "web1", True)
        assert sub.stats.delivered == 1  # health.web10 shares the prefix but is not delivered
        sub.close()
        ctx.term()

    asyncio.run(scenario())


def test_late_subscriber_gets_retained_state_at_once(bus: RuntimeDir) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        pub = Publisher(ctx, bus, "vrrpd")  # nothing periodic: only the join re-sends
        pub.start()
        state = {"instance": "VI_1", "state": "MASTER", "priority": 100}
        pub.retain("vrrp.state.VI_1", state)
        await asyncio.sleep(0)
        sub = Subscriber(ctx, bus, ["vrrp.state.*"])
        sub.start()  # joins long after the state was published, and nothing changes
        event = await next_event(sub, lambda e: True, 3)
        assert event.body == state
        sub.close()
        await pub.close()
        ctx.term()

    asyncio.run(scenario())


def test_sequence_gap_and_restart_are_detected(bus: RuntimeDir) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, bus, ["health.gap"])
        sub.start()
        raw = raw_publisher(zmq.Context.instance(), bus, b"health.gap")
        stamper = Stamper("ext")

        def send(seq: int, st: Stamper = stamper) -> None:
            stamp = {**st.next("health.gap"), "seq": seq}
            raw.send_multipart(encode("health.gap", {"name": "gap", "ok": True}, stamp))

        for seq in (1, 2, 5):
            send(seq)
        send(1, Stamper("ext"))  # same src, new boot: a restart, not a replay
        events: list[Event] = []
        while len(events) < 4:
            events += await asyncio.wait_for(sub.recv_batch(), 5)
        assert [e.missed for e in events] == [0, 0, 2, 0]
        assert [e.restarted for e in events] == [False, False, False, True]
        assert (sub.stats.gaps, sub.stats.missed, sub.stats.restarts) == (1, 2, 1)
        raw.close()
        sub.close()
        ctx.term()

    asyncio.run(scenario())


def test_garbage_is_dropped_and_counted_while_subscriber_keeps_working(bus: RuntimeDir) -> None:
    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, bus, ["health.*"])
        sub.start()
        raw = raw_publisher(zmq.Context.instance(), bus, b"health.")
        stamp = Stamper("ext").next("health.ok")
        garbage = [
            [b"health.a", b"\xc1\xc1\xc1"],  # not msgpack
            [b"health.b"],  # no payload frame
            [b"health.c", msgpack.packb({"name": "c", "ok": True})],  # no envelope
            [b"health.d", msgpack.packb("just a string")],
            [b"health.\xff", b"x"],  # topic not utf-8
        ]
        for frames in garbage:
            raw.send_multipart(frames)
        raw.send_multipart(encode("health.ok", {"name": "ok", "ok": True}, stamp))
        event = await next_event(sub, lambda e: True, 5)
        assert event.topic == "health.ok"
        assert dict(sub.stats.dropped) == {
            "msgpack": 1,
            "frames": 1,
            "envelope": 1,
            "payload": 1,
            "topic": 1,
        }
        raw.close()
        sub.close()
        ctx.term()

    asyncio.run(scenario())


def test_second_bus_on_same_runtime_dir_refuses_with_clear_message(bus: RuntimeDir) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "bus", "--runtime-dir", str(bus.path)],
        capture_output=True,
        text=True,
        timeout=20,
        cwd=REPO,
    )
    assert proc.returncode == 1
    assert "in use by another daemon" in proc.stderr
    assert bus.is_locked("bus")  # the first broker still owns it


def test_runtime_dir_is_private(bus: RuntimeDir) -> None:
    assert bus.path.stat().st_mode & 0o777 == 0o750
    for sock in ("pub.sock", "sub.sock"):
        assert (bus.path / sock).stat().st_mode & 0o077 == 0


def test_tail_prints_events(bus: RuntimeDir) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ctl",
            "--runtime-dir",
            str(bus.path),
            "tail",
            "--json",
            "-n",
            "1",
            "health.tail",
        ],
        stdout=subprocess.PIPE,
        text=True,
        cwd=REPO,
    )
    try:

        def published_to_subscriber() -> bool:
            out = subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "ctl",
                    "--runtime-dir",
                    str(bus.path),
                    "publish",
                    "health.tail",
                    "ok=false",
                    "reason=http 503",
                ],
                capture_output=True,
                text=True,
                cwd=REPO,
                timeout=20,
            )
            return "nobody is subscribed" not in out.stderr

        wait_until(published_to_subscriber, 20, message="tail to subscribe")
        out, _ = proc.communicate(timeout=10)
    finally:
        proc.kill()
    assert (
        '"topic": "health.tail"' in out and '"reason": "http 503"' in out and '"ok": false' in out
    )


def test_serve_hands_every_batch_to_its_handler_and_raises_what_it_raises(
    bus: RuntimeDir,
) -> None:
    """More than one batch queued at once: libzmq signals only the first message, so the
    rest must be taken without a signal, in order; the handler's exception ends serve."""

    class Enough(Exception):
        pass

    async def scenario() -> None:
        ctx = zmq.asyncio.Context()
        sub = Subscriber(ctx, bus, ["health.many"])
        sub.start()
        raw = raw_publisher(zmq.Context.instance(), bus, b"health.many")
        stamper = Stamper("ext")
        count = BATCH + 44
        for _ in range(count):
            raw.send_multipart(
                encode("health.many", {"name": "many", "ok": True}, stamper.next("health.many"))
            )
        seqs: list[int] = []

        def handle(events: list[Event]) -> None:
            seqs.extend(e.env.seq for e in events)
            if len(seqs) >= count:
                raise Enough

        with pytest.raises(Enough):
            await asyncio.wait_for(sub.serve(handle), 10)
        assert seqs == list(range(1, count + 1))
        raw.close()
        sub.close()
        ctx.term()

    asyncio.run(scenario())
