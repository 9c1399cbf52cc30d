"""The metric families of one scrape: every kasmm family, created empty, in exposition order.

Kept apart from the collector (:mod:`kasmm.obs.metrics`) so the list of what kasmm exports, with
its help texts and labels, reads in one place. The families are made by a *backend*:
:class:`MetricBackend` makes prometheus_client's families (what a ``CollectorRegistry``
collects); :class:`kasmm.obs.exposition.TextBackend` writes each sample's exposition line as it
is added, so a scrape keeps text rather than hundreds of thousands of ``Sample`` objects. The
collector only ever calls ``add_metric``, so it fills either without knowing which.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

__all__ = [
    "PORTFOLIO_LABELS",
    "PROFILE_LABELS",
    "Backend",
    "Families",
    "GaugeLike",
    "HistogramLike",
    "MetricBackend",
]

#: Labels on every per-profile series.
PROFILE_LABELS: tuple[str, ...] = ("profile", "venue", "symbol")
#: Labels on every per-portfolio series.
PORTFOLIO_LABELS: tuple[str, ...] = ("portfolio",)


class GaugeLike(Protocol):
    """A gauge or counter family: one value per label set."""

    def add_metric(self, labels: Sequence[str], value: float) -> None: ...


class HistogramLike(Protocol):
    """A histogram family: cumulative ``(le, count)`` buckets (``+Inf`` last) and a sum."""

    def add_metric(
        self, labels: Sequence[str], buckets: Sequence[tuple[str, float]], sum_value: float | None
    ) -> None: ...


class Backend(Protocol):
    """Makes the families of one scrape, in the order they are to be exported."""

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> GaugeLike: ...

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> GaugeLike: ...

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> HistogramLike: ...


class MetricBackend:
    """prometheus_client families, kept in :attr:`metrics` for a collector to return."""

    def __init__(self) -> None:
        self.metrics: list[Metric] = []

    def gauge(self, name: str, doc: str, labels: Sequence[str]) -> GaugeMetricFamily:
        family = GaugeMetricFamily(name, doc, labels=labels)
        self.metrics.append(family)
        return family

    def counter(self, name: str, doc: str, labels: Sequence[str]) -> CounterMetricFamily:
        family = CounterMetricFamily(name, doc, labels=labels)
        self.metrics.append(family)
        return family

    def histogram(self, name: str, doc: str, labels: Sequence[str]) -> HistogramMetricFamily:
        family = HistogramMetricFamily(name, doc, labels=labels)
        self.metrics.append(family)
        return family


class Families:
    """Every metric family of one scrape, created empty (HELP/TYPE are always exported)."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        g, c, h = self._gauge, self._counter, self._histogram
        P = PORTFOLIO_LABELS
        # --- supervisor
        self.build_info = g(
            "kasmm_build_info",
            "kasmm build information (the value is always 1).",
            ("version", "python_version"),
            False,
        )
        self.start_time = g("kasmm_start_time_seconds", "Supervisor start, Unix time.", (), False)
        self.profiles = g("kasmm_profiles", "Profiles the supervisor runs.", (), False)
        self.config_errors = g(
            "kasmm_config_errors", "Profile files that currently fail to validate.", (), False
        )
        self.reloads = c(
            "kasmm_config_reloads_total", "Configuration reloads by result.", ("result",), False
        )
        self.loop_lag = h(
            "kasmm_event_loop_lag_seconds",
            "How late the supervisor's event loop woke a periodic sleep.",
            (),
            False,
        )
        self.collect_errors = c(
            "kasmm_metrics_collect_errors_total",
            "Profiles whose metrics could not be read during a scrape.",
            (),
            False,
        )
        self.notifications = c(
            "kasmm_notifications_total",
            "Notifications (_notify.yaml) by event and outcome (sent, failed, deduplicated, "
            "rate_limited, dropped).",
            ("event", "outcome"),
            False,
        )
        # --- shared market data (kasmm.market): one series per exchange:symbol
        self.market_book_age = g(
            "kasmm_market_book_age_seconds",
            "Seconds since the newest book of a shared market arrived (none before the first).",
            ("exchange", "symbol"),
            False,
        )
        self.market_book_source = g(
            "kasmm_market_book_source",
            "Where the newest book of a shared market came from (1 = current): websocket, "
            "rest or venue.",
            ("exchange", "symbol", "source"),
            False,
        )
        self.market_subscribers = g(
            "kasmm_market_subscribers",
            "Readers of a shared market (profiles trading or referencing it).",
            ("exchange", "symbol"),
            False,
        )
        self.market_feed_failures = c(
            "kasmm_market_feed_failures_total",
            "Times a shared market's feed failed and was restarted.",
            ("exchange", "symbol"),
            False,
        )
        # --- profile lifecycle and risk
        self.state = g("kasmm_profile_state", "Profile state (1 = current).", ("state",))
        self.restarts = c("kasmm_profile_restarts_total", "Restarts of the profile's bot.", ())
        self.trading_state = g(
            "kasmm_trading_state", "Risk-gate trading state (1 = current).", ("state",)
        )
        self.mode = g("kasmm_mode", "Active quoting mode (1 = active).", ("mode",))
        self.trips = c(
            "kasmm_kill_switch_trips_total",
            "Kill-switch trips by rule ('unknown' until per-rule counts exist).",
            ("rule",),
        )
        self.engaged = g(
            "kasmm_kill_switch_engaged",
            "Kill-switch rules currently in force, with their action.",
            ("rule", "action"),
        )
        self.consecutive_errors = g(
            "kasmm_consecutive_errors", "Consecutive failed order actions (kill-switch input).", ()
        )
        # --- market and quotes
        self.mid = g("kasmm_mid_price", "Mid price of the venue book (quote per base).", ())
        self.book_best = g(
            "kasmm_book_best_price", "Best price of the venue book per side.", ("side",)
        )
        self.book_age = g(
            "kasmm_book_age_seconds", "Seconds since the order book last changed.", ()
        )
        self.book_updates = c("kasmm_book_updates_total", "Order-book updates received.", ())
        self.reference_price = g(
            "kasmm_reference_price",
            "The reference price quotes centre on (profiles with reference:, while it prices).",
            (),
        )
        self.reference_deviation = g(
            "kasmm_reference_deviation_pct",
            "Distance of the reference price from the own mid, percent.",
            (),
        )
        self.reference_age = g(
            "kasmm_reference_age_seconds",
            "Seconds since each referenced market's last usable book.",
            ("market",),
        )
        # --- price band, fill cooldown, ping-pong, hanging orders (profiles with any on)
        self.hanging_orders = g(
            "kasmm_hanging_orders", "Hanging orders resting (the other side of a filled pair).", ()
        )
        self.fill_cooldown = g(
            "kasmm_fill_cooldown_seconds",
            "Seconds before a side may be quoted again after its last fill (0: quoted).",
            ("side",),
        )
        self.ping_pong_balance = g(
            "kasmm_ping_pong_balance",
            "Filled buy orders minus filled sell orders not yet answered (ping-pong).",
            (),
        )
        self.price_band = g(
            "kasmm_price_band",
            "The price band in force: no bid above the ceiling, no ask below the floor.",
            ("bound",),
        )
        self.own_best = g(
            "kasmm_own_best_price", "Best price among the profile's own open orders.", ("side",)
        )
        self.open_orders = g("kasmm_open_orders", "The profile's open orders.", ("side",))
        self.open_size = g(
            "kasmm_open_order_size_base", "Remaining size of the profile's open orders.", ("side",)
        )
        self.spread = g(
            "kasmm_quote_spread_ratio",
            "Quoted level-0 spread as a fraction of mid (x 10000 = bps).",
            (),
        )
        # --- inventory and PnL
        self.inventory = g("kasmm_inventory_base", "Inventory in the base asset.", ())
        self.share = g(
            "kasmm_inventory_share_ratio", "Base share of equity at the last decision.", ()
        )
        self.target_share = g(
            "kasmm_inventory_target_share_ratio", "Target base share of equity.", ()
        )
        self.balance = g("kasmm_balance", "Balance per asset (the bot's view).", ("asset",))
        self.equity = g("kasmm_equity_quote", "Equity marked at mid, in quote.", ())
        self.drawdown = g(
            "kasmm_drawdown_quote", "Peak equity minus equity, in quote (kill-switch input).", ()
        )
        self.realized = g("kasmm_realized_pnl_quote", "Realized PnL, in quote.", ())
        self.unrealized = g("kasmm_unrealized_pnl_quote", "Unrealized PnL at mid, in quote.", ())
        self.net = g("kasmm_net_pnl_quote", "Realized + unrealized - fees, in quote.", ())
        self.fees = g("kasmm_fees_quote", "Fees paid (negative: rebates), in quote.", ())
        self.pnl_parts = g(
            "kasmm_pnl_quote",
            "PnL attribution at mid, in quote, by part: spread_capture (realized, before fees), "
            "revaluation (the open position, starting inventory included, at mid), fees, "
            "net (= spread_capture + revaluation - fees), hold (what the starting portfolio "
            "gained by only holding it), vs_hold (net - hold: what market making added).",
            ("part",),
        )
        # --- market-making KPIs and obligations (kasmm.core.kpis, kasmm.core.obligations)
        self.uptime = g(
            "kasmm_quote_uptime_ratio",
            "Share of the bot's running time (since its start) its quotes were up: side=both "
            "(bid and ask at once), bid, ask.",
            ("side",),
        )
        self.own_spread = g(
            "kasmm_own_spread_bps",
            "Own spread (best ask - best bid) in bps of the mid, time-weighted over the time "
            "both sides were quoted since the bot started.",
            (),
        )
        self.own_spread_now = g(
            "kasmm_own_spread_now_bps",
            "Own spread (best ask - best bid) in bps of the mid now (both sides quoted only).",
            (),
        )
        self.own_depth = g(
            "kasmm_own_depth_quote",
            "Quote value of own resting orders (both sides) within band % of the mid: "
            "window=now, or avg (time-weighted since the bot started).",
            ("band", "window"),
        )
        self.fill_ratio = g(
            "kasmm_fill_ratio", "Filled size / placed size since the bot started.", ()
        )
        self.order_to_trade = g(
            "kasmm_order_to_trade_ratio",
            "Order actions (placements + cancels) per fill since the bot started.",
            (),
        )
        self.markout = g(
            "kasmm_markout_bps",
            "Markout of the bot's fills since it started, size-weighted, in bps of the fill "
            "price: the own book's mid the horizon after each fill against its price, signed "
            "for the bot (negative: adverse selection).",
            ("horizon",),
        )
        self.markout_quote = g(
            "kasmm_markout_quote",
            "Markout of the bot's fills since it started, in quote: the sum of (mid the horizon "
            "after each fill - its price) x size, signed for the bot.",
            ("horizon",),
        )
        self.markout_fills = c(
            "kasmm_markout_fills_total",
            "Fills marked out at each horizon since the bot started (a fill counts once a book "
            "came at or after its time plus the horizon).",
            ("horizon",),
        )
        self.obligation_compliance = g(
            "kasmm_obligation_compliance_ratio",
            "Share of the obligation's rolling window (observed part) during which the "
            "profile's obligations held (profiles with obligations only).",
            (),
        )
        self.obligation_required = g(
            "kasmm_obligation_required_ratio",
            "Share of each window the obligations must hold (min_uptime_pct / 100).",
            (),
        )
        self.obligation_breached = g(
            "kasmm_obligation_breached",
            "1 while compliance over a whole window is below the required share, else 0.",
            (),
        )
        # --- orders and fills
        # --- hedging (kasmm.supervisor.hedging): profiles with a hedge block
        self.hedge_residual = g(
            "kasmm_hedge_residual_base",
            "Unhedged residual (fills not offset yet on the hedge profile), signed, in base.",
            ("hedge_profile",),
        )
        self.hedge_orders = c(
            "kasmm_hedge_orders_total", "Hedge IOC orders sent.", ("hedge_profile",)
        )
        self.hedged = c(
            "kasmm_hedged_base_total", "Base offset by hedge orders.", ("hedge_profile",)
        )
        self.hedge_slippage = g(
            "kasmm_hedge_slippage_bps",
            "Mean slippage of the filled hedge orders, in bps through the hedge venue's mid at "
            "send (positive: a cost).",
            ("hedge_profile",),
        )
        self.hedge_tripped = g(
            "kasmm_hedge_tripped",
            "1 while the unhedged residual is beyond hedge.max_unhedged_base.",
            ("hedge_profile",),
        )
        self.placed = c("kasmm_orders_placed_total", "Orders placed and accepted.", ())
        self.cancelled = c("kasmm_orders_cancelled_total", "Orders cancelled.", ())
        self.rejected = c(
            "kasmm_orders_rejected_total",
            "Orders the venue rejected (post-only, funds, rules).",
            (),
        )
        self.not_found = c(
            "kasmm_cancels_not_found_total", "Cancels of orders already gone (raced a fill).", ()
        )
        self.balance_drifts = c(
            "kasmm_balance_drifts_total",
            "Balance checks where the bot's view and the venue's differed beyond dust.",
            (),
        )
        self.transfers = c(
            "kasmm_transfers_total",
            "Settlement sweeps of the account booked as transfers, by asset and direction "
            "(out; back: a failed withdrawal returned).",
            ("asset", "direction"),
        )
        self.transfers_pending = g(
            "kasmm_transfers_pending",
            "Settlement sweeps of the account expected to leave (or return) and not seen yet.",
            (),
        )
        self.order_errors = c(
            "kasmm_order_errors_total", "Order actions that failed with a venue error.", ()
        )
        self.rebalance_orders = c(
            "kasmm_rebalance_orders_total",
            "Inventory rebalance orders sent (inventory.rebalance), by kind: post_only, ioc.",
            ("order",),
        )
        self.decisions = c("kasmm_decisions_total", "Quoting decisions taken.", ())
        self.requotes = c("kasmm_requotes_total", "Decisions that sent order actions.", ())
        self.fills = c("kasmm_fills_total", "Fills (partial fills included) per side.", ("side",))
        self.fill_volume = c(
            "kasmm_fill_volume_base_total", "Filled size per side, in base.", ("side",)
        )
        self.fill_notional = c(
            "kasmm_fill_notional_quote_total", "Filled notional per side, in quote.", ("side",)
        )
        # --- portfolios (_portfolios.yaml): one series set per group, no profile labels
        self.portfolio_state = g(
            "kasmm_portfolio_trading_state",
            "The portfolio's own kill-switch state (1 = current).",
            ("portfolio", "state"),
            False,
        )
        self.portfolio_members = g(
            "kasmm_portfolio_members", "Member profiles running in this supervisor.", P, False
        )
        self.portfolio_base = g(
            "kasmm_portfolio_base", "Base held across every member (free plus locked).", P, False
        )
        self.portfolio_value = g(
            "kasmm_portfolio_value_quote",
            "The members' base valued at each one's own mid, in quote.",
            P,
            False,
        )
        self.portfolio_share = g(
            "kasmm_portfolio_share_ratio", "Base value as a share of the group's equity.", P, False
        )
        self.portfolio_target_share = g(
            "kasmm_portfolio_target_share_ratio",
            "The group's target base share (a base target converted at its mark).",
            P,
            False,
        )
        self.portfolio_deviation = g(
            "kasmm_portfolio_deviation_ratio",
            "The group's inventory deviation from target, -1 (short) to 1 (long): what every "
            "member skews by.",
            P,
            False,
        )
        self.portfolio_excess = g(
            "kasmm_portfolio_excess_base", "Base held beyond the group's target.", P, False
        )
        self.portfolio_equity = g(
            "kasmm_portfolio_equity_quote",
            "The group's equity: base at each member's mid plus every quote balance.",
            P,
            False,
        )
        self.portfolio_pnl = g(
            "kasmm_portfolio_pnl_quote", "Sum of the members' net PnL, in quote.", P, False
        )
        self.portfolio_daily_pnl = g(
            "kasmm_portfolio_daily_pnl_quote",
            "The group's equity minus its equity at the start of the local day.",
            P,
            False,
        )
        self.portfolio_drawdown = g(
            "kasmm_portfolio_drawdown_quote",
            "The group's peak equity minus its equity (group kill-switch input).",
            P,
            False,
        )
        # --- settlement (_settlement.yaml; read from the ledger, whichever process settled)
        self.settlement_sweeps = c(
            "kasmm_settlement_sweeps_total",
            "Sweeps to the Kaspa wallet that entered each state (requested, accepted, sent, "
            "confirmed, failed), from the ledger's trail.",
            ("account", "asset", "state"),
            False,
        )
        self.settlement_pending = g(
            "kasmm_settlement_pending",
            "Amount of the asset in sweeps requested and not yet confirmed or failed.",
            ("account", "asset"),
            False,
        )
        self.settlement_pending_sweeps = g(
            "kasmm_settlement_pending_sweeps",
            "Sweeps requested and not yet confirmed or failed.",
            ("account", "asset"),
            False,
        )
        self.settlement_last_confirmed = g(
            "kasmm_settlement_last_confirmed_timestamp_seconds",
            "When the account's last sweep of the asset was confirmed on chain, Unix time.",
            ("account", "asset"),
            False,
        )
        self.settlement_runs = c(
            "kasmm_settlement_runs_total",
            "Scheduled settlement runs by outcome (done, failed, skipped_running, unavailable).",
            ("account", "outcome"),
            False,
        )
        self.settlement_next_run = g(
            "kasmm_settlement_next_run_timestamp_seconds",
            "The account's next scheduled settlement, Unix time.",
            ("account",),
            False,
        )
        # --- venue and rate limiting
        self.latency = h(
            "kasmm_venue_request_duration_seconds",
            "Venue request latency per endpoint, rate-limit wait excluded.",
            ("endpoint",),
        )
        self.venue_errors = c(
            "kasmm_venue_errors_total",
            "Venue requests that raised, per endpoint and exception class.",
            ("endpoint", "error"),
        )
        self.wait = h(
            "kasmm_rate_limit_wait_seconds", "Time requests waited for rate-limit tokens.", ()
        )
        self.tokens = g("kasmm_rate_limit_tokens", "Rate-limit tokens available now.", ())
        self.capacity = g("kasmm_rate_limit_capacity", "Rate-limit bucket capacity.", ())

    def _labels(self, extra: Sequence[str], own: bool) -> list[str]:
        return [*(PROFILE_LABELS if own else ()), *extra]

    def _gauge(self, name: str, doc: str, extra: Sequence[str], own: bool = True) -> GaugeLike:
        return self._backend.gauge(name, doc, self._labels(extra, own))

    def _counter(self, name: str, doc: str, extra: Sequence[str], own: bool = True) -> GaugeLike:
        return self._backend.counter(name, doc, self._labels(extra, own))

    def _histogram(
        self, name: str, doc: str, extra: Sequence[str], own: bool = True
    ) -> HistogramLike:
        return self._backend.histogram(name, doc, self._labels(extra, own))
