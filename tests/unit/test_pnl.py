"""Average-cost PnL: hand-computed sequences, fees, opening inventory, value conservation."""

from __future__ import annotations

import dataclasses
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.pnl import PnlState, apply_fill, fee_in_quote
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId

D = Decimal
QUOTE = "USDT"
BASE = "KAS"
B, S = Side.BUY, Side.SELL

# A fill spec: (side, price, size) or (side, price, size, fee, fee_asset).
Spec = tuple[Side, str, str] | tuple[Side, str, str, str, str]


def fill(spec: Spec, n: int = 0) -> Fill:
    side, price, size = spec[0], D(spec[1]), D(spec[2])
    fee, fee_asset = (D(spec[3]), spec[4]) if len(spec) == 5 else (D(0), QUOTE)
    return Fill(
        trade_id=TradeId(f"t{n}"),
        client_id=ClientOrderId(f"kab12000{n}"),
        side=side,
        price=price,
        size=size,
        fee=fee,
        fee_asset=fee_asset,
        ts=float(n),
    )


def run(specs: list[Spec], start: PnlState | None = None) -> PnlState:
    state = start if start is not None else PnlState()
    for n, spec in enumerate(specs):
        state = apply_fill(state, fill(spec, n), QUOTE)
    return state


# --- hand-computed sequences -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("specs", "position", "avg_cost", "realized"),
    [
        pytest.param([], "0", "0", "0", id="nothing"),
        pytest.param([(B, "1", "10")], "10", "1", "0", id="open-long"),
        pytest.param([(B, "1", "10"), (S, "2", "10")], "0", "0", "10", id="round-trip-profit"),
        pytest.param([(B, "2", "10"), (S, "1.5", "10")], "0", "0", "-5", id="round-trip-loss"),
        pytest.param([(B, "1", "10"), (S, "2", "4")], "6", "1", "4", id="partial-close"),
        pytest.param(
            [(B, "1", "10"), (S, "2", "4"), (S, "0.5", "6")], "0", "0", "1", id="two-closes"
        ),
        pytest.param([(B, "1", "10"), (B, "2", "10")], "20", "1.5", "0", id="average-two-buys"),
        pytest.param([(B, "1", "10"), (B, "4", "30")], "40", "3.25", "0", id="weighted-average"),
        pytest.param(
            [(B, "1", "10"), (B, "2", "10"), (S, "3", "5")], "15", "1.5", "7.5", id="avg-then-sell"
        ),
        pytest.param([(S, "2", "10")], "-10", "2", "0", id="open-short"),
        pytest.param([(S, "3", "2"), (S, "5", "2")], "-4", "4", "0", id="average-two-sells"),
        pytest.param([(S, "2", "10"), (B, "1", "4")], "-6", "2", "4", id="cover-part-profit"),
        pytest.param(
            [(S, "2", "10"), (B, "1", "4"), (B, "3", "6")], "0", "0", "-2", id="cover-rest-loss"
        ),
        pytest.param([(B, "1", "10"), (S, "2", "15")], "-5", "2", "10", id="long-to-short"),
        pytest.param(
            [(B, "1", "10"), (S, "2", "15"), (B, "1", "8")], "3", "1", "15", id="and-back-long"
        ),
        pytest.param([(S, "5", "4"), (B, "3", "10")], "6", "3", "8", id="short-to-long"),
        pytest.param(
            [(B, "1", "10"), (S, "1", "10"), (B, "7", "1")], "1", "7", "0", id="flat-reopens"
        ),
        pytest.param(
            [(B, "0.0125", "1000"), (B, "0.0135", "1000"), (S, "0.014", "500")],
            "1500",
            "0.013",
            "0.5",
            id="kas-sized",
        ),
    ],
)
def test_sequences(specs: list[Spec], position: str, avg_cost: str, realized: str) -> None:
    state = run(specs)
    assert state.position == D(position)
    assert state.avg_cost == D(avg_cost)
    assert state.realized == D(realized)
    assert state.fees == 0


@pytest.mark.parametrize(
    ("specs", "mark", "unrealized"),
    [
        ([(B, "1", "10")], "1.5", "5"),
        ([(B, "1", "10")], "0.5", "-5"),
        ([(S, "2", "10")], "1.5", "5"),  # short gains when the price drops
        ([(S, "2", "10")], "3", "-10"),
        ([(B, "1", "10"), (B, "2", "10")], "2", "10"),
        ([(B, "1", "10"), (S, "2", "10")], "100", "0"),  # flat: nothing unrealized
    ],
)
def test_unrealized(specs: list[Spec], mark: str, unrealized: str) -> None:
    assert run(specs).unrealized(D(mark)) == D(unrealized)


# --- fees ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "fee", "fee_asset", "expected"),
    [
        ("2", "0.01", QUOTE, "0.01"),  # quote fee as is
        ("2", "0.01", BASE, "0.02"),  # base fee valued at the fill price
        ("0.0125", "4", BASE, "0.05"),
        ("2", "0", BASE, "0"),
        ("2", "0", "", "0"),
    ],
)
def test_fee_in_quote(price: str, fee: str, fee_asset: str, expected: str) -> None:
    f = fill((B, price, "10", fee, fee_asset))
    assert fee_in_quote(f, QUOTE) == D(expected)


@pytest.mark.parametrize(
    ("specs", "fees", "net_at_2"),
    [
        ([(B, "1", "10", "0.01", QUOTE)], "0.01", "9.99"),
        ([(B, "1", "10", "0.01", BASE)], "0.01", "9.99"),  # 0.01 KAS at price 1
        ([(B, "1", "10", "0.01", QUOTE), (S, "2", "10", "0.02", QUOTE)], "0.03", "9.97"),
        ([(B, "1", "10", "0.01", BASE), (S, "2", "10", "0.01", BASE)], "0.03", "9.97"),
        ([(S, "3", "5", "0.5", BASE)], "1.5", "3.5"),
    ],
)
def test_fees_accumulate_in_quote_and_reduce_net(
    specs: list[Spec], fees: str, net_at_2: str
) -> None:
    state = run(specs)
    assert state.fees == D(fees)
    assert state.net(D(2)) == D(net_at_2)
    # Fees never touch the position or the average cost (they are booked separately).
    no_fee = run([spec[:3] for spec in specs])
    assert (state.position, state.avg_cost, state.realized) == (
        no_fee.position,
        no_fee.avg_cost,
        no_fee.realized,
    )


# --- opening inventory -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("position", "mark", "avg_cost"),
    [("100", "2", "2"), ("0", "2", "0"), ("-50", "2", "2"), ("0.001", "0.0125", "0.0125")],
)
def test_opening(position: str, mark: str, avg_cost: str) -> None:
    state = PnlState.opening(D(position), D(mark))
    assert state.position == D(position)
    assert state.avg_cost == D(avg_cost)
    assert state.realized == state.fees == 0
    assert state.net(D(mark)) == 0  # the starting inventory's history is not ours


@pytest.mark.parametrize(
    ("position", "mark0", "specs", "mark", "unrealized", "net"),
    [
        ("100", "2", [], "3", "100", "100"),
        ("100", "2", [], "1", "-100", "-100"),
        ("-50", "2", [], "1", "50", "50"),
        ("100", "2", [(S, "2.5", "50")], "2.5", "25", "50"),
        ("100", "2", [(S, "2.5", "50", "0.5", QUOTE)], "3", "50", "74.5"),
        ("100", "2", [(B, "3", "100")], "3", "100", "100"),  # avg 2.5 on 200
        ("100", "2", [(S, "1", "150")], "1", "0", "-100"),  # realized -100, short 50 @ 1
    ],
)
def test_opening_then_fills(
    position: str,
    mark0: str,
    specs: list[Spec],
    mark: str,
    unrealized: str,
    net: str,
) -> None:
    state = run(specs, PnlState.opening(D(position), D(mark0)))
    assert state.unrealized(D(mark)) == D(unrealized)
    assert state.net(D(mark)) == D(net)
    assert state.net(D(mark)) == state.realized + state.unrealized(D(mark)) - state.fees


# --- counts and volumes ----------------------------------------------------------------------


def test_counts_volumes_and_notionals_per_side() -> None:
    state = run(
        [
            (B, "1", "10"),
            (B, "2", "5"),
            (S, "3", "4"),
            (B, "1.5", "2"),
            (S, "2.5", "20"),
        ]
    )
    assert (state.buy_count, state.sell_count) == (3, 2)
    assert (state.buy_volume, state.sell_volume) == (D(17), D(24))
    assert (state.buy_notional, state.sell_notional) == (D(23), D(62))
    assert state.position == state.buy_volume - state.sell_volume == D(-7)


@pytest.mark.parametrize(
    ("spec", "counts"),
    [((B, "1", "3"), (1, 0)), ((S, "1", "3"), (0, 1))],
)
def test_one_fill_counts_on_its_side_only(spec: Spec, counts: tuple[int, int]) -> None:
    state = run([spec])
    assert (state.buy_count, state.sell_count) == counts
    side_volume = state.buy_volume if spec[0] is B else state.sell_volume
    other_volume = state.sell_volume if spec[0] is B else state.buy_volume
    assert (side_volume, other_volume) == (D(3), D(0))


def test_apply_fill_is_pure() -> None:
    before = run([(B, "1", "10")])
    snapshot = dataclasses.astuple(before)
    after = apply_fill(before, fill((S, "2", "5")), QUOTE)
    assert dataclasses.astuple(before) == snapshot
    assert after is not before
    with pytest.raises(dataclasses.FrozenInstanceError):
        before.position = D(0)  # type: ignore[misc]


@pytest.mark.parametrize("side", [B, S])
def test_zero_size_fill_when_flat_is_harmless(side: Side) -> None:
    # Regression: 0 / 0 in the average-cost update raised decimal.InvalidOperation.
    state = run([(side, "1", "0")])
    assert (state.position, state.avg_cost, state.realized) == (D(0), D(0), D(0))


# --- value conservation ----------------------------------------------------------------------

# Prices have 4 decimals, sizes 1, fees 6 (a base fee times a price: 10): every product is exact.
# Only the average-cost update divides, and can be non-terminating (x / 3), so Decimal rounds
# it to 28 significant digits. With positions below 1e6 and prices below 1e3 that rounding moves
# ``position * avg_cost`` by far less than 1e-12, hence the tolerance instead of equality.
TOLERANCE = D("1e-12")

price_st = st.integers(1, 10_000_000).map(lambda n: D(n) / 10_000)
size_st = st.integers(1, 10_000).map(lambda n: D(n) / 10)
fee_st = st.integers(0, 10_000).map(lambda n: D(n) / 1_000_000)
fill_st = st.tuples(
    st.sampled_from([B, S]), price_st, size_st, fee_st, st.sampled_from([QUOTE, BASE])
)
FillTuple = tuple[Side, Decimal, Decimal, Decimal, str]


def make_fills(raw: list[FillTuple]) -> list[Fill]:
    return [
        dataclasses.replace(fill((side, "1", "1"), n), price=p, size=q, fee=f, fee_asset=a)
        for n, (side, p, q, f, a) in enumerate(raw)
    ]


@settings(max_examples=200, deadline=None)
@given(raw=st.lists(fill_st, max_size=40), mark=price_st)
def test_net_equals_cash_change_plus_marked_position_minus_fees(
    raw: list[FillTuple], mark: Decimal
) -> None:
    fills = make_fills(raw)
    state = PnlState()
    for f in fills:
        state = apply_fill(state, f, QUOTE)
    cash = sum((f.notional for f in fills if f.side is S), D(0)) - sum(
        (f.notional for f in fills if f.side is B), D(0)
    )
    fees = sum((fee_in_quote(f, QUOTE) for f in fills), D(0))
    position = sum((f.size if f.side is B else -f.size for f in fills), D(0))
    assert state.position == position  # exact: only additions
    assert state.fees == fees
    assert state.buy_count + state.sell_count == len(fills)
    assert state.buy_volume - state.sell_volume == position
    assert state.sell_notional - state.buy_notional == cash
    assert abs(state.net(mark) - (cash + position * mark - fees)) <= TOLERANCE
    if position == 0:
        assert state.avg_cost == 0
        assert state.net(mark) == state.realized - state.fees  # mark no longer matters


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(-10_000, 10_000).map(lambda n: D(n) / 10),
    mark0=price_st,
    raw=st.lists(fill_st, max_size=30),
    mark=price_st,
)
def test_net_from_an_opening_position_excludes_its_history(
    start: Decimal, mark0: Decimal, raw: list[FillTuple], mark: Decimal
) -> None:
    fills = make_fills(raw)
    state = PnlState.opening(start, mark0)
    for f in fills:
        state = apply_fill(state, f, QUOTE)
    cash = sum((f.notional * (1 if f.side is S else -1) for f in fills), D(0))
    fees = sum((fee_in_quote(f, QUOTE) for f in fills), D(0))
    # The opening inventory counts as bought at mark0: its value change since then is ours.
    expected = cash + state.position * mark - start * mark0 - fees
    assert abs(state.net(mark) - expected) <= TOLERANCE


# --- attribution: trading vs the market's move ------------------------------------------------


def test_holding_the_opening_inventory_without_trading_is_all_hold_and_no_edge() -> None:
    # The demo's "+18.9 USDT with 0 fills": the whole PnL is the starting inventory's move.
    parts = PnlState.opening(D(50000), D("0.08")).parts(D("0.0804"))
    assert parts.net == D("20.0000") == parts.hold == parts.revaluation
    assert parts.spread_capture == 0 and parts.fees == 0 and parts.vs_hold == 0


def test_a_round_trip_from_flat_is_spread_capture_less_fees() -> None:
    state = run([(B, "1.0", "10", "0.01", QUOTE), (S, "1.1", "10", "0.011", QUOTE)])
    parts = state.parts(D("5"))  # the mark is irrelevant once flat
    assert parts.spread_capture == D("1.0") and parts.revaluation == 0
    assert parts.fees == D("0.021") and parts.net == D("0.979")
    assert parts.hold == 0 and parts.vs_hold == parts.net


def test_selling_inventory_before_a_rally_shows_as_a_loss_against_holding() -> None:
    state = run([(S, "1.5", "50")], PnlState.opening(D(100), D(1)))
    parts = state.parts(D(2))
    assert parts.spread_capture == D(25)  # 50 sold 0.5 above the opening mark
    assert parts.revaluation == D(50)  # 50 left, marked from 1 to 2
    assert parts.net == D(75) and parts.hold == D(100) and parts.vs_hold == D(-25)


@given(
    st.lists(
        st.tuples(
            st.sampled_from([B, S]),
            st.decimals("0.01", "10", places=2),
            st.decimals("0.1", "100", places=1),
        ),
        max_size=20,
    ),
    st.decimals("0.01", "10", places=2),
    st.decimals("0", "100", places=1),
)
def test_the_parts_always_add_up_to_the_net(
    specs: list[tuple[Side, Decimal, Decimal]], mark: Decimal, opening: Decimal
) -> None:
    state = run([(s, str(p), str(q)) for s, p, q in specs], PnlState.opening(opening, D(1)))
    parts = state.parts(mark)
    assert parts.net == state.net(mark)
    assert parts.net == parts.spread_capture + parts.revaluation - parts.fees
    assert parts.vs_hold == parts.net - parts.hold


@pytest.mark.parametrize("side", [B, S])
def test_apply_fill_carries_every_field_it_does_not_change(side: Side) -> None:
    # apply_fill builds the next state with the constructor (not dataclasses.replace): every
    # field must be carried over or updated, none reset to its default.
    values: dict[str, Any] = {
        f.name: (D(k + 2) if f.type == "Decimal" else k + 2)
        for k, f in enumerate(dataclasses.fields(PnlState))
    }
    start = PnlState(**values)
    after = apply_fill(start, fill((side, "0.05", "10", "0.01", QUOTE)), QUOTE)
    touched = {"position", "avg_cost", "realized", "fees"} | (
        {"buy_count", "buy_volume", "buy_notional"}
        if side is B
        else {"sell_count", "sell_volume", "sell_notional"}
    )
    for f in dataclasses.fields(PnlState):
        if f.name not in touched:
            assert getattr(after, f.name) == getattr(start, f.name), f.name
    count = "buy_count" if side is B else "sell_count"
    volume = "buy_volume" if side is B else "sell_volume"
    assert getattr(after, count) == getattr(start, count) + 1
    assert getattr(after, volume) == getattr(start, volume) + 10
    assert after.fees == start.fees + D("0.01")
