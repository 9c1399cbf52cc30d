"""Prometheus metrics: the supervisor collector, venue metering and the event-loop lag monitor."""

from __future__ import annotations

import dataclasses
import math
import re
import textwrap
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import anyio
import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.samples import Sample
from ruamel.yaml import YAML

from kasmm.clock import Clock, RealClock
from kasmm.config.schema import Profile
from kasmm.core.risk import RiskState, Trip
from kasmm.core.types import (
    Balance,
    Balances,
    ClientOrderId,
    MarketRules,
    OpenOrder,
    OrderRequest,
    Side,
)
from kasmm.errors import OrderNotFound, PostOnlyWouldCross
from kasmm.limiter import TokenBucket
from kasmm.obs.metrics import (
    LOOP_LAG_BUCKETS,
    PROFILE_LABELS,
    PROFILE_STATES,
    LoopLagMonitor,
    SupervisorCollector,
    _buckets,
    _le,
    build_registry,
    render,
)
from kasmm.supervisor import ProfileRunner, Supervisor
from kasmm.venues.base import IocOutcome, Venue
from kasmm.venues.batch import ConcurrentBatch
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.metered import (
    ENDPOINTS,
    WAIT_BUCKETS,
    Histogram,
    MeteredTokenBucket,
    MeteredVenue,
    VenueMetrics,
)
from tests.support import eventually

NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
#: Families that describe the supervisor, not one profile.
SUPERVISOR_FAMILIES = {
    "kasmm_build_info",
    "kasmm_start_time_seconds",
    "kasmm_profiles",
    "kasmm_config_errors",
    "kasmm_config_reloads",
    "kasmm_event_loop_lag_seconds",
    "kasmm_metrics_collect_errors",
    "kasmm_market_book_age_seconds",
    "kasmm_market_book_source",
    "kasmm_market_subscribers",
    "kasmm_market_feed_failures",
}


# --- helpers ---------------------------------------------------------------------------------


def profile_yaml(name: str, *, seed: int = 1) -> str:
    """A sim profile on a moving market (so mid, equity and book counters change)."""
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{book_interval_s: 0.05}}
          seed: {seed}
        symbol: KAS/USDT
        modes:
          aggressive: {{spread_bps: 20, size: 1000, levels: 2}}
          passive: {{spread_bps: 20, size: 1000, levels: 2}}
        refresh: {{fallback_interval_s: 0.2}}
        """
    )


def write(directory: Path, name: str, text: str) -> None:
    tmp = directory / f".{name}.tmp"
    tmp.write_text(text)
    tmp.replace(directory / f"{name}.yaml")


#: True once kasmm/supervisor.py carries the metrics wiring itself.
NATIVELY_WIRED = "venue_metrics" in {f.name for f in dataclasses.fields(ProfileRunner)}


class _WiredSupervisor(Supervisor):
    """Stand-in for the metrics wiring proposed for kasmm/supervisor.py.

    It hooks the venue factory rather than ``_make_bot`` so that it does not depend on how
    the supervisor builds its buckets: the bucket it gets is turned into a metered one.
    """

    def __init__(self, directory: Path) -> None:
        super().__init__(directory)
        self.loop_lag = LoopLagMonitor(interval_s=0.05)
        self.reload_results: dict[str, int] = {"ok": 0, "invalid": 0}
        inner_factory = self.venue_factory

        def factory(profile: Profile, clock: Clock, limiter: TokenBucket) -> Venue:
            slot = self.slots[profile.name]
            metrics = getattr(slot, "venue_metrics", None)
            if metrics is None:
                metrics = VenueMetrics()
                slot.venue_metrics = metrics
            limiter.__class__ = MeteredTokenBucket
            limiter.metrics = metrics  # type: ignore[attr-defined]
            slot.limiter = limiter
            return MeteredVenue(inner_factory(profile, clock, limiter), metrics)

        self.venue_factory = factory

    async def reload(self) -> Any:
        result = await super().reload()
        self.reload_results["invalid" if result.issues else "ok"] += 1
        return result


def wired_supervisor(directory: Path) -> Supervisor:
    """A supervisor exporting everything: the real one once wired, else the stand-in."""
    if NATIVELY_WIRED:
        return Supervisor(directory)
    return _WiredSupervisor(directory)


def scrape(registry: CollectorRegistry) -> dict[str, Any]:
    """Parsed exposition: family name -> family."""
    text = generate_latest(registry).decode()
    return {f.name: f for f in text_string_to_metric_families(text)}


def samples(families: dict[str, Any]) -> Iterator[tuple[str, Sample]]:
    for name, family in families.items():
        for sample in family.samples:
            yield name, sample


def value(families: dict[str, Any], family: str, **labels: str) -> float:
    """The one sample of ``family`` (a counter by its ``_total`` name too) matching ``labels``."""
    if family not in families and family.endswith("_total"):
        family = family.removesuffix("_total")
    matches = [
        s.value
        for s in families[family].samples
        if all(s.labels.get(k) == v for k, v in labels.items())
        and not s.name.endswith(("_bucket", "_sum", "_created"))
    ]
    assert len(matches) == 1, (family, labels, matches)
    return float(matches[0])


def profiles_in(families: dict[str, Any]) -> set[str]:
    return {s.labels["profile"] for _, s in samples(families) if "profile" in s.labels}


# --- the collector on a real supervisor -----------------------------------------------------


@pytest.mark.anyio
async def test_supervisor_metrics_labels_values_and_reload(tmp_path: Path) -> None:
    write(tmp_path, "p1", profile_yaml("p1", seed=1))
    write(tmp_path, "p2", profile_yaml("p2", seed=2))
    sup = wired_supervisor(tmp_path)
    registry = build_registry(sup)
    async with anyio.create_task_group() as tg:
        if not NATIVELY_WIRED:
            tg.start_soon(sup.loop_lag.run)
        await tg.start(sup.run)
        first = scrape(registry)

        # Names follow the conventions; counters (and only counters) end in _total.
        kasmm = {n: f for n, f in first.items() if n.startswith("kasmm_")}
        assert len(kasmm) >= 40
        for name, family in kasmm.items():
            assert NAME_RE.match(name), name
            if family.type == "counter":
                assert all(s.name.endswith("_total") for s in family.samples), name
            else:
                assert not name.endswith("_total"), name
            for sample in family.samples:
                assert all(LABEL_RE.match(k) for k in sample.labels), sample
                assert "client_id" not in sample.labels and "price" not in sample.labels

        # Every per-profile sample carries profile, venue and symbol.
        per_profile = 0
        for name, sample in samples(kasmm):
            if name in SUPERVISOR_FAMILIES:
                assert "profile" not in sample.labels, sample
                continue
            per_profile += 1
            assert set(PROFILE_LABELS) <= set(sample.labels), sample
            assert sample.labels["venue"] == "sim" and sample.labels["symbol"] == "KAS/USDT"
        assert per_profile > 100
        assert profiles_in(kasmm) == {"p1", "p2"}

        # The shared market both simulated venues publish (one key: exchange sim, KAS/USDT).
        market = {"exchange": "sim", "symbol": "KAS/USDT"}
        assert 0 <= value(first, "kasmm_market_book_age_seconds", **market) < 5
        assert value(first, "kasmm_market_book_source", **market, source="venue") == 1
        assert value(first, "kasmm_market_book_source", **market, source="websocket") == 0
        assert value(first, "kasmm_market_feed_failures_total", **market) == 0

        # What a quoting profile looks like.
        for p in ("p1", "p2"):
            assert value(first, "kasmm_profile_state", profile=p, state="quoting") == 1
            states = [
                value(first, "kasmm_profile_state", profile=p, state=s) for s in PROFILE_STATES
            ]
            assert sum(states) == 1
            assert value(first, "kasmm_trading_state", profile=p, state="active") == 1
            assert value(first, "kasmm_mode", profile=p, mode="passive") == 1
            assert value(first, "kasmm_mode", profile=p, mode="aggressive") == 0
            assert value(first, "kasmm_open_orders", profile=p, side="buy") >= 1  # 2 unless filled
            assert value(first, "kasmm_orders_placed_total", profile=p) >= 4
            mid = value(first, "kasmm_mid_price", profile=p)
            bid = value(first, "kasmm_own_best_price", profile=p, side="buy")
            ask = value(first, "kasmm_own_best_price", profile=p, side="sell")
            assert bid < mid < ask
            assert value(first, "kasmm_quote_spread_ratio", profile=p) == pytest.approx(0.002)
            assert value(first, "kasmm_inventory_target_share_ratio", profile=p) == 0.5
            assert 0 < value(first, "kasmm_inventory_share_ratio", profile=p) < 1
            assert value(first, "kasmm_balance", profile=p, asset="KAS") == value(
                first, "kasmm_inventory_base", profile=p
            )
            assert value(first, "kasmm_balance", profile=p, asset="USDT") > 0
            assert value(first, "kasmm_drawdown_quote", profile=p) >= 0
            assert 0 <= value(first, "kasmm_book_age_seconds", profile=p) < 1
            assert value(first, "kasmm_rate_limit_capacity", profile=p) > 0
            trips = [
                s.value
                for s in first["kasmm_kill_switch_trips"].samples
                if s.labels["profile"] == p
            ]
            assert trips and sum(trips) == 0
            assert value(first, "kasmm_fills_total", profile=p, side="buy") >= 0
            # The connect, the startup reconcile and the places went through the meter (the
            # places as batch calls: one sample per call, whatever its number of orders).
            assert (
                value(first, "kasmm_venue_request_duration_seconds", profile=p, endpoint="connect")
                == 1
            )
            placed = sum(
                value(first, "kasmm_venue_request_duration_seconds", profile=p, endpoint=endpoint)
                for endpoint in ("place_order", "place_orders")
            )
            assert placed >= 1
            assert value(first, "kasmm_rate_limit_wait_seconds", profile=p) >= placed
        assert value(first, "kasmm_config_reloads_total", result="ok") == 1
        assert value(first, "kasmm_config_errors") == 0
        assert value(first, "kasmm_profiles") == 2

        # Values move: the market ticks every 50 ms, the bots keep deciding.
        def counted() -> bool:
            second = scrape(registry)
            return (
                all(
                    value(second, counter, profile=p) > value(first, counter, profile=p)
                    for p in ("p1", "p2")
                    for counter in ("kasmm_book_updates_total", "kasmm_decisions_total")
                )
                # _count: the loop lag monitor runs
                and value(second, "kasmm_event_loop_lag_seconds") >= 1
            )

        await eventually(counted, within_s=5.0)

        def moved() -> bool:
            now = scrape(registry)
            return all(
                value(now, name, profile=p) != value(first, name, profile=p)
                for p in ("p1", "p2")
                for name in ("kasmm_mid_price", "kasmm_equity_quote")
            )

        await eventually(moved, within_s=5.0)

        # Removing a profile removes its series at the next scrape.
        (tmp_path / "p2.yaml").unlink()
        result = await sup.reload()
        assert result.stopped == ["p2"]
        third = scrape(registry)
        assert profiles_in(third) == {"p1"}
        assert value(third, "kasmm_profiles") == 1
        assert value(third, "kasmm_config_reloads_total", result="ok") == 2

        # An invalid file shows up as a config error (and an invalid reload).
        write(tmp_path, "p3", profile_yaml("p3").replace("spread_bps: 20", "spread_bps: -5", 1))
        await sup.reload()
        fourth = scrape(registry)
        assert value(fourth, "kasmm_config_errors") == 1
        assert value(fourth, "kasmm_config_reloads_total", result="invalid") == 1
        assert profiles_in(fourth) == {"p1"}
        tg.cancel_scope.cancel()


def test_missing_optional_wiring_leaves_families_empty() -> None:
    """No limiter, venue metrics, reload results or lag monitor: the scrape still works."""
    profile = Profile.model_validate(YAML(typ="safe").load(profile_yaml("lone")))
    slot = SimpleNamespace(
        loaded=SimpleNamespace(profile=profile), state="starting", restarts=2, bot=None
    )
    sup = SimpleNamespace(slots={"lone": slot}, issues=["bad"], started_at=1.0)
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(sup))  # type: ignore[arg-type]
    families = scrape(registry)
    for name in (
        "kasmm_rate_limit_tokens",
        "kasmm_venue_request_duration_seconds",
        "kasmm_config_reloads",
        "kasmm_event_loop_lag_seconds",
        "kasmm_mid_price",
    ):
        assert families[name].samples == []
    assert value(families, "kasmm_profile_state", profile="lone", state="starting") == 1
    assert value(families, "kasmm_profile_restarts_total", profile="lone") == 2
    assert value(families, "kasmm_config_errors") == 1


@pytest.mark.anyio
async def test_halt_shows_in_state_engaged_rule_and_per_rule_trips(tmp_path: Path) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    sup = Supervisor(tmp_path)
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(sup))
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        families = scrape(registry)
        assert value(families, "kasmm_profile_state", profile="p1", state="quoting") == 1

        bot = sup.slots["p1"].bot
        assert bot is not None
        now = bot.clock.now()
        bot.risk = RiskState(halt=Trip("max_drawdown", "halt", 12.0, 10.0, now))
        bot.stats.trips_by_rule = {"max_drawdown": 1, "stale_book": 2}
        families = scrape(registry)
        assert value(families, "kasmm_profile_state", profile="p1", state="halted") == 1
        assert value(families, "kasmm_profile_state", profile="p1", state="quoting") == 0
        assert value(families, "kasmm_trading_state", profile="p1", state="halted") == 1
        assert value(families, "kasmm_kill_switch_engaged", profile="p1", rule="max_drawdown") == 1
        assert value(families, "kasmm_kill_switch_trips_total", rule="stale_book") == 2
        # Configured rules that never tripped are exported from 0 (defaults: stale_book and
        # max_consecutive_errors).
        assert value(families, "kasmm_kill_switch_trips_total", rule="max_consecutive_errors") == 0
        assert not [
            s for s in families["kasmm_kill_switch_trips"].samples if s.labels["rule"] == "unknown"
        ]
        tg.cancel_scope.cancel()


class Unreadable:
    """A bot whose every attribute read fails."""

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"cannot read {name}")


@pytest.mark.anyio
async def test_a_broken_profile_does_not_break_the_scrape(tmp_path: Path) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    write(tmp_path, "p2", profile_yaml("p2"))
    sup = Supervisor(tmp_path)
    collector = SupervisorCollector(sup)
    registry = CollectorRegistry()
    registry.register(collector)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        slot = sup.slots["p1"]
        real = slot.bot
        assert real is not None
        slot.bot = Unreadable()  # type: ignore[assignment]
        families = scrape(registry)
        slot.bot = real  # before any await: the supervisor must never see the stand-in
        assert collector.collect_errors == 1
        assert value(families, "kasmm_metrics_collect_errors_total") == 1
        assert value(families, "kasmm_mid_price", profile="p2") > 0
        tg.cancel_scope.cancel()


def test_render_returns_exposition_and_content_type() -> None:
    class Empty:
        def __init__(self) -> None:
            self.slots: dict[str, Any] = {}
            self.issues: list[Any] = []
            self.started_at = 1_700_000_000.0

    body, content_type = render(build_registry(Empty(), runtime=False))  # type: ignore[arg-type]
    assert content_type.startswith("text/plain; version=")
    text = body.decode()
    assert 'kasmm_build_info{python_version="' in text
    assert "kasmm_start_time_seconds 1.7e+09" in text
    assert "process_" not in text
    assert "# TYPE kasmm_fills_total counter" in text


# --- venue metering --------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


class FakeVenue(ConcurrentBatch):
    """Each request advances the fake clock by its ``cost``; ``fail`` raises instead."""

    name = "fake"

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.cost = 0.02
        self.fail: BaseException | None = None

    async def _call(self) -> None:
        self.clock.t += self.cost
        await anyio.lowlevel.checkpoint()
        if self.fail is not None:
            raise self.fail

    async def connect(self) -> MarketRules:
        await self._call()
        return MarketRules(
            symbol="KAS/USDT",
            base="KAS",
            quote="USDT",
            tick=Decimal("0.000001"),
            lot=Decimal("0.01"),
            min_notional=Decimal(1),
            min_size=Decimal("0.01"),
            maker_fee=Decimal(0),
            taker_fee=Decimal(0),
        )

    async def close(self) -> None:
        return None

    async def events(self) -> Any:  # pragma: no cover - not metered, not iterated
        yield None

    async def fetch_balances(self) -> Balances:
        await self._call()
        return Balances({"KAS": Balance(Decimal(1))})

    async def fetch_open_orders(self) -> list[OpenOrder]:
        await self._call()
        return []

    async def place_order(self, request: OrderRequest) -> OpenOrder:
        await self._call()
        return OpenOrder(
            request.client_id, request.side, request.price, request.size, request.size, 0.0
        )

    async def place_ioc(self, request: OrderRequest) -> IocOutcome:
        await self._call()
        return IocOutcome.of(request.client_id, request.size, request.size, None)

    async def cancel_order(self, client_id: ClientOrderId) -> None:
        await self._call()

    async def cancel_all(self, prefix: str) -> int:
        await self._call()
        return 0


def test_histogram_buckets_are_le_and_cumulative() -> None:
    h = Histogram((0.1, 1.0))
    for v in (0.05, 0.1, 0.5, 1.0, 3.0, math.nan):
        h.observe(v)
    assert h.counts == [2, 2, 1]
    assert h.count == 5 and h.sum == pytest.approx(4.65)
    assert h.cumulative() == [(0.1, 2), (1.0, 4), (math.inf, 5)]
    with pytest.raises(ValueError):
        Histogram((1.0, 0.5))
    with pytest.raises(ValueError):
        Histogram((1.0, math.inf))


@pytest.mark.parametrize(
    "bounds", [(0.1, 1.0), LOOP_LAG_BUCKETS, (-0.0, 1e-7, 2.5e6), (0.0, 1e-7, 2.5e6), (-1.0,)]
)
def test_histogram_buckets_are_written_as_the_readable_definition(
    bounds: tuple[float, ...],
) -> None:
    """The collector's buckets (le labels cached per bounds) are ``(_le(bound), count)`` of
    ``cumulative()``, also after bounds that share a key but not a label (0.0 and -0.0)."""
    for _ in range(2):
        h = Histogram(bounds)
        for v in (-2.0, 0.05, 0.5, 3.0, 1e9):
            h.observe(v)
        expected = [(_le(b), float(c)) for b, c in h.cumulative()]
        assert list(_buckets(h)) == expected
        assert [le for le, _ in _buckets(h)] == [le for le, _ in expected]


@pytest.mark.anyio
async def test_metered_venue_records_latency_and_errors_and_reraises() -> None:
    clock = FakeClock()
    inner = FakeVenue(clock)
    metrics = VenueMetrics()
    venue = MeteredVenue(inner, metrics, clock=clock)
    assert venue.name == "fake"
    assert sorted(metrics.requests) == sorted(ENDPOINTS)

    await venue.connect()
    await venue.fetch_balances()
    await venue.fetch_open_orders()
    request = OrderRequest(ClientOrderId("k1"), Side.BUY, Decimal("0.1"), Decimal(10), True)
    await venue.place_order(request)
    await venue.cancel_order(ClientOrderId("k1"))
    assert await venue.cancel_all("k") == 0
    for endpoint in ENDPOINTS:
        h = metrics.requests[endpoint]
        assert h.count == 1 and h.sum == pytest.approx(0.02)
        assert h.cumulative()[4] == (0.025, 1)  # in the 0.025 bucket, not the 0.01 one

    inner.fail = OrderNotFound("gone")
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("k1"))
    inner.fail = PostOnlyWouldCross("would cross")
    inner.cost = 3.0
    for _ in range(2):
        with pytest.raises(PostOnlyWouldCross):
            await venue.place_order(request)
    assert metrics.errors == {
        ("cancel_order", "OrderNotFound"): 1,
        ("place_order", "PostOnlyWouldCross"): 2,
    }
    assert metrics.requests["place_order"].count == 3  # failed requests have a latency too
    assert metrics.requests["place_order"].counts[-4] == 2  # 2.5 < 3.0 <= 5.0

    # Cancellation is neither an error nor a latency sample.
    inner.fail = None
    with anyio.CancelScope() as scope:
        scope.cancel()
        await venue.fetch_balances()
    assert metrics.requests["fetch_balances"].count == 1
    assert not any(endpoint == "fetch_balances" for endpoint, _ in metrics.errors)


@pytest.mark.anyio
async def test_rate_limit_wait_is_recorded_and_excluded_from_latency() -> None:
    metrics = VenueMetrics()
    bucket = MeteredTokenBucket(1, 10.0, RealClock(), metrics=metrics, name="p")
    assert isinstance(bucket, TokenBucket)
    inner = FakeVenue(FakeClock())
    inner.cost = 0.0
    venue = MeteredVenue(RateLimitedVenue(inner, bucket), metrics)
    began = time.perf_counter()
    await venue.fetch_open_orders()  # a full bucket: no wait
    await venue.fetch_open_orders()  # waits ~0.1 s for the refill
    elapsed = time.perf_counter() - began
    assert elapsed >= 0.08
    wait = metrics.limiter_wait
    assert wait.count == 2 and wait.counts[0] == 1  # the first acquire found its token (<= 100 µs)
    assert wait.sum == pytest.approx(0.1, abs=0.05)
    latency = metrics.requests["fetch_open_orders"]
    assert latency.count == 2 and latency.sum < 0.05  # the wait is not venue latency
    # Outside a metered request the bucket still records its waits.
    await bucket.acquire()
    assert wait.count == 3


# --- event-loop lag --------------------------------------------------------------------------


@pytest.mark.anyio
async def test_loop_lag_monitor_sees_a_blocked_loop() -> None:
    monitor = LoopLagMonitor(interval_s=0.02)
    async with anyio.create_task_group() as tg:
        await tg.start(monitor.run)
        await anyio.sleep(0.1)
        quiet = monitor.histogram.count
        assert quiet >= 1
        time.sleep(0.15)  # noqa: ASYNC251 - blocking the loop on purpose
        await anyio.sleep(0.05)
        tg.cancel_scope.cancel()
    assert monitor.histogram.count > quiet
    assert monitor.histogram.sum >= 0.1
    monitor.record(-0.001)
    assert monitor.last_lag_s == 0.0
    with pytest.raises(ValueError):
        LoopLagMonitor(interval_s=0)


@pytest.mark.parametrize("buckets", [WAIT_BUCKETS, (0.0, 0.5, 1.0), (-1.0, 1.0)])
def test_observing_no_wait_is_observing_a_zero_wait(buckets: tuple[float, ...]) -> None:
    fast, reference = VenueMetrics(wait_buckets=buckets), VenueMetrics(wait_buckets=buckets)
    for seconds in (0.3, 0.0, 2.0):
        fast.observe_wait(seconds)
        reference.observe_wait(seconds)
        fast.observe_no_wait()
        reference.observe_wait(0.0)
    assert fast.limiter_wait == reference.limiter_wait
