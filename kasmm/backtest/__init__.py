"""Backtesting: the profile's own bot, in virtual time, on a simulated or recorded market.

:func:`run_backtest` runs many seeded paths (in worker processes), optionally over a parameter
grid, and returns a :class:`BacktestResult` whose :meth:`~BacktestResult.to_json` is the
versioned JSON document of :mod:`kasmm.backtest.result`. The replay market and its CSV format
are in :mod:`kasmm.backtest.replay`; ``kasmm record`` (:mod:`kasmm.backtest.record`) writes that
format from a live market's public data.
"""

from kasmm.backtest.engine import (
    MARKETS,
    BacktestError,
    backtest_profile,
    run_backtest,
)
from kasmm.backtest.plumbing import BacktestBucket, BacktestClock
from kasmm.backtest.result import SCHEMA_VERSION, BacktestResult, PathResult, RunResult, Stat

__all__ = [
    "MARKETS",
    "SCHEMA_VERSION",
    "BacktestBucket",
    "BacktestClock",
    "BacktestError",
    "BacktestResult",
    "PathResult",
    "RunResult",
    "Stat",
    "backtest_profile",
    "run_backtest",
]
