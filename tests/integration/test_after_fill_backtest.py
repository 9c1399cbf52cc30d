"""Each after-quoting setting in a backtest of the demo profile, its effect read from what the
bot rested and what filled after every market event (issue 19's check): a cooldown leaves the
filled side empty for that long, a ceiling stops bids above it, ping-pong alternates the fill
sides, hanging orders survive requotes and go once the mid moves past ``cancel_pct``."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from kasmm.backtest.driver import BacktestDriver, Request
from kasmm.backtest.engine import build_path
from kasmm.core.held import HANGING
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import ClientOrderId, OpenOrder, OrderFilled, Side, VenueEvent
from tests.support import demo_profile, path_spec

HORIZON_S = 120.0


@dataclass(frozen=True)
class Snapshot:
    """The bot after it handled one event (and requoted)."""

    at: float
    mid: Decimal | None  # the decision's pricing mid
    orders: tuple[OpenOrder, ...]
    hanging: frozenset[ClientOrderId]

    def side(self, side: Side) -> list[OpenOrder]:
        return [o for o in self.orders if o.side is side]


@dataclass
class Recorder:
    driver: BacktestDriver | None = None
    snapshots: list[Snapshot] = field(default_factory=list)
    #: (time, side, client id, price) of each own fill
    fills: list[tuple[float, Side, ClientOrderId, Decimal]] = field(default_factory=list)
    #: (time, side) of each order placed
    placed: list[tuple[float, Side]] = field(default_factory=list)
    cancelled: list[tuple[float, ClientOrderId]] = field(default_factory=list)

    def request(self, request: Request) -> None:
        if request.error is not None:
            return
        if request.method == "place_orders":
            self.placed.extend((request.at, r.side) for r in request.arg)
        elif request.method == "cancel_orders":
            self.cancelled.extend((request.at, cid) for cid in request.arg)

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        assert self.driver is not None
        engine = self.driver.engine
        now = self.driver.meter.last_event_at
        if isinstance(event, OrderFilled):
            f = event.fill
            self.fills.append((now, f.side, f.client_id, f.price))
        mid = None
        if decision is not None:
            mid = decision.reference_mid if decision.reference_mid is not None else decision.mid
        hanging = frozenset(c for c, role in engine.held.items() if role == HANGING)
        self.snapshots.append(Snapshot(now, mid, tuple(engine.open_orders.values()), hanging))


def run(**overrides: Any) -> Recorder:
    rec = Recorder()
    driver = build_path(path_spec(demo_profile(**overrides), HORIZON_S), observer=rec)
    rec.driver = driver
    driver.run()
    assert len(rec.fills) > 10, "the demo market fills the bot within seconds"
    return rec


def test_a_cooldown_leaves_the_filled_side_empty_for_that_long() -> None:
    delay = 5.0
    rec = run(after_fill={"filled_order_delay_s": delay})
    windows = [(t, side) for t, side, _, _ in rec.fills]
    for t_fill, side in windows:
        during = [s for s in rec.snapshots if t_fill <= s.at < t_fill + delay]
        assert during and all(not s.side(side) for s in during), (t_fill, side)
        # no fill of that side in the window but those of the same instant (one taker)
        assert all(
            t == t_fill for t, sd, _, _ in rec.fills if sd is side and t_fill <= t < t_fill + delay
        )
    # ... and the side is quoted again afterwards
    last_buy = max(t for t, side, _, _ in rec.fills if side is Side.BUY)
    if last_buy + delay < HORIZON_S - 1:
        assert any(s.side(Side.BUY) for s in rec.snapshots if s.at >= last_buy + delay)
    sides = {side for _, side in windows}
    assert sides == {Side.BUY, Side.SELL}


def test_a_band_stops_bids_above_the_ceiling_and_asks_below_the_floor() -> None:
    # The demo market starts at 0.08 and wanders some 20 bps in two minutes: the bounds at the
    # start price put it on both sides of each.
    ceiling, floor = Decimal("0.0800"), Decimal("0.0800")
    rec = run(pricing={"price_band": {"ceiling": str(ceiling)}})
    above = [s for s in rec.snapshots if s.mid is not None and s.mid > ceiling]
    below = [s for s in rec.snapshots if s.mid is not None and s.mid < ceiling]
    assert above and below
    assert all(o.price <= ceiling for s in rec.snapshots for o in s.side(Side.BUY))
    assert all(not s.side(Side.BUY) for s in above)
    assert any(s.side(Side.SELL) for s in above) and any(s.side(Side.BUY) for s in below)
    assert all(price <= ceiling for _, side, _, price in rec.fills if side is Side.BUY)

    rec = run(pricing={"price_band": {"floor": str(floor)}})
    below = [s for s in rec.snapshots if s.mid is not None and s.mid < floor]
    assert below
    assert all(o.price >= floor for s in rec.snapshots for o in s.side(Side.SELL))
    assert all(not s.side(Side.SELL) for s in below)
    assert all(price >= floor for _, side, _, price in rec.fills if side is Side.SELL)


def balances(rec: Recorder) -> list[int]:
    """The ping-pong balance after each order's first fill: buys minus sells."""
    out, balance, seen = [], 0, set()
    for _, side, cid, _ in rec.fills:
        if cid not in seen:
            seen.add(cid)
            balance += 1 if side is Side.BUY else -1
            out.append(balance)
    return out


def test_ping_pong_answers_each_filled_order_with_one_of_the_other_side() -> None:
    """One level: after a buy only the ask is quoted until a sell fills, and the reverse; so
    filled orders never run two ahead on one side."""
    rec = run(modes={"passive": {"levels": 1}}, after_fill={"ping_pong": True})
    got = balances(rec)
    assert len(got) > 4 and {-1, 1} <= set(got)
    assert all(-1 <= b <= 1 for b in got), got
    # without it, the same path fills one side two orders ahead somewhere
    plain = balances(run(modes={"passive": {"levels": 1}}))
    assert any(abs(b) >= 2 for b in plain)


def test_hanging_orders_survive_requotes_until_the_mid_moves_past_cancel_pct() -> None:
    pct = Decimal("0.1")
    rec = run(after_fill={"hanging_orders": {"enabled": True, "cancel_pct": float(pct)}})
    hung: dict[ClientOrderId, list[Snapshot]] = {}
    for s in rec.snapshots:
        open_ids = {o.client_id: o for o in s.orders}
        for cid in s.hanging:
            if cid in open_ids:
                hung.setdefault(cid, []).append(s)
                # never left resting beyond cancel_pct after a decision
                order = open_ids[cid]
                assert s.mid is not None
                assert abs(s.mid - order.price) * 100 <= pct * order.price
    assert hung, "fills make hanging orders"
    # one stays through a requote of its own side (orders of that side placed meanwhile)
    survived = False
    for cid, seen in hung.items():
        order = next(o for o in seen[0].orders if o.client_id == cid)
        start, end = seen[0].at, seen[-1].at
        if any(start < t < end and side is order.side for t, side in rec.placed):
            survived = True
            assert all(
                next(o for o in s.orders if o.client_id == cid).price == order.price for s in seen
            )
    assert survived
    # some are cancelled for the move: the mid of the decision that cancelled one is beyond
    # cancel_pct from its price (the rest fill, or are cancelled by the stop)
    moved = 0
    for t, cid in rec.cancelled:
        if cid in hung:
            price = next(o for o in hung[cid][-1].orders if o.client_id == cid).price
            # the decision that cancelled it: the first after which it is gone
            mid = next(
                s.mid
                for s in rec.snapshots
                if s.at >= t and all(o.client_id != cid for o in s.orders)
            )
            assert mid is not None and abs(mid - price) * 100 > pct * price
            moved += 1
    assert moved
