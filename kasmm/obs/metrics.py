"""Prometheus metrics: one registry per supervisor, read from live objects at scrape time.

Nothing on a bot's hot path touches prometheus_client. The bot bumps plain ints
(:class:`kasmm.bot.BotStats`), the venue wrapper fills plain histograms
(:class:`kasmm.venues.metered.VenueMetrics`), and :class:`SupervisorCollector` walks
``supervisor.slots`` whenever ``/metrics`` is scraped. A profile removed by a reload is no
longer in ``slots``, so its series simply stop being exported: no stale series, no
``remove()`` bookkeeping.

``/metrics`` is served by :class:`kasmm.obs.scrape.MetricsExporter`, which fills the families
one profile at a time (:meth:`SupervisorCollector.fill`) as exposition text, yielding to the
event loop between slices; :func:`build_registry` and :func:`render` are the one-call path
(tests, tools), with the same output.

Conventions: every name starts with ``kasmm_``; seconds and ratios (0-1) are base units, money
is in the symbol's quote currency (``_quote``), amounts of the base asset end in ``_base``;
counters end in ``_total``. Every per-profile series carries ``profile``, ``venue`` and
``symbol``; extra labels are bounded sets (``side``, ``asset``, ``endpoint``, ``error``,
``rule``, ``action``, ``state``, ``mode``, ``part``, ``band``, ``window``, ``horizon``),
never order ids or prices.

Counters read from a bot (orders, decisions, book updates, kill-switch trips) restart from zero
when the supervisor restarts the bot, which Prometheus handles as a counter reset. Fill counters
come from the PnL state, which a bot restores from the ledger on start: they are exported only
once the bot is past startup, so the restored value does not look like a reset followed by a
burst of fills.
"""

from __future__ import annotations

import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from decimal import Decimal
from typing import TYPE_CHECKING

import anyio
import structlog
from anyio.abc import TaskStatus
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import Metric
from prometheus_client.gc_collector import GCCollector
from prometheus_client.platform_collector import PlatformCollector
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

import kasmm
from kasmm.alerts.notifier import OUTCOMES as NOTIFY_OUTCOMES
from kasmm.bot.stats import BotState
from kasmm.config.notify import EVENT_KINDS
from kasmm.config.schema import CcxtVenueConfig, Profile, SimVenueConfig
from kasmm.core.risk import TradingState
from kasmm.core.types import Side
from kasmm.limiter import TokenBucket
from kasmm.market.book import BOOK_SOURCES
from kasmm.market.hub import MarketHub
from kasmm.market.keys import split_key
from kasmm.obs.families import PROFILE_LABELS, Families, MetricBackend
from kasmm.obs.kpi_series import fill_kpis
from kasmm.obs.money import PNL_PARTS
from kasmm.obs.portfolio_metrics import fill_portfolios
from kasmm.obs.settlement_metrics import fill_settlements
from kasmm.supervisor.state import METRIC_STATES, displayed_state, metric_state
from kasmm.venues.metered import Histogram, VenueMetrics

if TYPE_CHECKING:
    from kasmm.bot import BotView
    from kasmm.supervisor import ProfileRunner, Supervisor
    from kasmm.supervisor.hedge_link import HedgeLink

log = structlog.get_logger("kasmm.metrics")

__all__ = [
    "LOOP_LAG_BUCKETS",
    "MODES",
    "PROFILE_LABELS",
    "PROFILE_STATES",
    "LoopLagMonitor",
    "SupervisorCollector",
    "build_registry",
    "profile_state",
    "render",
    "venue_label",
]

#: Values of ``kasmm_profile_state{state=...}`` (exactly one is 1 per profile).
PROFILE_STATES: tuple[str, ...] = tuple(s.value for s in METRIC_STATES)
#: Values of ``kasmm_trading_state{state=...}``.
TRADING_STATES: tuple[str, ...] = tuple(t.value for t in TradingState)
#: Values of ``kasmm_mode{mode=...}``.
MODES: tuple[str, ...] = ("aggressive", "passive")
#: Event-loop lag histogram bounds (seconds).
LOOP_LAG_BUCKETS: tuple[float, ...] = (
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
)
_SIDES: tuple[tuple[Side, str], ...] = ((Side.BUY, "buy"), (Side.SELL, "sell"))


# --- helpers ---------------------------------------------------------------------------------


def venue_label(profile: Profile) -> str:
    """The ``venue`` label: the ccxt exchange id, a sim venue's ``exchange`` name (``sim``
    unless set: several sim venues of one world are told apart by it), else ``paper``.

    Derived from the config (like the supervisor's log context), so a profile's series keep
    their identity across bot restarts and before its first venue exists.
    """
    venue = profile.venue
    if isinstance(venue, CcxtVenueConfig | SimVenueConfig):
        return venue.exchange
    return venue.type


def profile_state(slot: ProfileRunner, view: BotView | None = None) -> str:
    """One of :data:`PROFILE_STATES`: the state status shows
    (:func:`~kasmm.supervisor.state.displayed_state`), in the metric's label set.

    :param view: the slot's bot's view, if the caller has one already (else it is taken).
    """
    bot = slot.bot
    if bot is None:
        shown = displayed_state(slot.state, None, None)
    else:
        if view is None:
            view = bot.view()
        shown = displayed_state(slot.state, view.state.value, view.trading_state.value)
    return metric_state(shown).value


def _f(value: Decimal | float | int) -> float:
    return float(value)


def _le(bound: float) -> str:
    """Bucket label as prometheus_client writes it (``0.005``, ``1.0``, ``+Inf``)."""
    return "+Inf" if bound == math.inf else repr(float(bound))


#: A histogram's ``(le, cumulative count)`` pairs, as the families take them.
_Buckets = tuple[tuple[str, float], ...]


#: Bounds -> their ``le`` labels, ``+Inf`` included: a handful of tuples (one per kind of
#: histogram), so the labels are written once rather than ~14 reprs per histogram per scrape.
_LE_LABELS: dict[tuple[float, ...], tuple[str, ...]] = {}


def _le_labels(bounds: tuple[float, ...]) -> tuple[str, ...]:
    les = _LE_LABELS.get(bounds)
    if les is None:
        les = (*map(_le, bounds), _le(math.inf))
        if 0 not in bounds:  # 0.0 and -0.0 are one key but two labels: not cached
            _LE_LABELS[bounds] = les
    return les


def _buckets(histogram: Histogram) -> _Buckets:
    """``(le, cumulative count)`` for each bound and ``+Inf``, as ``histogram.cumulative()``."""
    les = _le_labels(histogram.bounds)
    return tuple(
        [(le, float(count)) for le, (_, count) in zip(les, histogram.cumulative(), strict=True)]
    )


class _BucketMemo:
    """Each histogram's :func:`_buckets`, rebuilt only when its counts have changed.

    A venue endpoint a profile did not call since the last scrape keeps its buckets, and most
    do not move in 5 s; rebuilding ~14 labelled pairs for each of ~9 histograms a profile was a
    third of a scrape once unchanged lines were reused. An entry is the histogram (kept, so its
    ``id`` is not reused while remembered), a copy of its ``counts`` and ``count`` (which are
    all :func:`_buckets` reads besides the fixed ``bounds``) and the pairs built from them. A
    scrape moves the entries of the histograms it reads from the last scrape's into its own; the
    others (a removed profile's) leave at its end (as in
    :class:`~kasmm.obs.exposition.SeriesCache`).
    """

    def __init__(self) -> None:
        self._before: dict[int, tuple[Histogram, tuple[int, ...], int, _Buckets]] = {}
        self._now: dict[int, tuple[Histogram, tuple[int, ...], int, _Buckets]] = {}

    def start(self) -> None:
        """A scrape begins (one cut short before leaves the entries of the one before it)."""
        self._now = {}

    def buckets(self, histogram: Histogram) -> _Buckets:
        """``_buckets(histogram)``: the same pairs as last time if the counts are the same."""
        key = id(histogram)
        entry = self._before.pop(key, None)  # taken, not read: see SeriesCache on the GC
        if entry is None or entry[2] != histogram.count or entry[1] != tuple(histogram.counts):
            entry = (histogram, tuple(histogram.counts), histogram.count, _buckets(histogram))
        self._now[key] = entry
        return entry[3]

    def end(self) -> None:
        """The scrape is complete: its entries are the next one's."""
        self._before = self._now


# --- the collector ---------------------------------------------------------------------------


class SupervisorCollector(Collector):
    """Exports a :class:`~kasmm.supervisor.Supervisor`'s profiles at scrape time.

    Optional parts are read when present and skipped otherwise: ``slot.limiter``
    (a :class:`TokenBucket`), ``slot.venue_metrics`` (a :class:`VenueMetrics`),
    ``supervisor.reload_results`` (``{"ok": n, "invalid": n}``), ``supervisor.loop_lag``
    (a :class:`LoopLagMonitor`, unless one is passed here) and ``bot.stats.trips_by_rule``.
    """

    def __init__(self, supervisor: Supervisor, *, loop_lag: LoopLagMonitor | None = None) -> None:
        self.supervisor = supervisor
        self.loop_lag = loop_lag
        self.collect_errors = 0
        self._buckets = _BucketMemo()

    def collect(self) -> Iterable[Metric]:
        """Build every family from the supervisor's current state, in one go."""
        backend = MetricBackend()
        for _ in self.fill(Families(backend)):
            pass
        return backend.metrics

    def fill(self, fam: Families) -> Iterator[None]:
        """Fill ``fam`` one profile per step, then the supervisor's own series.

        Between steps the caller may yield to the event loop (:mod:`kasmm.obs.scrape` does):
        each profile is read in one step, so its series are consistent with each other; a
        profile a reload removes meanwhile is skipped, one it adds shows at the next scrape.
        """
        sup = self.supervisor
        self._buckets.start()
        for name in sorted(sup.slots):
            slot = sup.slots.get(name)
            if slot is None:
                continue  # removed by a reload while the caller yielded
            try:
                self._slot(fam, slot)
            except Exception as exc:  # a scrape must never fail because of one profile
                self.collect_errors += 1
                log.warning("metrics_collect_failed", profile=name, error=repr(exc))
            yield
        self._supervisor(fam)
        self._buckets.end()

    # --- supervisor-level

    def _supervisor(self, fam: Families) -> None:
        sup = self.supervisor
        fam.build_info.add_metric(
            [kasmm.__version__, ".".join(map(str, sys.version_info[:3]))], 1.0
        )
        fam.start_time.add_metric([], float(sup.started_at))
        fam.profiles.add_metric([], float(len(sup.slots)))
        fam.config_errors.add_metric([], float(len(sup.issues)))
        results = getattr(sup, "reload_results", None)
        if isinstance(results, dict):
            for result in sorted(results):
                fam.reloads.add_metric([str(result)], float(results[result]))
        monitor = self.loop_lag or getattr(sup, "loop_lag", None)
        if isinstance(monitor, LoopLagMonitor):
            h = monitor.histogram
            fam.loop_lag.add_metric([], _buckets(h), h.sum)
        fam.collect_errors.add_metric([], float(self.collect_errors))
        market = getattr(sup, "market", None)
        if isinstance(market, MarketHub):
            self._markets(fam, market, sup.clock.now())
        portfolios = getattr(sup, "portfolios", None)
        if portfolios is not None:
            fill_portfolios(fam, portfolios.groups.values(), sup.clock.now())
        settling = getattr(sup, "settling", None)
        if settling is not None:
            fill_settlements(fam, settling)
        notifier = getattr(sup, "notifier", None)
        if notifier is not None and notifier.active:
            # Every series from 0 while targets exist, so a first failure is an increase.
            counts = notifier.counts
            for event in EVENT_KINDS:
                for outcome in NOTIFY_OUTCOMES:
                    fam.notifications.add_metric([event, outcome], float(counts[(event, outcome)]))

    def _markets(self, fam: Families, market: MarketHub, now: float) -> None:
        for key, row in market.status(now).items():
            exchange, symbol = split_key(key)
            labels = (exchange, symbol)
            if row["age_s"] is not None:
                fam.market_book_age.add_metric(labels, float(row["age_s"]))
                for source in BOOK_SOURCES:
                    current = 1.0 if row["source"] == source else 0.0
                    fam.market_book_source.add_metric((*labels, source), current)
            fam.market_subscribers.add_metric(labels, float(row["subscribers"]))
            fam.market_feed_failures.add_metric(labels, float(row["failures"]))

    # --- per profile

    def _slot(self, fam: Families, slot: ProfileRunner) -> None:
        profile = slot.loaded.profile
        # Label values as tuples: the text backend keys its cache by them (a tuple is its own
        # key, a list is copied into one).
        labels = (profile.name, venue_label(profile), profile.symbol)
        view = slot.bot.view() if slot.bot is not None else None
        current = profile_state(slot, view)
        for state in PROFILE_STATES:
            fam.state.add_metric((*labels, state), 1.0 if state == current else 0.0)
        fam.restarts.add_metric(labels, float(slot.restarts))
        limiter = getattr(slot, "limiter", None)
        if isinstance(limiter, TokenBucket):
            fam.tokens.add_metric(labels, limiter.tokens)
            fam.capacity.add_metric(labels, limiter.capacity)
        metrics = getattr(slot, "venue_metrics", None)
        if isinstance(metrics, VenueMetrics):
            self._venue(fam, labels, metrics)
        if view is not None:
            self._bot(fam, labels, view)
        hedging = getattr(self.supervisor, "hedging", None)
        link = None if hedging is None else hedging.links.get(profile.name)
        if link is not None:
            self._hedge(fam, labels, link)

    def _hedge(self, fam: Families, labels: tuple[str, ...], link: HedgeLink) -> None:
        state = link.state
        hedge_labels = (*labels, link.target)
        fam.hedge_residual.add_metric(hedge_labels, _f(state.residual))
        fam.hedge_orders.add_metric(hedge_labels, float(state.orders_sent))
        fam.hedged.add_metric(hedge_labels, _f(state.hedged_base))
        slippage = state.average_slippage_bps
        if slippage is not None:
            fam.hedge_slippage.add_metric(hedge_labels, slippage)
        fam.hedge_tripped.add_metric(hedge_labels, 1.0 if link.trip is not None else 0.0)

    def _venue(self, fam: Families, labels: tuple[str, ...], metrics: VenueMetrics) -> None:
        for endpoint in sorted(metrics.requests):
            h = metrics.requests[endpoint]
            fam.latency.add_metric((*labels, endpoint), self._buckets.buckets(h), h.sum)
        for (endpoint, error), count in sorted(metrics.errors.items()):
            fam.venue_errors.add_metric((*labels, endpoint, error), float(count))
        wait = metrics.limiter_wait
        fam.wait.add_metric(labels, self._buckets.buckets(wait), wait.sum)

    def _bot(self, fam: Families, labels: tuple[str, ...], view: BotView) -> None:
        counters = view.counters
        # Lifecycle, mode and risk gate.
        trading = view.trading_state.value
        for state in TRADING_STATES:
            fam.trading_state.add_metric((*labels, state), 1.0 if state == trading else 0.0)
        for mode in MODES:
            fam.mode.add_metric((*labels, mode), 1.0 if mode == view.mode else 0.0)
        for engaged in view.engaged:
            fam.engaged.add_metric((*labels, engaged.rule, engaged.action), 1.0)
        # Every configured rule from 0, so a first trip is an increase, not a new series.
        counts = dict.fromkeys(view.configured_rules, 0) | dict(counters.trips_by_rule)
        for rule in sorted(counts):
            fam.trips.add_metric((*labels, str(rule)), float(counts[rule]))
        fam.consecutive_errors.add_metric(labels, float(counters.consecutive_errors))
        # Counters of this bot incarnation.
        fam.placed.add_metric(labels, float(counters.orders_placed))
        fam.cancelled.add_metric(labels, float(counters.orders_cancelled))
        fam.rejected.add_metric(labels, float(counters.orders_rejected))
        fam.not_found.add_metric(labels, float(counters.cancel_not_found))
        fam.balance_drifts.add_metric(labels, float(counters.balance_drifts))
        if view.transfers is not None:
            for asset, direction, booked in view.transfers.bookings:
                fam.transfers.add_metric((*labels, asset, direction), float(booked))
            fam.transfers_pending.add_metric(labels, float(len(view.transfers.pending)))
        fam.order_errors.add_metric(labels, float(counters.venue_errors))
        fam.decisions.add_metric(labels, float(counters.decisions))
        fam.requotes.add_metric(labels, float(counters.quotes_sent))
        fam.book_updates.add_metric(labels, float(counters.book_updates))
        if view.rebalance is not None:  # every kind from 0, so a first order is an increase
            for kind, sent in view.rebalance.orders:
                fam.rebalance_orders.add_metric((*labels, kind), float(sent))
        # Market.
        mid = view.mid
        if mid is not None:
            fam.mid.add_metric(labels, _f(mid))
        for price, side in ((view.best_bid, "buy"), (view.best_ask, "sell")):
            if price is not None:
                fam.book_best.add_metric((*labels, side), _f(price))
        if view.book_age_s is not None:
            fam.book_age.add_metric(labels, max(0.0, view.book_age_s))
        ref = view.reference
        if ref is not None:
            if ref.price is not None:
                fam.reference_price.add_metric(labels, _f(ref.price))
            if ref.deviation_pct is not None:
                fam.reference_deviation.add_metric(labels, ref.deviation_pct)
            for market, age in ref.ages_s:
                if age is not None:
                    fam.reference_age.add_metric((*labels, market), max(0.0, age))
        shaping = view.shaping
        if shaping is not None:
            fam.hanging_orders.add_metric(labels, float(shaping.hanging))
            fam.fill_cooldown.add_metric((*labels, "buy"), shaping.bid_cooldown_s)
            fam.fill_cooldown.add_metric((*labels, "sell"), shaping.ask_cooldown_s)
            fam.ping_pong_balance.add_metric(labels, float(shaping.ping_pong_balance))
            for bound, value in (("floor", shaping.band_floor), ("ceiling", shaping.band_ceiling)):
                if value is not None:
                    fam.price_band.add_metric((*labels, bound), _f(value))
        # Own orders (best first on each side).
        for orders, name in ((view.bids, "buy"), (view.asks, "sell")):
            fam.open_orders.add_metric((*labels, name), float(len(orders)))
            fam.open_size.add_metric((*labels, name), _f(sum(o.remaining for o in orders)))
            if orders:
                fam.own_best.add_metric((*labels, name), _f(orders[0].price))
        decision = view.decision
        if decision is not None:
            if decision.spread_bps is not None and math.isfinite(decision.spread_bps):
                fam.spread.add_metric(labels, decision.spread_bps / 10_000)
            if decision.inventory_share is not None:
                fam.share.add_metric(labels, decision.inventory_share)
        if view.target_share is not None:
            fam.target_share.add_metric(labels, view.target_share)
        # Inventory, equity, PnL.
        fam.inventory.add_metric(labels, _f(view.inventory_base))
        fam.balance.add_metric((*labels, view.base), _f(view.inventory_base))
        fam.balance.add_metric((*labels, view.quote), _f(view.inventory_quote))
        if view.equity is not None:
            fam.equity.add_metric(labels, _f(view.equity))
            drawdown = view.drawdown
            fam.drawdown.add_metric(labels, _f(max(Decimal(0), drawdown or Decimal(0))))
        pnl = view.pnl
        fam.realized.add_metric(labels, _f(pnl.realized))
        fam.fees.add_metric(labels, _f(pnl.fees))
        if view.mid is not None or view.start_mid is not None:
            fam.unrealized.add_metric(labels, _f(view.unrealized_pnl))
            fam.net.add_metric(labels, _f(view.net_pnl))
            parts = view.pnl_parts
            for part in PNL_PARTS:
                fam.pnl_parts.add_metric((*labels, part), _f(getattr(parts, part)))
        fill_kpis(fam, labels, view)
        # Fills: restored from the ledger during startup, so exported only after it.
        if view.state is not BotState.STARTING:
            for name, count, volume, notional in (
                ("buy", pnl.buy_count, pnl.buy_volume, pnl.buy_notional),
                ("sell", pnl.sell_count, pnl.sell_volume, pnl.sell_notional),
            ):
                fam.fills.add_metric((*labels, name), float(count))
                fam.fill_volume.add_metric((*labels, name), _f(volume))
                fam.fill_notional.add_metric((*labels, name), _f(notional))


# --- event-loop lag --------------------------------------------------------------------------


class LoopLagMonitor:
    """Sleeps ``interval_s`` in a loop and records how late each wake-up was.

    A busy or blocked event loop (a synchronous call on the loop, a CPU-heavy decision) shows up
    as lag for every profile at once. Start it in the supervisor's task group:
    ``tg.start_soon(monitor.run)``.
    """

    def __init__(
        self,
        interval_s: float = 0.5,
        *,
        buckets: tuple[float, ...] = LOOP_LAG_BUCKETS,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        if interval_s <= 0:
            raise ValueError("interval_s must be positive")
        self.interval_s = interval_s
        self.histogram = Histogram(buckets)
        self.last_lag_s: float | None = None
        self._clock = clock

    def record(self, lag_s: float) -> None:
        """Record one measured lag (negative values, from coarse timers, count as 0)."""
        lag = max(0.0, lag_s)
        self.last_lag_s = lag
        self.histogram.observe(lag)

    async def run(self, *, task_status: TaskStatus[None] = anyio.TASK_STATUS_IGNORED) -> None:
        """Measure until cancelled."""
        task_status.started()
        while True:
            started = self._clock()
            await anyio.sleep(self.interval_s)
            self.record(self._clock() - started - self.interval_s)


# --- registry and exposition -----------------------------------------------------------------


def build_registry(
    supervisor: Supervisor,
    *,
    loop_lag: LoopLagMonitor | None = None,
    runtime: bool = True,
) -> CollectorRegistry:
    """A fresh registry holding ``supervisor``'s collector (one registry per supervisor).

    :param runtime: also export the standard ``process_*``, ``python_gc_*`` and
        ``python_info`` series (the global default registry is never touched).
    """
    registry = CollectorRegistry()
    registry.register(SupervisorCollector(supervisor, loop_lag=loop_lag))
    if runtime:
        ProcessCollector(registry=registry)
        GCCollector(registry=registry)
        PlatformCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """Body and content type for the control endpoint's ``metrics`` callback."""
    return generate_latest(registry), CONTENT_TYPE_LATEST
