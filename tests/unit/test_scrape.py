"""/metrics off the bots' critical path: the sliced exporter and the piecewise text renderer."""

from __future__ import annotations

import gc
import math
import textwrap
import time
from collections.abc import Iterable, Sequence
from functools import partial
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import anyio.lowlevel
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import (
    Metric,
)
from prometheus_client.registry import Collector
from ruamel.yaml import YAML

from kasmm.config.schema import Profile
from kasmm.control import serve_control
from kasmm.obs.exposition import LINES_PER_PIECE, SeriesCache, TextBackend
from kasmm.obs.families import Families, MetricBackend
from kasmm.obs.metrics import LoopLagMonitor, SupervisorCollector, build_registry, render
from kasmm.obs.scrape import MetricsExporter
from kasmm.supervisor import Supervisor
from kasmm.supervisor.daemon import GC_THRESHOLDS
from kasmm.venues.metered import ENDPOINTS, VenueMetrics


class Fixed(Collector):
    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> Iterable[Metric]:
        return self.families


def library_render(families: list[Metric]) -> bytes:
    registry = CollectorRegistry()
    registry.register(Fixed(families))
    return generate_latest(registry)


def profile(name: str) -> Profile:
    text = textwrap.dedent(
        f"""\
        name: {name}
        venue: {{type: sim}}
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 20, size: 1000}}
          passive: {{spread_bps: 20, size: 1000}}
        """
    )
    return Profile.model_validate(YAML(typ="safe").load(text))


def synthetic_supervisor(n: int) -> Any:
    """``n`` profiles that are not running (no bot) but carry full venue histograms: ~140
    series each, and a state that does not move between two scrapes."""
    base = profile("p0000")
    slots = {}
    for i in range(n):
        metrics = VenueMetrics()
        for j, endpoint in enumerate(ENDPOINTS):
            metrics.observe_request(endpoint, 0.001 * (i % 7 + j))
        metrics.observe_wait(0.0001 * i)
        name = f"p{i:04d}"
        slots[name] = SimpleNamespace(
            loaded=SimpleNamespace(profile=base.model_copy(update={"name": name})),
            state="restarting" if i % 5 == 0 else "starting",
            restarts=i % 3,
            bot=None,
            venue_metrics=metrics,
        )
    lag = LoopLagMonitor()
    lag.record(0.003)
    return SimpleNamespace(
        slots=slots,
        issues=[],
        started_at=1_700_000_000.0,
        reload_results={"ok": 3, "invalid": 1},
        loop_lag=lag,
    )


async def body_of(exporter: MetricsExporter) -> bytes:
    chunks, _ = await exporter.scrape()
    return b"".join(chunks)


# --- the text backend ---------------------------------------------------------------------------


class Tee:
    """Forwards every add_metric to a prometheus_client family and a text family."""

    def __init__(self, *families: Any) -> None:
        self.families = families

    def add_metric(self, *args: Any) -> None:
        for family in self.families:
            family.add_metric(*args)


class TeeBackend:
    """Both backends fed the same calls: their outputs must be the same bytes."""

    def __init__(self, cache: SeriesCache | None = None) -> None:
        self.library = MetricBackend()
        self.text = TextBackend(cache)

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> Tee:
        return Tee(self.library.gauge(name, doc, labels), self.text.gauge(name, doc, labels))

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> Tee:
        return Tee(self.library.counter(name, doc, labels), self.text.counter(name, doc, labels))

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> Tee:
        return Tee(
            self.library.histogram(name, doc, labels), self.text.histogram(name, doc, labels)
        )

    def assert_same(self) -> bytes:
        text = b"".join(self.text.pieces())
        assert text == library_render(self.library.metrics)
        return text


def test_text_backend_writes_what_generate_latest_writes() -> None:
    tee = TeeBackend()
    tricky = tee.gauge(
        "kasmm_tricky", 'Help with a \\ backslash,\na newline and "quotes".', ["profile", "a"]
    )
    for value, label in (
        (math.nan, 'quote"d'),
        (math.inf, "back\\slash"),
        (-math.inf, "new\nline"),
        (1e6, "ünïcode"),
        (123456789.0, "big"),
        (1e-7, "small"),
        (-0.0, "negzero"),
        (42, "int"),
        (0.1 + 0.2, ""),
    ):
        tricky.add_metric([label, "z"], value)
    plain = tee.gauge("kasmm_plain", "No labels.", [])
    plain.add_metric([], 1.5)
    for name in ("kasmm_things_total", "kasmm_things_seen"):
        counter = tee.counter(name, "Counter.", ["zeta", "alpha", "mid"])
        counter.add_metric(["z", "a", "m"], 3)
    hist = tee.histogram("kasmm_h_seconds", "Histogram.", ["profile", "zone"])
    hist.add_metric(["p", "z"], [("0.1", 1.0), ("1.0", 3.0), ("+Inf", 4.0)], 2.5)
    hist.add_metric(["q", "z"], [("+Inf", 0.0)], None)  # no sum: no _count, no _sum
    hist.add_metric(["r", "z"], [("-1.0", 1.0), ("+Inf", 2.0)], 0.5)  # negative bucket: neither
    for labels in ([], ["a", "zz"], ["aa"]):  # "le" sorts last, between, first
        around = tee.histogram(f"kasmm_h{len(labels)}", "Around le.", labels)
        around.add_metric(["v"] * len(labels), [("0.5", 1.0), ("+Inf", 1.0)], 0.25)
    tee.histogram("kasmm_empty", "No samples at all.", ["x"])
    # More lines than one piece holds: the piece boundaries leave the bytes unchanged.
    many = tee.gauge("kasmm_many", "Many.", ["i"])
    for i in range(3 * LINES_PER_PIECE + 7):
        many.add_metric([str(i)], i / 7)
    text = tee.assert_same()
    assert b'kasmm_tricky{a="z",profile="quote\\"d"} NaN' in text


def test_series_written_again_from_the_cache_are_what_the_library_writes() -> None:
    """Scrape after scrape through one SeriesCache: values that stay, move, change sign at zero
    or are NaN, label sets that come and go, histograms whose buckets or sum move."""
    cache = SeriesCache()
    zero_then = {"a": 0.0, "b": -0.0, "c": 0, "d": math.nan, "e": 1.5, "f": 2, "g": 3.0}
    rounds = [
        dict(zero_then),
        {**zero_then, "a": -0.0, "b": 0.0, "c": -0.0, "e": 1.5, "f": 2.0, "g": 3.5},
        {"a": 0, "b": -0.0, "d": math.nan, "e": 1e6, "g": 3.5, "new": 7.0},  # c, f gone
        {"a": 0.0, "c": 1.0, "d": math.inf, "e": 1e6, "f": 2, "g": -math.inf},  # c, f back
    ]
    histograms = [
        ([("0.1", 1.0), ("+Inf", 2.0)], 0.5),
        ([("0.1", 1.0), ("+Inf", 2.0)], -0.0),  # sum -0.0 after 0.5: written again
        ([("0.1", 1.0), ("+Inf", 3.0)], -0.0),
        ([("0.1", 1.0), ("+Inf", 3.0)], None),  # no sum: no _count, no _sum
    ]
    bodies = []
    for values, (buckets, total) in zip(rounds, histograms, strict=True):
        tee = TeeBackend(cache)
        gauge = tee.gauge("kasmm_g", "Gauge.", ["profile", "side"])
        counter = tee.counter("kasmm_c_total", "Counter.", ["profile"])
        hist = tee.histogram("kasmm_h_seconds", "Histogram.", ["profile", "zone"])
        for label, value in values.items():
            gauge.add_metric([label, "buy"], value)
            counter.add_metric([label], value)
        hist.add_metric(["p", "z"], buckets, total)
        hist.add_metric(["q", "z"], [("0.5", 0.0), ("+Inf", 0.0)], 0.0)  # never changes
        bodies.append(tee.assert_same())
    assert b'kasmm_g{profile="b",side="buy"} -0.0' in bodies[0]
    assert b'kasmm_g{profile="b",side="buy"} 0.0' in bodies[1]
    assert b'profile="f"' not in bodies[2] and b'profile="f"' in bodies[3]


def test_the_series_cache_keeps_only_what_the_last_scrape_wrote() -> None:
    cache = SeriesCache()
    for names in (["p1", "p2", "p3"], ["p1", "p3"]):
        backend = TextBackend(cache)
        gauge = backend.gauge("kasmm_g", "Gauge.", ["profile"])
        for name in names:
            gauge.add_metric([name], 1.0)
        b"".join(backend.pieces())
    assert set(cache.previous(("kasmm_g", "gauge", ("profile",)))) == {("p1",), ("p3",)}


def test_text_backend_refuses_what_it_cannot_write_like_the_library() -> None:
    backend = TextBackend()
    with pytest.raises(ValueError, match=r"kasmm\.dotted"):
        backend.gauge("kasmm.dotted", "Outside the legacy set.", [])
    with pytest.raises(ValueError, match="__reserved"):
        backend.gauge("kasmm_x", "A reserved label name.", ["__reserved"])
    gauge = backend.gauge("kasmm_y", "Two labels.", ["a", "b"])
    with pytest.raises(ValueError, match="1 label values for 2 labels"):
        gauge.add_metric(["only-one"], 1.0)
    histogram = backend.histogram("kasmm_z", "Two labels.", ["a", "b"])
    with pytest.raises(ValueError, match="3 label values for 2"):
        histogram.add_metric(["1", "2", "3"], [("+Inf", 1.0)], 1.0)


def test_the_collector_through_both_backends_on_a_synthetic_supervisor() -> None:
    tee = TeeBackend()
    for _ in SupervisorCollector(synthetic_supervisor(5)).fill(Families(tee)):
        pass
    text = tee.assert_same()
    assert b'kasmm_venue_request_duration_seconds_bucket{endpoint="connect",le="0.001"' in text


@pytest.mark.anyio
async def test_the_collector_through_both_backends_on_running_bots(tmp_path: Path) -> None:
    """Mids, PnL, own orders and histograms of live bots: one pass feeds both backends, so the
    state is the same for both."""
    for name in ("p1", "p2"):
        (tmp_path / f"{name}.yaml").write_text(
            textwrap.dedent(
                f"""\
                name: {name}
                venue: {{type: sim, market: {{book_interval_s: 0.05}}, seed: 3}}
                symbol: KAS/USDT
                modes:
                  aggressive: {{spread_bps: 20, size: 1000, levels: 2}}
                  passive: {{spread_bps: 20, size: 1000, levels: 2}}
                """
            )
        )
    sup = Supervisor(tmp_path)
    tee = TeeBackend()
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        for _ in SupervisorCollector(sup).fill(Families(tee)):
            pass
        tg.cancel_scope.cancel()
    text = tee.assert_same()
    assert b'kasmm_mid_price{profile="p1",symbol="KAS/USDT",venue="sim"} 0.' in text


# --- the exporter ------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_exporter_body_is_the_synchronous_render() -> None:
    sup = synthetic_supervisor(40)
    exporter = MetricsExporter(sup, runtime=False, chunk_bytes=4096, max_age_s=0.0)
    chunks, content_type = await exporter.scrape()
    body, expected_type = render(build_registry(sup, runtime=False))
    assert b"".join(chunks) == body
    assert content_type == expected_type
    assert len(chunks) > 10 and max(len(c) for c in chunks) < 4096 + 64 * 1024
    # The next scrapes reuse what did not change (series and histograms) and only that.
    for step in range(3):
        for i, slot in enumerate(sup.slots.values()):
            if i % 3 == step:
                slot.venue_metrics.observe_request("place_order", 0.002 * step)
                slot.restarts += 1
            if i % 7 == step:
                slot.state = "failed"
        del sup.slots[sorted(sup.slots)[step]]
        again = b"".join((await exporter.scrape())[0])
        assert again == render(build_registry(sup, runtime=False))[0]
        assert again != body


@pytest.mark.anyio
async def test_a_scrape_never_holds_the_loop_for_long() -> None:
    """Issue 13.16: the scrape used to run in one synchronous call (0.3-0.6 s at 150 profiles).

    A probe task that only yields records how much CPU the thread spent between two of its
    turns; that is what a bot waiting for the loop would have waited. CPU time rather than wall
    time, so a busy machine preempting the whole process does not count.
    """
    sup = synthetic_supervisor(400)
    exporter = MetricsExporter(sup, runtime=False)
    gaps: list[float] = []
    done = anyio.Event()
    # The supervisor scrapes under its own GC thresholds (settle_gc). A first scrape keeps
    # ~2 tuples per series in its cache; at the interpreter's default threshold (700) that
    # many new objects can set off a full collection (~30 ms in a test process).
    thresholds = gc.get_threshold()
    gc.set_threshold(*GC_THRESHOLDS)

    async def probe() -> None:
        last = time.thread_time()
        while not done.is_set():
            await anyio.lowlevel.checkpoint()
            now = time.thread_time()
            gaps.append(now - last)
            last = now

    try:
        async with anyio.create_task_group() as tg:
            tg.start_soon(probe)
            began = time.thread_time()
            body = await body_of(exporter)
            spent = time.thread_time() - began
            done.set()
    finally:
        gc.set_threshold(*thresholds)
    assert body.count(b"\n") > 400 * 100
    assert len(gaps) > 20  # the probe kept running during the scrape
    # The budget is 2 ms between yields; 25 ms leaves room for a slow machine, and is still a
    # small fraction of the whole scrape (and of the old single call).
    assert max(gaps) < 0.025, (max(gaps), spent)
    assert exporter.longest_slice_s > 0  # its own account (wall time: not asserted on)
    assert spent > 5 * max(gaps)


@pytest.mark.anyio
async def test_a_scrape_of_unchanged_series_leaves_the_gc_nothing_to_collect() -> None:
    """The cyclic GC collects after 20,000 tracked objects allocated net of those freed: a
    scrape that kept new objects for its ~56,000 series would set off collections in every
    scrape. Once the cache holds them, a scrape of what did not change keeps as many as it
    frees."""
    exporter = MetricsExporter(synthetic_supervisor(400), runtime=False, max_age_s=0.0)
    first = await body_of(exporter)
    gc.disable()
    try:
        before = gc.get_count()[0]
        again = await body_of(exporter)
        kept = gc.get_count()[0] - before
    finally:
        gc.enable()
    assert again == first
    assert first.count(b"\n") > 400 * 100
    assert kept < 1_000, kept


@pytest.mark.anyio
async def test_on_a_saturated_loop_slices_grow_with_its_turn() -> None:
    """A loop whose every turn costs 50 ms of CPU: 2 ms slices would need ~50 turns (2.5 s)
    for this scrape; a fifth of a turn (10 ms) per slice gets it done in a fraction of that.
    (CPU, not wall time: a machine busy with other processes does not make slices grow.)"""
    exporter = MetricsExporter(synthetic_supervisor(200), runtime=False)
    done = anyio.Event()

    async def hog() -> None:
        while not done.is_set():
            busy_until = time.thread_time() + 0.05
            while time.thread_time() < busy_until:  # other work on the loop, 50 ms of CPU
                pass
            await anyio.lowlevel.checkpoint()

    async with anyio.create_task_group() as tg:
        tg.start_soon(hog)
        await anyio.lowlevel.checkpoint()
        await exporter.scrape()
        done.set()
    assert exporter.longest_slice_s >= 0.008


@pytest.mark.anyio
async def test_concurrent_scrapes_share_one_build_and_a_fresh_body_is_reused() -> None:
    now = [100.0]
    exporter = MetricsExporter(
        synthetic_supervisor(30), runtime=False, slice_s=0.0, clock=lambda: now[0]
    )
    bodies: list[list[bytes]] = []

    async def one() -> None:
        bodies.append((await exporter.scrape())[0])

    async with anyio.create_task_group() as tg:
        for _ in range(5):
            tg.start_soon(one)
    assert exporter.builds == 1
    assert len(bodies) == 5 and all(b is bodies[0] for b in bodies)
    now[0] += 0.5  # younger than max_age_s: served again
    assert (await exporter.scrape())[0] is bodies[0]
    assert exporter.builds == 1
    now[0] += 0.6
    assert (await exporter.scrape())[0] is not bodies[0]
    assert exporter.builds == 2


@pytest.mark.anyio
async def test_a_cancelled_build_is_taken_over_by_a_waiting_scrape() -> None:
    exporter = MetricsExporter(synthetic_supervisor(30), runtime=False, slice_s=0.0)
    result: list[bytes] = []

    async def waiter() -> None:
        result.append(await body_of(exporter))

    async with anyio.create_task_group() as tg:
        with anyio.CancelScope() as first:
            tg.start_soon(waiter)  # starts after the first build is under way
            first.cancel()
            await exporter.scrape()  # cancelled at its first yield
        assert exporter.builds == 0
    assert exporter.builds == 1
    assert result and result[0].startswith(b"# HELP kasmm_build_info")


@pytest.mark.anyio
async def test_a_profile_removed_during_a_scrape_is_skipped() -> None:
    sup = synthetic_supervisor(30)
    exporter = MetricsExporter(sup, runtime=False, slice_s=0.0)
    result: list[bytes] = []

    async def scrape() -> None:
        result.append(await body_of(exporter))

    async with anyio.create_task_group() as tg:
        tg.start_soon(scrape)
        await anyio.lowlevel.checkpoint()  # the scrape has read p0000 and yielded
        del sup.slots["p0029"]
    assert b'profile="p0000"' in result[0]
    assert b'profile="p0029"' not in result[0]
    assert b"kasmm_profiles 29.0" in result[0]


@pytest.mark.anyio
async def test_a_large_body_goes_through_the_control_endpoint_in_pieces() -> None:
    sup = synthetic_supervisor(200)
    expected = render(build_registry(sup, runtime=False))[0]
    assert len(expected) > 2 * 1024 * 1024  # several of the endpoint's 1 MB send pieces
    exporter = MetricsExporter(sup, runtime=False)
    async with anyio.create_task_group() as tg:
        port = await tg.start(
            partial(serve_control, "127.0.0.1", 0, status=dict, metrics=exporter.scrape)
        )
        async with await anyio.connect_tcp("127.0.0.1", port) as stream:
            await stream.send(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            received = bytearray()
            with anyio.fail_after(20):
                while True:
                    try:
                        received += await stream.receive()
                    except anyio.EndOfStream:
                        break
        tg.cancel_scope.cancel()
    head, _, body = bytes(received).partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK\r\n")
    assert f"Content-Length: {len(expected)}\r\n".encode() in head
    assert b"Content-Type: text/plain; version=" in head
    assert body == expected
