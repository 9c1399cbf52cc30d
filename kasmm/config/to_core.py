"""From the pydantic profile to the frozen plain values the pure core takes.

``kasmm/core/`` knows nothing of the configuration: this module is the one place a profile is
flattened into :class:`~kasmm.core.params.QuotingParams`, :class:`~kasmm.core.params.RefreshParams`
and :class:`~kasmm.core.risk.RiskLimits`. It is also where the market model's capabilities are
decided: the ``as2008`` market implements Avellaneda and Stoikov (2008) exactly, so its
parameters switch off every practical check the paper does not have (balances, share caps, the
post-only guard, minimum notional, requote throttling, percentages of capital). The bot, the
metrics and the report read the capabilities from the values and never ask which venue it is.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal

from kasmm.config.schema import (
    AS2008Market,
    AvellanedaStoikovStrategy,
    CountRule,
    ModeConfig,
    ModeName,
    Profile,
    RollingHorizon,
    SessionEndHorizon,
    SimVenueConfig,
)
from kasmm.core import params as core
from kasmm.core.hedge import HedgeParams
from kasmm.core.obligations import Obligation
from kasmm.core.reference import ReferenceParams, SourceSpec
from kasmm.core.risk import (
    CountLimit,
    DailyLossLimit,
    DrawdownLimit,
    InventoryDeviationLimit,
    MidJumpLimit,
    RiskLimits,
    StaleBookLimit,
)


def _is_exact_model(profile: Profile) -> bool:
    """True for the simulated ``as2008`` market (the paper's model, implemented exactly)."""
    venue = profile.venue
    return isinstance(venue, SimVenueConfig) and isinstance(venue.market, AS2008Market)


def price_band_params(profile: Profile) -> core.PriceBandParams | None:
    """The profile's price band (``None``: no band)."""
    band = profile.pricing.price_band
    if band is None:
        return None
    return core.PriceBandParams(
        floor=band.floor, ceiling=band.ceiling, band_pct=band.band_pct, halflife_s=band.halflife_s
    )


def after_fill_params(profile: Profile) -> core.AfterFillParams:
    """What a fill changes in the profile's quoting (all off by default)."""
    after = profile.after_fill
    return core.AfterFillParams(
        filled_order_delay_s=after.filled_order_delay_s,
        ping_pong=after.ping_pong,
        hanging=after.hanging_orders.enabled,
        hanging_cancel_pct=after.hanging_orders.cancel_pct,
    )


def rebalance_params(profile: Profile) -> core.RebalanceParams | None:
    """The profile's rebalance order (``None``: skew alone brings inventory back)."""
    rebalance = profile.inventory.rebalance
    if rebalance is None:
        return None
    return core.RebalanceParams(
        order=rebalance.order,
        max_size=rebalance.max_size,
        max_slippage_bps=rebalance.max_slippage_bps,
        min_interval_s=rebalance.min_interval_s,
    )


def quoting_params(profile: Profile, *, mode: ModeName | None = None) -> core.QuotingParams:
    """Flatten ``profile`` (its active mode, or ``mode`` when given).

    On the as2008 market inventory is measured against a target of zero base, and there are no
    share caps, no balances (cash and inventory may go negative), no post-only guard and no
    minimum-notional drop, and the zero-width book is a market. Absolute ``min_base``/
    ``max_base`` caps still apply if set.
    """
    mode_cfg = _mode(profile, mode)
    strategy = profile.strategy
    vol = strategy.volatility
    inv = profile.inventory
    as_cfg = strategy if isinstance(strategy, AvellanedaStoikovStrategy) else None
    target_share: float | None = inv.target_share
    if target_share is None and inv.target_base is None:
        target_share = core.DEFAULT_TARGET_SHARE
    params = core.QuotingParams(
        strategy=strategy.type,
        spread_bps=mode_cfg.spread_bps,
        size=mode_cfg.size,
        size_unit=mode_cfg.size_unit,
        levels=mode_cfg.levels,
        level_step_bps=mode_cfg.level_step_bps,
        bid_fraction=mode_cfg.bid_fraction,
        level_size_step=mode_cfg.size_step[0],
        level_size_step_pct=mode_cfg.size_step[1],
        add_fees=profile.pricing.add_fees,
        join_depth=profile.pricing.join_depth,
        join_min_spread_bps=profile.pricing.join_min_spread_bps,
        volatility=(
            core.VolatilityParams(
                halflife_s=vol.halflife_s,
                horizon_s=vol.horizon_s,
                multiplier=vol.multiplier,
                cap_bps=vol.cap_bps,
            )
            if vol is not None
            else None
        ),
        gamma=as_cfg.gamma if as_cfg else None,
        kappa=as_cfg.kappa if as_cfg else None,
        sigma=as_cfg.sigma if as_cfg else None,
        sigma_halflife_s=as_cfg.sigma_halflife_s if as_cfg else 60.0,
        min_spread_bps=as_cfg.min_spread_bps if as_cfg else 0.0,
        horizon=horizon(as_cfg.horizon) if as_cfg else None,
        target_share=None if inv.target_base is not None else target_share,
        target_base=inv.target_base,
        min_share=inv.min_share,
        max_share=inv.max_share,
        skew_strength=inv.skew_strength,
        min_base=inv.min_base,
        max_base=inv.max_base,
    )
    if not _is_exact_model(profile):
        return params
    return replace(
        params,
        target_share=None,
        target_base=Decimal(0),
        min_share=None,
        max_share=None,
        balances_known=False,
        post_only_guard=False,
        enforce_min_notional=False,
        allow_locked_book=True,
    )


def refresh_params(profile: Profile, *, mode: ModeName | None = None) -> core.RefreshParams:
    """Refresh settings of ``profile`` with the level count of its active mode (or ``mode``).

    On the as2008 market the model's trader requotes from the new mid at every step, so no
    tolerance and no minimum requote interval apply there.
    """
    refresh = profile.refresh
    exact = _is_exact_model(profile)
    return core.RefreshParams(
        tolerance_bps=0.0 if exact else refresh.tolerance_bps,
        max_order_age_s=refresh.max_order_age_s,
        min_requote_interval_s=0.0 if exact else refresh.min_requote_interval_s,
        levels=_mode(profile, mode).levels,
    )


def horizon(cfg: SessionEndHorizon | RollingHorizon) -> core.Horizon:
    """The Avellaneda–Stoikov horizon as a core value (``end`` "HH:MM" parsed once, here)."""
    if isinstance(cfg, RollingHorizon):
        return core.RollingHorizon(window_s=cfg.window_s)
    hour, minute = (int(x) for x in cfg.end.split(":"))
    return core.SessionEndHorizon(end=dt.time(hour, minute), timezone=cfg.timezone)


def risk_limits(profile: Profile) -> RiskLimits:
    """The profile's kill-switch rules, one frozen value per rule (``None``: the rule is off).

    ``has_capital`` is off on the as2008 market, whose trader starts flat with no capital.
    """
    ks = profile.kill_switch
    dd, loss, inv = ks.max_drawdown, ks.max_daily_loss, ks.max_inventory_deviation
    stale, jump = ks.stale_book, ks.mid_jump
    return RiskLimits(
        max_drawdown=(
            None
            if dd is None
            else DrawdownLimit(action=dd.action, pause_s=dd.pause_s, quote=dd.quote, pct=dd.pct)
        ),
        max_daily_loss=(
            None
            if loss is None
            else DailyLossLimit(
                action=loss.action, pause_s=loss.pause_s, quote=loss.quote, timezone=loss.timezone
            )
        ),
        max_inventory_deviation=(
            None
            if inv is None
            else InventoryDeviationLimit(action=inv.action, pause_s=inv.pause_s, share=inv.share)
        ),
        stale_book=(
            None
            if stale is None
            else StaleBookLimit(action=stale.action, pause_s=stale.pause_s, seconds=stale.seconds)
        ),
        mid_jump=(
            None
            if jump is None
            else MidJumpLimit(action=jump.action, pause_s=jump.pause_s, pct=jump.pct)
        ),
        max_consecutive_errors=_count(ks.max_consecutive_errors),
        max_order_actions_per_minute=_count(ks.max_order_actions_per_minute),
        has_capital=not _is_exact_model(profile),
    )


def obligation(profile: Profile) -> Obligation | None:
    """The profile's market-making obligations as a frozen value (``None``: none)."""
    cfg = profile.obligations
    if cfg is None:
        return None
    depth = cfg.min_depth
    return Obligation(
        max_spread_bps=cfg.max_spread_bps,
        depth_band=None if depth is None else Decimal(str(depth.band_pct)) / 100,
        min_depth=None if depth is None else depth.quote,
        min_share=cfg.min_uptime_pct / 100,
        window_s=cfg.window_s,
    )


def _count(rule: CountRule | None) -> CountLimit | None:
    if rule is None:
        return None
    return CountLimit(action=rule.action, pause_s=rule.pause_s, count=rule.count)


def _mode(profile: Profile, mode: ModeName | None) -> ModeConfig:
    if mode is None:
        return profile.active_mode
    # A profile without an aggressive mode quotes passive if switched to it at run time (an
    # operator's switch); validation refuses a mode or schedule entry that selects it.
    if mode == "aggressive" and profile.modes.aggressive is not None:
        return profile.modes.aggressive
    return profile.modes.passive


def market_key(exchange: str, symbol: str) -> str:
    """The key a market is shared and referenced by: ``"<exchange>:<symbol>"``."""
    return f"{exchange}:{symbol}"


def profile_market_key(profile: Profile) -> str:
    """The key of the market ``profile`` trades (a sim venue's: its ``exchange`` name)."""
    return market_key(venue_exchange(profile), profile.symbol)


def venue_exchange(profile: Profile) -> str:
    """The exchange name of the profile's venue: the ccxt id for ccxt and paper venues, the
    ``exchange`` name of a simulated one (``sim`` unless set)."""
    return profile.venue.exchange


def reference_params(profile: Profile) -> ReferenceParams:
    """The profile's ``reference:`` block as the pure core takes it (no block: no sources, the
    own book prices). A conversion pair multiplies when it is quoted SOURCE_QUOTE/OWN_QUOTE and
    divides when quoted OWN_QUOTE/SOURCE_QUOTE (``check_reference`` refuses anything else)."""
    cfg = profile.reference
    if cfg is None:
        return ReferenceParams()
    sources = []
    for source in cfg.sources:
        via = source.via
        if via is None:
            sources.append(SourceSpec(market_key(source.exchange, source.symbol)))
            continue
        invert = via.symbol.split("/")[0] == profile.quote
        sources.append(
            SourceSpec(
                market_key(source.exchange, source.symbol),
                market_key(via.exchange, via.symbol),
                invert,
            )
        )
    return ReferenceParams(
        sources=tuple(sources),
        method=cfg.method,
        max_age_s=cfg.max_age_s,
        max_deviation_pct=cfg.max_deviation_pct,
        on_stale=cfg.on_stale,
        pause_s=cfg.pause_s,
    )


def hedge_params(profile: Profile) -> HedgeParams | None:
    """The hedger's parameters of the profile's ``hedge:`` block (``None``: no hedging)."""
    hedge = profile.hedge
    if hedge is None:
        return None
    rule = hedge.max_unhedged_base
    return HedgeParams(
        window_s=hedge.window_ms / 1000.0,
        min_base=hedge.min_base,
        max_slippage_bps=Decimal(repr(hedge.max_slippage_bps)),
        retry_s=hedge.retry_s,
        max_unhedged_base=rule.base,
        action=rule.action,
    )
