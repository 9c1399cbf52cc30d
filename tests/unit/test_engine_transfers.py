"""The engine books a settlement sweep of its account as a transfer: no drift, no kill switch,
PnL continuous, and a share target that follows the new balances."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.bot.commands import Log, StoreDrift, StoreTransfer
from kasmm.bot.engine import Engine
from kasmm.core.skew import effective_target_base
from kasmm.core.types import Book, BookLevel, MarketRules
from kasmm.store.settlements import SweepRecord, SweepState
from tests.support import demo_profile

D = Decimal
RULES = MarketRules(symbol="KAS/USDT", base="KAS", quote="USDT", tick=D("0.00001"), lot=D(1))
MID = D("0.08")
OPENED = 1_000.0


def book(ts: float, mid: Decimal = MID) -> Book:
    # a new size each time: the book changes (the stale-book rule reads changes)
    size = D(50_000 + int(ts * 10))
    return Book((BookLevel(mid - D("0.0001"), size),), (BookLevel(mid + D("0.0001"), size),), ts)


def engine(**overrides: Any) -> Engine:
    """50,000 KAS and 4,000 USDT at 0.08: equity 8,000, half of it base; accounting open."""
    e = Engine(demo_profile(**overrides), venue_name="mexc", run_tag="t0000000")
    e.connected(RULES)
    e.account.inventory.base, e.account.inventory.quote = D(50_000), D(4_000)
    assert e.on_book(book(0.0), 0.0)
    e.persist(0.0, OPENED)
    e.decide(0.0, OPENED)
    e.take()
    return e


def sweep(
    key: str, amount: int, fee: int = 1, state: SweepState = "accepted", asset: str = "KAS"
) -> SweepRecord:
    return SweepRecord(
        key=key,
        account="main",
        exchange="mexc",
        asset=asset,
        amount=D(amount),
        fee=D(fee),
        address="kaspa:qq",
        network="mainnet",
        client_id=None,
        state=state,
        requested_ts=OPENED + 1,
        updated_ts=OPENED + 1,
    )


def read(e: Engine, t: float, base: Decimal, quote: Decimal, *sweeps: SweepRecord) -> None:
    e.on_book(book(t), t)
    e.balances_read(base, quote, OPENED + t, t, OPENED + t, list(sweeps))
    e.decide(t, OPENED + t)


def test_a_sweep_of_a_fifth_of_equity_trips_nothing_and_the_share_target_follows() -> None:
    e = engine()
    assert e.tracker.peak_equity == D(8_000)
    read(e, 1.0, D(50_000), D(4_000), sweep("s1", 20_000))  # requested: not out yet
    assert not e.transfers.due and [p.key for p in e.transfers.pending] == ["s1"]
    read(e, 2.0, D(29_999), D(4_000), sweep("s1", 20_000, state="sent"))
    commands = e.take()
    assert not [c for c in commands if isinstance(c, StoreDrift)]
    assert e.stats.balance_drifts == 0 and e.stats.kill_switch_trips == 0
    stored = [c for c in commands if isinstance(c, StoreTransfer)]
    assert [(c.key, c.direction, c.amount, c.mark, c.value) for c in stored] == [
        ("s1", "out", D(20_001), MID, D(20_001) * MID)
    ]
    assert [c.event for c in commands if isinstance(c, Log) and "transfer" in c.event] == [
        "transfer_booked"
    ]
    # drawdown and the day's PnL measure trading only
    equity = e.account.inventory.equity(MID)
    assert equity == D(8_000) - D(20_001) * MID
    assert e.tracker.peak_equity == equity and e.tracker.day_start_equity == equity
    # PnL: the base left at average cost, nothing lost
    assert e.account.pnl.position == D(29_999)
    assert e.account.pnl.net(MID) == 0
    # the share target is half of the new value
    target = effective_target_base(e._params, equity, MID)
    assert target is not None and abs(target - equity / 2 / MID) <= 1
    decision = e.last_decision
    assert decision is not None and decision.inventory_share is not None
    assert abs(D(repr(decision.inventory_share)) - D(29_999) * MID / equity) < D("1e-9")
    # and the next reads find nothing more to book
    read(e, 3.0, D(29_999), D(4_000), sweep("s1", 20_000, state="confirmed"))
    assert not [c for c in e.take() if isinstance(c, StoreTransfer | StoreDrift)]
    view = e.transfers.status()
    assert view is not None and view.transferred_out == (("KAS", D(20_001)),)


def test_without_booking_the_same_sweep_is_a_drift_and_a_halt() -> None:
    e = engine()
    read(e, 2.0, D(29_999), D(4_000))  # no sweeps known (a venue without an account)
    assert e.stats.balance_drifts == 1
    assert e.stats.kill_switch_trips >= 1  # what the booking prevents


def test_an_amount_target_does_not_move() -> None:
    inv = {"target_share": None, "target_base": 25_000, "min_share": 0.0, "max_share": 1.0}
    e = engine(inventory=inv)
    before = effective_target_base(e._params, D(8_000), MID)
    read(e, 2.0, D(29_999), D(4_000), sweep("s1", 20_000, state="sent"))
    after = effective_target_base(e._params, e.account.inventory.equity(MID), MID)
    assert before == after == D(25_000)
    assert e.stats.kill_switch_trips == 0


def test_a_quote_sweep_lowers_equity_without_touching_the_position() -> None:
    e = engine()
    read(e, 2.0, D(50_000), D(3_000), sweep("u1", 1_000, fee=0, state="sent", asset="USDT"))
    assert e.account.pnl.position == D(50_000)
    assert e.tracker.peak_equity == D(7_000) and e.stats.kill_switch_trips == 0


def test_a_failed_sweep_that_comes_back_is_booked_back() -> None:
    e = engine()
    read(e, 2.0, D(39_999), D(4_000), sweep("s1", 10_000, state="accepted"))
    read(e, 3.0, D(50_000), D(4_000), sweep("s1", 10_000, state="failed"))
    stored = [c for c in e.take() if isinstance(c, StoreTransfer)]
    assert [(c.direction, c.amount) for c in stored] == [("out", D(10_001)), ("back", D(10_001))]
    assert e.account.pnl.position == D(50_000)
    assert e.tracker.peak_equity == D(8_000) and e.stats.balance_drifts == 0


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(100, 5_000),  # amount
            st.sampled_from([0, 1, 5]),  # fee
            st.integers(0, 3),  # reads until the exchange deducts it
            st.integers(0, 3),  # reads from deduction until sent
            st.sampled_from(["confirmed", "refused", "returned"]),
        ),
        min_size=1,
        max_size=4,
    ),
    st.booleans(),  # the exchange deducts the fee on top
)
def test_booked_value_and_equity_add_up_and_nothing_is_booked_twice(
    plans: list[tuple[int, int, int, int, str]], fee_on_top: bool
) -> None:
    e = engine()
    start = e.account.inventory.equity(MID)
    booked_value = D(0)
    keys: list[tuple[str, str]] = []
    for t in range(1, 14):
        records = []
        venue_base = D(50_000)
        for i, (amount, fee, deduct_at, sent_after, end) in enumerate(plans):
            left = D(amount + (fee if fee_on_top else 0))
            deducted = end != "refused" and t >= deduct_at + 1
            sent_at = deduct_at + 1 + sent_after
            state: SweepState = "requested"
            if end == "refused" and t > deduct_at:
                state = "failed"
            elif deducted and t >= sent_at:
                state = "sent"
                if t >= sent_at + 2:
                    state = "failed" if end == "returned" else "confirmed"
            elif deducted:
                state = "accepted"
            if deducted and not (end == "returned" and t >= sent_at + 3):
                venue_base -= left
            records.append(sweep(f"s{i}", amount, fee, state))
        read(e, float(t), venue_base, D(4_000), *records)
        for c in e.take():
            if isinstance(c, StoreTransfer):
                keys.append((c.key, c.direction))
                booked_value += c.value
        equity = e.account.inventory.equity(MID)
        assert abs(start - booked_value - equity) <= MID  # a lot at the mark
    assert len(keys) == len(set(keys))
    assert e.stats.kill_switch_trips == 0 and e.stats.balance_drifts == 0
