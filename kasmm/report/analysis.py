"""Figures of a report, pure: fill summaries, realized PnL over time, drawdown, inventory target.

Everything takes ledger records (fills, equity snapshots) and returns frozen values; nothing
here reads files or draws. Money stays ``Decimal``; only shares are floats.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType

from kasmm.core.params import QuotingParams
from kasmm.core.pnl import PnlState, fee_in_quote
from kasmm.core.skew import inventory_at
from kasmm.core.types import ZERO, Balance, Balances, Fill, MarketRules, Side
from kasmm.store import EquitySnapshot
from kasmm.store.pnl_replay import accounting_events, apply_event, transfer_value
from kasmm.store.settlements import BookedTransfer


@dataclass(frozen=True, slots=True)
class SideSummary:
    """The fills of one side: how many, how much base, how much quote, which fees."""

    side: Side
    count: int = 0
    volume: Decimal = ZERO  #: base
    notional: Decimal = ZERO  #: quote (price x size)
    maker: int = 0  #: fills where the order was resting (maker)
    #: by fee asset, as charged
    fees: Mapping[str, Decimal] = field(default_factory=lambda: MappingProxyType({}))

    @property
    def avg_price(self) -> Decimal | None:
        """Volume-weighted average price (notional / volume); None without volume."""
        return self.notional / self.volume if self.volume else None


def side_summary(fills: Sequence[Fill], side: Side) -> SideSummary:
    """Totals of the fills of ``side``."""
    count = maker = 0
    volume = notional = ZERO
    fees: dict[str, Decimal] = {}
    for f in fills:
        if f.side is not side:
            continue
        count += 1
        maker += int(f.is_maker)
        volume += f.size
        notional += f.price * f.size
        if f.fee:
            fees[f.fee_asset] = fees.get(f.fee_asset, ZERO) + f.fee
    return SideSummary(
        side, count, volume, notional, maker, MappingProxyType(dict(sorted(fees.items())))
    )


def merge_fees(*summaries: SideSummary) -> dict[str, Decimal]:
    """Fees of several summaries added up by asset."""
    out: dict[str, Decimal] = {}
    for s in summaries:
        for asset, fee in s.fees.items():
            out[asset] = out.get(asset, ZERO) + fee
    return dict(sorted(out.items()))


@dataclass(frozen=True, slots=True)
class PnlPoint:
    """Realized PnL and fees accumulated over the period up to and including one fill."""

    ts: float
    realized: Decimal
    fees: Decimal


@dataclass(frozen=True, slots=True)
class PnlTrack:
    """Average-cost accounting of a profile, seen through the report's period.

    The accounting folds *every* stored fill and booked transfer from the stored opening (as
    the bot does), so the average cost at the period's start is right; ``points``,
    ``realized`` and ``fees`` count only what the period's fills added. Realized PnL is before
    fees; fees are in quote currency.
    """

    points: tuple[PnlPoint, ...]
    realized: Decimal
    fees: Decimal
    #: the state after every stored fill and transfer (since accounting started)
    total: PnlState
    _times: tuple[float, ...]
    _states: tuple[PnlState, ...]

    def state_at(self, ts: float) -> PnlState:
        """The accounting state after every fill and transfer with a time at or before ``ts``."""
        return self._states[bisect.bisect_right(self._times, ts)]

    def unrealized(self, ts: float, mark: Decimal) -> Decimal:
        """PnL of the position held at ``ts``, marked at ``mark``."""
        return self.state_at(ts).unrealized(mark)


def pnl_track(
    fills: Sequence[Fill],
    opening: tuple[Decimal, Decimal] | None,
    quote_asset: str,
    since: float | None,
    transfers: Sequence[BookedTransfer] = (),
) -> PnlTrack:
    """Fold ``fills`` (every stored fill, insertion order) with the booked ``transfers``, as
    the bot did (:mod:`kasmm.store.pnl_replay`), and follow the period's part.

    :param opening: the stored ``(position, mark)`` accounting started from (None: flat).
    :param quote_asset: values fees charged in another asset at the fill price; transfers of
        it move no position.
    :param since: start of the period (None: everything).
    :param transfers: the settlement sweeps the profile booked: base leaves the position at
        average cost; they realize nothing and are no points of the track.
    """
    state = PnlState() if opening is None else PnlState.opening(*opening)
    after: list[tuple[float, PnlState]] = []
    deltas: list[tuple[float, Decimal, Decimal]] = []
    for event in accounting_events(fills, transfers, quote_asset):
        new = apply_event(state, event, quote_asset)
        after.append((event.ts, new))
        if isinstance(event, Fill) and (since is None or event.ts >= since):
            deltas.append(
                (event.ts, new.realized - state.realized, fee_in_quote(event, quote_asset))
            )
        state = new
    deltas.sort(key=lambda d: d[0])
    points: list[PnlPoint] = []
    realized = fees = ZERO
    for ts, gain, fee in deltas:
        realized += gain
        fees += fee
        points.append(PnlPoint(ts, realized, fees))
    # Fills are stored in arrival order, which is time order up to venue reporting jitter;
    # a stable sort by time makes state_at a binary search.
    after.sort(key=lambda a: a[0])
    start = PnlState() if opening is None else PnlState.opening(*opening)
    return PnlTrack(
        points=tuple(points),
        realized=realized,
        fees=fees,
        total=state,
        _times=tuple(ts for ts, _ in after),
        _states=(start, *(s for _, s in after)),
    )


@dataclass(frozen=True, slots=True)
class DrawdownPoint:
    """Equity below its running peak (over the period) at one snapshot."""

    ts: float
    equity: Decimal
    peak: Decimal
    drawdown: Decimal  #: peak - equity, >= 0
    pct: float | None  #: drawdown in percent of the peak; None when the peak is <= 0


def drawdown_series(
    equity: Sequence[EquitySnapshot],
    transfers: Sequence[BookedTransfer] = (),
    quote_asset: str = "",
) -> list[DrawdownPoint]:
    """Running peak and drawdown of the snapshots, in their order.

    :param transfers: the settlement sweeps the profile booked: the running peak is lowered by
        the value each took out (at its booking's mark; a transfer back raises it) from the
        first snapshot after it on, as the bot's peak is, so a sweep is no drawdown.
    :param quote_asset: a transfer of it is valued as is, any other at its mark.
    """
    moves = sorted(transfers, key=lambda t: t.ts)
    out: list[DrawdownPoint] = []
    peak: Decimal | None = None
    i = 0
    for snap in equity:
        # a transfer of the snapshot's second is in its balances already (as in the days)
        while i < len(moves) and moves[i].ts <= snap.ts:
            if peak is not None:
                peak -= transfer_value(moves[i], quote_asset)
            i += 1
        peak = snap.equity if peak is None or snap.equity > peak else peak
        dd = peak - snap.equity
        pct = float(dd / peak * 100) if peak > 0 else None
        out.append(DrawdownPoint(snap.ts, snap.equity, peak, dd, pct))
    return out


def max_drawdown(points: Sequence[DrawdownPoint]) -> DrawdownPoint | None:
    """The point of deepest drawdown (the first one on ties), or None without snapshots."""
    deepest: DrawdownPoint | None = None
    for p in points:
        if deepest is None or p.drawdown > deepest.drawdown:
            deepest = p
    return deepest


def base_share(snap: EquitySnapshot) -> float | None:
    """Base value as a share of portfolio value (base x mid + quote); None when that is <= 0."""
    value = snap.base * snap.mid + snap.quote
    return float(snap.base * snap.mid / value) if value > 0 else None


@dataclass(frozen=True, slots=True)
class TargetPoint:
    """The profile's inventory target at one snapshot, in base and as a share."""

    ts: float
    target_base: Decimal | None
    target_share: float | None


def inventory_targets(
    equity: Sequence[EquitySnapshot], params: QuotingParams, base: str, quote: str
) -> list[TargetPoint]:
    """The target the quoting core aimed at, at each snapshot (same code: ``inventory_at``).

    The ledger does not store the target; it follows from the profile and the snapshot.
    """
    # inventory_at only reads the asset names of the market rules; tick and lot do not matter.
    rules = MarketRules(symbol=f"{base}/{quote}", base=base, quote=quote, tick=Decimal(1), lot=ZERO)
    out: list[TargetPoint] = []
    for snap in equity:
        if snap.mid <= 0:
            out.append(TargetPoint(snap.ts, None, None))
            continue
        balances = Balances(
            MappingProxyType({base: Balance(snap.base), quote: Balance(snap.quote)})
        )
        inv = inventory_at(params, balances, rules, snap.mid)
        out.append(TargetPoint(snap.ts, inv.target_base, inv.target_share))
    return out
