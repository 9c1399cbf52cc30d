"""Which settlement sweeps a balance read shows, and how a transfer moves the PnL state."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kasmm.bot.transfers import Booking, Expected, Transfers, expected, match
from kasmm.core.pnl import PnlState, apply_fill, transfer
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.store.settlements import SweepRecord, SweepState

D = Decimal
ASSETS = ("KAS", "USDT")
DUST = (D(1), D("0.1"))


def sweep(
    key: str,
    amount: str,
    fee: str = "0",
    state: SweepState = "accepted",
    asset: str = "KAS",
    ts: float = 100.0,
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
        requested_ts=ts,
        updated_ts=ts,
    )


def out(key: str, *amounts: str, state: str = "accepted") -> Expected:
    return Expected(key, "out", "KAS", tuple(D(a) for a in amounts), state)


@pytest.mark.parametrize(
    ("candidates", "local", "venue", "booked"),
    [
        # nothing left yet: a read that shows nothing matches nothing
        ([out("a", "1000", "1001")], "5000", "5000", []),
        # the amount plus the fee left (most exchanges), or only the amount (fee from it)
        ([out("a", "1000", "1001")], "5000", "3999", [("a", "1001")]),
        ([out("a", "1000", "1001")], "5000", "4000", [("a", "1000")]),
        # within dust (a lot of base): the nearer amount wins
        ([out("a", "1000", "1001")], "5000", "4000.4", [("a", "1000")]),
        # beyond dust of either: not this sweep (the drift check reports it)
        ([out("a", "1000", "1001")], "5000", "3900", []),
        # two sweeps in one read
        ([out("a", "1000"), out("b", "500")], "5000", "3500", [("a", "1000"), ("b", "500")]),
        # one of two: the one that explains the difference
        ([out("a", "1000"), out("b", "500")], "5000", "4500", [("b", "500")]),
        # equal amounts, one left: the oldest is taken
        ([out("a", "500"), out("b", "500")], "5000", "4500", [("a", "500")]),
        # a failed sweep's amount comes back
        ([Expected("a", "back", "KAS", (D(1001),), "failed")], "3999", "5000", [("a", "1001")]),
    ],
)
def test_a_read_matches_the_sweeps_it_shows(
    candidates: list[Expected], local: str, venue: str, booked: list[tuple[str, str]]
) -> None:
    got = match(candidates, D(local), D(venue), D(1))
    assert [(b.key, str(b.amount)) for b in got] == booked


@pytest.mark.parametrize(
    ("record", "booked", "wanted"),
    [
        (sweep("a", "1000", "1"), {}, [("a", "out", ("1000", "1001"))]),
        (sweep("a", "1000"), {}, [("a", "out", ("1000",))]),
        (sweep("a", "1000", "1", state="confirmed"), {}, [("a", "out", ("1000", "1001"))]),
        (sweep("a", "1000", "1"), {("a", "out"): D(1001)}, []),
        # refused: nothing left, nothing booked, nothing to expect
        (sweep("a", "1000", "1", state="failed"), {}, []),
        # failed after it was booked out: expected back by what was booked
        (
            sweep("a", "1000", "1", state="failed"),
            {("a", "out"): D(1001)},
            [("a", "back", ("1001",))],
        ),
        (sweep("a", "1000", state="failed"), {("a", "out"): D(1000), ("a", "back"): D(1000)}, []),
        # another asset than the market's, and a sweep before accounting opened
        (sweep("a", "1000", asset="BTC"), {}, []),
        (sweep("a", "1000", ts=5.0), {}, []),
    ],
)
def test_what_is_expected(
    record: SweepRecord,
    booked: dict[tuple[str, str], Decimal],
    wanted: list[tuple[str, str, tuple[str, ...]]],
) -> None:
    got = expected([record], booked, ASSETS, since=10.0)  # type: ignore[arg-type]
    assert [(e.key, e.direction, tuple(map(str, e.amounts))) for e in got] == wanted


def transfers(since: float = 10.0) -> Transfers:
    t = Transfers()
    t.since = since
    return t


def test_a_matched_sweep_moves_the_local_view_and_is_queued_once() -> None:
    t = transfers()
    rec = sweep("a", "1000", "1")
    local = t.on_read([rec], ASSETS, (D(5000), D(100)), (D(3999), D(100)), DUST, True)
    assert local == (D(3999), D(100))
    assert bool(t.due) and not t.pending
    # a second read before the decision took them: not queued again
    t.on_read([rec], ASSETS, (D(3999), D(100)), (D(3999), D(100)), DUST, True)
    assert t.take() == [Booking("a", "out", "KAS", D(1001))]
    assert not t.due and t.booked == {("a", "out"): D(1001)}
    assert t.transferred_out == {"KAS": D(1001)} and t.counts == {("KAS", "out"): 1}


def test_a_sweep_sent_that_no_read_showed_is_booked_unmatched_without_moving_the_view() -> None:
    t = transfers()
    # the deduction hid in a read with other changes (adopted as a drift)
    t.on_read(
        [sweep("a", "1000", "1", "sent")], ASSETS, (D(5000), D(0)), (D(5000), D(0)), DUST, True
    )
    assert not t.due and [c.key for c in t.pending] == ["a"]
    local = t.on_read(
        [sweep("a", "1000", "1", "confirmed")], ASSETS, (D(4000), D(0)), (D(4000), D(0)), DUST, True
    )
    assert local == (D(4000), D(0))
    assert t.take() == [Booking("a", "out", "KAS", D(1001), unmatched=True)]


def test_a_requested_sweep_not_shown_stays_expected() -> None:
    t = transfers()
    for _ in range(3):
        t.on_read([sweep("a", "1000")], ASSETS, (D(5000), D(0)), (D(5000), D(0)), DUST, True)
    assert not t.due and [c.key for c in t.pending] == ["a"]


def test_the_read_that_starts_a_restarted_bot_books_what_left_while_it_was_down() -> None:
    t = Transfers()
    t.restored([], opened_at=10.0)
    records = [sweep("a", "1000", "1", "confirmed"), sweep("b", "700", "1", "requested")]
    local = t.on_read(records, ASSETS, (D(0), D(0)), (D(4000), D(0)), DUST, False)
    assert local == (D(0), D(0))  # adopted as read: nothing to compare before accounting
    assert t.take() == [Booking("a", "out", "KAS", D(1001), unmatched=True)]
    assert [c.key for c in t.pending] == ["b"]


def test_nothing_is_expected_before_accounting_opened() -> None:
    t = Transfers()  # a first run before its first book
    t.on_read([sweep("a", "1000", state="sent")], ASSETS, (D(0),) * 2, (D(1),) * 2, DUST, False)
    assert not t.due and not t.pending and t.status() is None


def test_restored_bookings_are_never_booked_again() -> None:
    from kasmm.store.settlements import BookedTransfer

    t = Transfers()
    t.restored([BookedTransfer("a", "out", "KAS", D(1001), D("0.08"), 50.0)], opened_at=10.0)
    t.on_read(
        [sweep("a", "1000", "1", "confirmed")],
        ASSETS,
        (D(5000),) * 2,
        (D(3999), D(5000)),
        DUST,
        True,
    )
    assert not t.due
    status = t.status()
    assert status is not None and status.transferred_out == (("KAS", D(1001)),)


# --- the PnL rule ---------------------------------------------------------------------------


def fill(side: Side, price: str, size: str) -> Fill:
    return Fill(TradeId("t"), ClientOrderId("c"), side, D(price), D(size), D(0), "USDT", 0.0)


def test_base_leaves_at_average_cost_and_net_and_hold_are_continuous() -> None:
    state = apply_fill(PnlState.opening(D(5000), D("0.08")), fill(Side.BUY, "0.11", "5000"), "USDT")
    mark = D("0.1")
    before = state.parts(mark)
    after = transfer(state, D(2000), mark)
    assert after.position == state.position - 2000
    assert after.avg_cost == state.avg_cost  # left at average cost: nothing realized
    assert after.realized == state.realized and after.fees == state.fees
    assert after.parts(mark) == before  # exact, every part
    # afterwards only what is still held moves with the market
    later = D("0.2")
    moved = after.net(later) - after.net(mark)
    assert moved == after.position * (later - mark)
    assert after.hold(later) - after.hold(mark) == after.opening_position * (later - mark)


def test_a_failed_sweep_coming_back_restores_the_position() -> None:
    state = PnlState.opening(D(5000), D("0.08"))
    away = transfer(state, D(1000), D("0.1"))
    back = transfer(away, D(-1000), D("0.12"))
    assert back.position == D(5000)
    assert back.net(D("0.12")) == away.net(D("0.12"))
    assert back.hold(D("0.12")) == away.hold(D("0.12"))


@given(
    st.lists(
        st.tuples(
            st.sampled_from(["buy", "sell", "out", "back"]),
            st.integers(1, 5000),
            st.integers(5, 200),
        ),
        max_size=12,
    )
)
def test_a_transfer_never_moves_net_or_hold_at_its_mark(
    steps: list[tuple[str, int, int]],
) -> None:
    state = PnlState.opening(D(3000), D("0.08"))
    for kind, size, cents in steps:
        price = D(cents) / 1000
        if kind in ("buy", "sell"):
            state = apply_fill(state, fill(Side(kind), str(price), str(size)), "USDT")
            continue
        moved = transfer(state, D(size) if kind == "out" else -D(size), price)
        # exact Decimal (28 digits): equal at the transfer's mark to well below a unit
        assert abs(moved.net(price) - state.net(price)) < D("1e-18")
        assert moved.hold(price) == state.hold(price)
        assert moved.position == state.position - (D(size) if kind == "out" else -D(size))
        state = moved


def test_moves_show_what_the_balances_show_moved_queued_or_booked() -> None:
    """A portfolio reads them (kasmm.core.group_transfers): a sweep a read matched moved the
    inventory before the decision books it, so it shows from the read on, once."""
    from kasmm.core.portfolio import MemberTransfer
    from kasmm.store.settlements import BookedTransfer

    t = transfers()
    t.restored([BookedTransfer("q", "out", "USDT", D(50), D(1), 50.0)], opened_at=10.0)
    assert t.moves("KAS") == (MemberTransfer("q", "out", False, D(50)),)
    t.on_read([sweep("a", "1000", "1")], ASSETS, (D(5000), D(100)), (D(3999), D(100)), DUST, True)
    queued = MemberTransfer("a", "out", True, D(1001))
    assert t.moves("KAS") == (MemberTransfer("q", "out", False, D(50)), queued)
    t.take()
    assert t.moves("KAS") == (MemberTransfer("q", "out", False, D(50)), queued)
