"""The ledger as a self-contained HTML report (charts need ``kasmm[report]``); the ``kasmm report``
command is :mod:`kasmm.commands.report`.

Per profile: mid with the profile's resting quotes and fills, inventory against its target, PnL
and drawdown over time, a fill summary, market-making KPIs and obligation compliance per day
(:mod:`kasmm.report.mm`), kill-switch events and mode changes. Only
:mod:`kasmm.report.charts` imports matplotlib; everything else here works without it.
"""

from kasmm.report.period import PeriodError, parse_since

__all__ = ["PeriodError", "parse_since"]
