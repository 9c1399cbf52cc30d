"""The ``kasmm_portfolio_*`` series of one scrape: each portfolio's state, inventory and PnL.

Read from the supervisor's portfolio manager (:mod:`kasmm.supervisor.portfolios`), one label
``portfolio``. A group not measured yet (a member still starting) exports its state and member
count only: a zero would read as an empty, worthless group.
"""

from __future__ import annotations

from collections.abc import Iterable
from decimal import Decimal
from typing import TYPE_CHECKING

from kasmm.core.risk import TradingState
from kasmm.obs.families import Families

if TYPE_CHECKING:
    from kasmm.supervisor.portfolios import GroupRun

__all__ = ["GROUP_STATES", "fill_portfolios"]

#: The states a group's own kill switches put it in (it has no reduce-only rule).
GROUP_STATES = (TradingState.ACTIVE.value, TradingState.PAUSED.value, TradingState.HALTED.value)


def fill_portfolios(fam: Families, groups: Iterable[GroupRun], now: float) -> None:
    """Add every group's series to ``fam`` (interval-clock ``now``: a pause's end)."""
    for group in sorted(groups, key=lambda g: g.spec.name):
        labels = (group.spec.name,)
        state = group.risk.trading_state(now).value
        for name in GROUP_STATES:
            fam.portfolio_state.add_metric((*labels, name), 1.0 if name == state else 0.0)
        fam.portfolio_members.add_metric(labels, float(len(group.members)))
        agg = group.agg
        if agg is None:
            continue
        fam.portfolio_base.add_metric(labels, float(agg.base))
        fam.portfolio_deviation.add_metric(labels, agg.deviation)
        fam.portfolio_pnl.add_metric(labels, float(agg.pnl))
        if agg.share is not None:
            fam.portfolio_share.add_metric(labels, agg.share)
        if agg.target_share is not None:
            fam.portfolio_target_share.add_metric(labels, agg.target_share)
        if agg.excess_base is not None:
            fam.portfolio_excess.add_metric(labels, float(agg.excess_base))
        equity = agg.equity
        if equity is None:
            continue
        fam.portfolio_value.add_metric(labels, float(equity - agg.quote))
        fam.portfolio_equity.add_metric(labels, float(equity))
        tracker = group.tracker
        if tracker.day_start_equity is not None:
            fam.portfolio_daily_pnl.add_metric(labels, float(equity - tracker.day_start_equity))
        if tracker.peak_equity is not None:
            drawdown = max(Decimal(0), tracker.peak_equity - equity)
            fam.portfolio_drawdown.add_metric(labels, float(drawdown))
