"""PnL attribution per day, pure: the ledger's fills and equity snapshots folded day by day.

What ``kasmm pnl`` prints and the report's attribution table shows. The accounting is the bot's
own (:mod:`kasmm.core.pnl`): every stored fill folded from the stored opening, in the order the
bot folded them; the mark is the mid of the latest equity snapshot (the opening mark before
the first). Each fill and each snapshot changes the running parts; the change is booked to the
local day (in the profile's time zone) of that fill or snapshot. So a day's figures are
exactly what it added, and the days add up to the totals since accounting started:

* ``spread_capture``: realized PnL of the day's round trips (average cost, before fees);
* ``fees``: fees of the day's fills (in quote; negative: rebates);
* ``revaluation``: change of the open position's value at the mark (the starting inventory
  included): what the market's moves did to what was held;
* ``net = spread_capture + revaluation - fees``;
* ``hold``: what the starting portfolio would have gained that day by only being held
  (opening base x the mark's change); ``vs_hold = net - hold``.

Settlement sweeps the profile booked as transfers (:func:`kasmm.core.pnl.transfer`) fold in
with the fills, in time order (the order a restored bot folds them in:
:mod:`kasmm.store.pnl_replay`): base leaves the position at average cost and its revaluation
at the booking's mark stays in ``revaluation``; a transfer books no PnL of its own (at the
mark of the booking) and no fill.

The mark moves only with snapshots (the bot records one every few seconds while running), so a
day's last figures are as fresh as its last snapshot.
"""

from __future__ import annotations

import datetime as dt
import heapq
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo

from kasmm.core.pnl import PnlState, apply_fill, fee_in_quote
from kasmm.core.types import ZERO, Fill
from kasmm.store.pnl_replay import accounting_events, apply_event
from kasmm.store.records import EquitySnapshot
from kasmm.store.settlements import BookedTransfer


@dataclass(slots=True)
class DayPnl:
    """One local day's trading and PnL parts (quote currency; volume also in base)."""

    day: dt.date
    fills: int = 0
    buys: int = 0
    sells: int = 0
    volume_base: Decimal = ZERO
    volume_quote: Decimal = ZERO
    spread_capture: Decimal = ZERO
    revaluation: Decimal = ZERO
    fees: Decimal = ZERO
    hold: Decimal = ZERO
    #: The mark at the day's last fill or snapshot.
    mark: Decimal | None = None

    @property
    def net(self) -> Decimal:
        """``spread_capture + revaluation - fees``."""
        return self.spread_capture + self.revaluation - self.fees

    @property
    def vs_hold(self) -> Decimal:
        """``net - hold``: what market making added beyond holding."""
        return self.net - self.hold


@dataclass(frozen=True, slots=True)
class DailyPnl:
    """A profile's days (oldest first, only days with a fill or a snapshot) and the state
    after the last one (whose :meth:`~kasmm.core.pnl.PnlState.parts` at ``mark`` the days
    add up to)."""

    days: tuple[DayPnl, ...]
    state: PnlState
    mark: Decimal | None
    timezone: str

    def last(self, n: int, today: dt.date) -> list[DayPnl]:
        """The days among the ``n`` local days ending ``today``."""
        first = today - dt.timedelta(days=max(0, n - 1))
        return [d for d in self.days if first <= d.day <= today]


def total(days: Sequence[DayPnl]) -> DayPnl:
    """The sum of ``days``, dated with the last one (its mark is the last one's too)."""
    out = DayPnl(days[-1].day if days else dt.date.min)
    for d in days:
        out.fills += d.fills
        out.buys += d.buys
        out.sells += d.sells
        out.volume_base += d.volume_base
        out.volume_quote += d.volume_quote
        out.spread_capture += d.spread_capture
        out.revaluation += d.revaluation
        out.fees += d.fees
        out.hold += d.hold
        out.mark = d.mark if d.mark is not None else out.mark
    return out


def local_day(ts: float, tz: ZoneInfo) -> dt.date:
    """The calendar day of epoch seconds ``ts`` in ``tz``."""
    return dt.datetime.fromtimestamp(ts, tz).date()


def _events(
    fills: Sequence[Fill],
    equity: Sequence[EquitySnapshot],
    transfers: Sequence[BookedTransfer],
    quote_asset: str,
) -> Iterator[tuple[float, int, Fill | EquitySnapshot | BookedTransfer]]:
    """Fills and booked transfers in the bot's order (:mod:`kasmm.store.pnl_replay`) merged
    with the snapshots by time; a fill or a transfer before a snapshot of the same second (the
    snapshot's balances already hold it)."""
    moves = ((e.ts, 0, e) for e in accounting_events(fills, transfers, quote_asset))
    snap_events = ((s.ts, 1, s) for s in sorted(equity, key=lambda s: s.ts))
    # heapq.merge keeps each input's order, so fills and transfers fold in the replay's order.
    return heapq.merge(moves, snap_events, key=lambda e: (e[0], e[1]))


def daily_pnl(
    fills: Sequence[Fill],
    opening: tuple[Decimal, Decimal] | None,
    equity: Sequence[EquitySnapshot],
    quote_asset: str,
    timezone: str = "UTC",
    *,
    since: float | None = None,
    until: float | None = None,
    transfers: Sequence[BookedTransfer] = (),
) -> DailyPnl:
    """Fold ``fills`` and ``equity`` into per-day PnL parts (see the module docstring).

    With ``since``, what happened before it is folded (so the average cost and the mark are
    right) but booked to no day: the days then add up to the PnL of ``[since, until]``.
    Records after ``until`` are left out.

    :param fills: every stored fill of the profile, in stored order.
    :param opening: the stored ``(position, mark)`` accounting started from (None: flat).
    :param equity: the profile's equity snapshots (any order).
    :param quote_asset: fees charged in another asset are valued at the fill price.
    :param timezone: IANA name of the zone whose midnights separate the days.
    :param transfers: the settlement sweeps the profile booked (a quote transfer moves no
        position and is left out).
    """
    tz = ZoneInfo(timezone)
    state = PnlState() if opening is None else PnlState.opening(*opening)
    mark: Decimal | None = None if opening is None else opening[1]
    days: dict[dt.date, DayPnl] = {}
    for ts, _, event in _events(fills, equity, transfers, quote_asset):
        if until is not None and ts > until:
            continue
        booked = since is None or ts >= since
        day = DayPnl(local_day(ts, tz))  # a scratch day for what comes before ``since``
        if booked:
            day = days.setdefault(day.day, day)
        # the open position's value and what transfers took out at their marks
        before_unrealized = state.unrealized(mark) + state.transferred if mark is not None else ZERO
        before_hold = state.hold(mark) if mark is not None else ZERO
        if isinstance(event, EquitySnapshot):
            mark = event.mid
        elif isinstance(event, BookedTransfer):
            state = apply_event(state, event, quote_asset)
            if mark is None:
                mark = event.mark
        else:
            new = apply_fill(state, event, quote_asset)
            day.fills += 1
            if new.buy_count > state.buy_count:
                day.buys += 1
            else:
                day.sells += 1
            day.volume_base += event.size
            day.volume_quote += event.notional
            day.spread_capture += new.realized - state.realized
            day.fees += fee_in_quote(event, quote_asset)
            state = new
            if mark is None:
                mark = event.price  # no snapshot yet: the first fill's price stands in
        day.revaluation += state.unrealized(mark) + state.transferred - before_unrealized
        day.hold += state.hold(mark) - before_hold
        day.mark = mark
    ordered = tuple(days[k] for k in sorted(days))
    return DailyPnl(ordered, state, mark, timezone)
