"""The ``kasmm_settlement_*`` series of one scrape, from the supervisor's
:class:`~kasmm.supervisor.settling.Settling`: the ledger overview its watch last read (no disk
read at scrape time) and its scheduler's counts and next firings.

The sweep counts come from the ledger's trail, so they are the same in every process and
survive restarts; a pending amount is exported per asset that has open sweeps, and 0 for an
asset whose sweeps all ended (so a dashboard sees it drop rather than vanish).
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import TYPE_CHECKING

from kasmm.obs.families import Families
from kasmm.store.settlements import SweepState
from kasmm.supervisor.settle_schedule import RUN_OUTCOMES

if TYPE_CHECKING:
    from kasmm.supervisor.settling import Settling

__all__ = ["SWEEP_STATES", "fill_settlements"]

#: Values of ``kasmm_settlement_sweeps_total{state=...}`` (every one exported from 0).
SWEEP_STATES: tuple[SweepState, ...] = ("requested", "accepted", "sent", "confirmed", "failed")


def fill_settlements(fam: Families, settling: Settling) -> None:
    """Add the settlement series to ``fam``."""
    overview = settling.overview
    if overview is not None:
        pairs = {(a, asset) for a, asset, _state in overview.reached}
        for account, asset in sorted(pairs):
            for state in SWEEP_STATES:
                count = overview.reached.get((account, asset, state), 0)
                fam.settlement_sweeps.add_metric((account, asset, state), float(count))
        amounts: dict[tuple[str, str], Decimal] = defaultdict(Decimal)
        counts: dict[tuple[str, str], int] = defaultdict(int)
        for r in overview.open:
            amounts[(r.account, r.asset)] += r.amount
            counts[(r.account, r.asset)] += 1
        for pair in sorted(pairs | set(amounts)):
            fam.settlement_pending.add_metric(pair, float(amounts.get(pair, Decimal(0))))
            fam.settlement_pending_sweeps.add_metric(pair, float(counts.get(pair, 0)))
        for pair, ts in sorted(overview.last_confirmed.items()):
            fam.settlement_last_confirmed.add_metric(pair, float(ts))
    sched = settling.scheduler
    for account in sorted(sched.schedules()):
        for outcome in RUN_OUTCOMES:
            fam.settlement_runs.add_metric(
                (account, outcome), float(sched.runs[(account, outcome)])
            )
        at = sched.next_run(account)
        if at is not None:
            fam.settlement_next_run.add_metric((account,), at)
