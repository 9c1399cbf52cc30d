"""One replay order for a profile's fills and booked transfers, shared by every reader: a
restored bot, ``kasmm pnl`` and the report's days, the report's PnL track."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.pnl import PnlState, apply_fill, transfer
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.report.analysis import pnl_track
from kasmm.report.daily import daily_pnl
from kasmm.store.pnl_replay import accounting_events, replay
from kasmm.store.settlements import BookedTransfer, TransferDirection

D = Decimal
T0 = 1_700_000_000.0
OPENING = (D(50_000), D("0.08"))


def fill(n: int, side: Side, price: str, size: int, ts: float) -> Fill:
    return Fill(
        TradeId(f"t{n}"), ClientOrderId(f"c{n}"), side, D(price), D(size), D("0.01"), "USDT", ts
    )


def booked(
    key: str, amount: int, ts: float, asset: str = "KAS", direction: TransferDirection = "out"
) -> BookedTransfer:
    return BookedTransfer(key, direction, asset, D(amount), D("0.09"), ts)


def test_transfers_merge_by_time_before_a_fill_of_the_same_time_and_quote_ones_drop_out() -> None:
    f1 = fill(1, Side.BUY, "0.08", 1_000, T0 + 1)
    f2 = fill(2, Side.SELL, "0.09", 500, T0 + 3)
    f3 = fill(3, Side.SELL, "0.085", 200, T0 + 2)  # stored after f2 (venue time jitter)
    late = booked("s3", 7, T0 + 9)
    tie = booked("s2", 5, T0 + 3)
    early = booked("s1", 3, T0 + 0.5)
    usdt = booked("u1", 100, T0 + 1.5, asset="USDT")
    events = list(accounting_events([f1, f2, f3], [late, usdt, tie, early], "USDT"))
    # fills keep their stored order; each transfer goes before the first fill not earlier
    assert events == [early, f1, tie, f2, f3, late]


def test_replay_folds_a_transfer_back_as_base_coming_back() -> None:
    out, back = booked("s1", 20_000, T0 + 1), booked("s1", 20_000, T0 + 2, direction="back")
    state = replay(OPENING, [], [back, out], "USDT")
    want = transfer(
        transfer(PnlState.opening(*OPENING), D(20_000), D("0.09")), -D(20_000), D("0.09")
    )
    assert state == want
    assert state.position == OPENING[0]


_fills = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.sampled_from(["0.07", "0.08", "0.09", "0.1"]),
        st.integers(1, 30_000),
        st.integers(0, 20),
    ),
    max_size=8,
)
_transfers = st.lists(
    st.tuples(
        st.integers(1, 30_000),
        st.integers(0, 20),
        st.sampled_from(["KAS", "USDT"]),
        st.sampled_from(["out", "back"]),
    ),
    max_size=4,
)


@settings(max_examples=150, deadline=None)
@given(_fills, _transfers)
def test_every_reader_replays_the_same_state(
    fill_specs: list[tuple[Side, str, int, int]],
    transfer_specs: list[tuple[int, int, str, TransferDirection]],
) -> None:
    fills = [fill(i, side, p, size, T0 + ts) for i, (side, p, size, ts) in enumerate(fill_specs)]
    transfers = [
        BookedTransfer(f"s{i}", d, asset, D(amount), D("0.09"), T0 + ts)
        for i, (amount, ts, asset, d) in enumerate(transfer_specs)
    ]
    state = replay(OPENING, fills, transfers, "USDT")
    # the bot's own fold, written out: every event through the core functions in replay order
    want = PnlState.opening(*OPENING)
    for event in accounting_events(fills, transfers, "USDT"):
        if isinstance(event, BookedTransfer):
            signed = event.amount if event.direction == "out" else -event.amount
            want = transfer(want, signed, event.mark)
        else:
            want = apply_fill(want, event, "USDT")
    assert state == want
    track = pnl_track(fills, OPENING, "USDT", None, transfers)
    assert track.total == state
    assert daily_pnl(fills, OPENING, [], "USDT", transfers=transfers).state == state
    # the base position at any time is the opening plus the fills minus the transfers until
    # then (fills stored in time order: with venue time jitter state_at is right up to it)
    fills.sort(key=lambda f: f.ts)
    track = pnl_track(fills, OPENING, "USDT", None, transfers)
    for t in range(21):
        base = OPENING[0]
        base += sum(
            (f.size if f.side is Side.BUY else -f.size for f in fills if f.ts <= T0 + t), D(0)
        )
        for b in transfers:
            if b.asset == "KAS" and b.ts <= T0 + t:
                base -= b.amount if b.direction == "out" else -b.amount
        assert track.state_at(T0 + t).position == base
