"""``kasmm report``: a self-contained HTML report of the ledger (charts need ``kasmm[report]``).

Per profile: mid with the profile's resting quotes and fills, inventory against its target, PnL
and drawdown over time, a fill summary, kill-switch events and mode changes. Only
:mod:`kasmm.report.charts` imports matplotlib; everything else here works without it.
"""

from kasmm.report.command import MISSING_MATPLOTLIB, report_command
from kasmm.report.period import PeriodError, parse_since

__all__ = ["MISSING_MATPLOTLIB", "PeriodError", "parse_since", "report_command"]
