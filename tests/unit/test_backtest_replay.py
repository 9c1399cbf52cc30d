"""The replay market: the CSV format, fills against recorded trades, and a whole backtest."""

from __future__ import annotations

import io
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.backtest import BacktestClock, BacktestError, run_backtest
from kasmm.backtest.replay import (
    QueuePosition,
    ReplayFormatError,
    ReplayVenue,
    ReplayWriter,
    iter_items,
    read_header,
    scan,
    write_rows,
)
from kasmm.config.schema import SimVenueConfig
from kasmm.core.types import (
    Book,
    BookLevel,
    BookUpdated,
    ClientOrderId,
    MarketRules,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import PostOnlyWouldCross
from kasmm.venues.public_data import PublicTrade
from tests.support import demo_profile

pytestmark = pytest.mark.anyio
D = Decimal
ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "tests" / "data" / "replay_sample.csv"
HEADER = "# kasmm-replay 1 symbol=KAS/USDT tick=0.0001 lot=1 min_notional=0 source=test"


Row = tuple[object, ...]  # ts, kind, side, price, size, level (or trade id)


def book_rows(ts: float, bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> list[Row]:
    rows: list[Row] = [(ts, "book", "bid", p, s, i) for i, (p, s) in enumerate(bids)]
    return rows + [(ts, "book", "ask", p, s, i) for i, (p, s) in enumerate(asks)]


# --- the format ----------------------------------------------------------------------------


def test_header_snapshots_and_trades_are_read_in_file_order() -> None:
    text = write_rows(
        [
            *book_rows(1.0, [("0.0800", "500"), ("0.0799", "800")], [("0.0802", "400")]),
            (1.5, "trade", "sell", "0.0800", "20", ""),
            # Two snapshots at the same ts: level 0 again starts the second one.
            *book_rows(2.0, [("0.0801", "10")], [("0.0803", "5")]),
            *book_rows(2.0, [("0.0800", "7")], []),
        ],
        header=HEADER,
    )
    header, items = iter_items(io.StringIO(text))
    assert header.symbol == "KAS/USDT" and header.tick == D("0.0001") and header.lot == D(1)
    assert header.extra == {"source": "test"}
    got = [item for _, item in items]
    assert got == [
        Book(
            bids=(BookLevel(D("0.0800"), D(500)), BookLevel(D("0.0799"), D(800))),
            asks=(BookLevel(D("0.0802"), D(400)),),
            ts=1.0,
        ),
        PublicTrade(D("0.0800"), D(20), Side.SELL, 1.5, "r6"),
        Book(bids=(BookLevel(D("0.0801"), D(10)),), asks=(BookLevel(D("0.0803"), D(5)),), ts=2.0),
        Book(bids=(BookLevel(D("0.0800"), D(7)),), asks=(), ts=2.0),
    ]


def test_writer_round_trips() -> None:
    rules = MarketRules("KAS/USDT", "KAS", "USDT", D("0.000001"), D("0.01"), D(1))
    out = io.StringIO()
    writer = ReplayWriter(out, depth=1)
    writer.header(rules, source="mexc")
    book = Book(
        bids=(BookLevel(D("0.080000"), D("1.5")), BookLevel(D("0.079999"), D(2))),
        asks=(BookLevel(D("0.080001"), D(3)),),
        ts=1700000000.25,
    )
    trade = PublicTrade(D("0.080001"), D("0.01"), Side.BUY, 1700000000.5, "x")
    writer.book(book)
    writer.trade(trade)
    assert (writer.books, writer.trades, writer.rows) == (1, 1, 3)
    header, items = iter_items(io.StringIO(out.getvalue()))
    assert header.tick == D("0.000001") and header.min_notional == D(1)
    assert header.extra["source"] == "mexc"
    first, second = (item for _, item in items)
    assert first == Book(bids=book.bids[:1], asks=book.asks, ts=book.ts)  # depth 1
    assert isinstance(second, PublicTrade)
    assert (second.price, second.size, second.taker_side, second.ts) == (
        trade.price,
        trade.size,
        trade.taker_side,
        trade.ts,
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ([(1, "book", "bid", "0.08", "1", 1)], "line 3: bid level 1 out of order"),
        (
            [(1, "book", "ask", "0.08", "1", 0), (1, "book", "ask", "0.07", "1", 1)],
            "line 4: ask level 1 at 0.07 is not worse",
        ),
        ([(1, "quote", "bid", "0.08", "1", 0)], "line 3: kind must be book or trade"),
        ([(1, "trade", "bid", "0.08", "1", "")], "line 3: a trade's side is the taker side"),
        ([(1, "book", "bid", "-1", "1", 0)], "line 3: price must be positive"),
        ([("x", "book", "bid", "1", "1", 0)], "line 3: ts 'x' is not a number"),
        ([(1, "book", "bid", "1", "1", "")], "line 3: a book row needs an integer level"),
    ],
)
def test_format_errors_name_the_line(rows: list[Row], message: str) -> None:
    _, items = iter_items(io.StringIO(write_rows(rows, header=HEADER)))
    with pytest.raises(ReplayFormatError, match=message):
        list(items)


def test_missing_columns_and_versions_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ReplayFormatError, match="missing column"):
        iter_items(io.StringIO("ts,kind,side,price,size\n"))
    with pytest.raises(ReplayFormatError, match="version 2"):
        iter_items(io.StringIO("# kasmm-replay 2\n" + ",".join(("a",)) + "\n"))
    empty = tmp_path / "empty.csv"
    empty.write_text(write_rows([(1, "trade", "buy", "1", "1", "")]))
    with pytest.raises(ReplayFormatError, match="no book rows"):
        scan(empty)


def test_sample_file_is_valid() -> None:
    info = scan(SAMPLE)
    assert info.header.symbol == "KAS/USDT" and info.header.tick == D("0.000001")
    assert info.rows > 2000 and info.books == 300 and info.trades > 300
    assert info.span_s == pytest.approx(299)


# --- fills ---------------------------------------------------------------------------------


async def replay(
    tmp_path: Path, rows: list[Row], *, queue: QueuePosition = "back", bid: str = "0.0800"
) -> tuple[list[tuple[float, VenueEvent]], ReplayVenue]:
    """Replay ``rows``; place a 100 bid at ``bid`` on the first book; every (time, event)."""
    path = tmp_path / "r.csv"
    path.write_text(write_rows(rows, header=HEADER))
    clock = BacktestClock(0.0)
    config = SimVenueConfig(type="sim", balances={"KAS": D(0), "USDT": D(1000)})
    venue = ReplayVenue(config, "KAS/USDT", clock, path, queue_position=queue)
    await venue.connect()
    seen: list[tuple[float, VenueEvent]] = []
    async for event in venue.events():
        if not seen:
            await venue.place_order(
                OrderRequest(ClientOrderId("b1"), Side.BUY, D(bid), D(100), post_only=True)
            )
        seen.append((clock.now(), event))
    return seen, venue


def fills(seen: list[tuple[float, VenueEvent]]) -> list[tuple[float, Decimal, Decimal]]:
    return [(t, e.fill.size, e.fill.remaining) for t, e in seen if isinstance(e, OrderFilled)]


TAPE = [
    *book_rows(100, [("0.0800", "500"), ("0.0799", "800")], [("0.0802", "400")]),
    (101, "trade", "sell", "0.0801", "900", ""),  # above the bid: never reaches it
    (102, "trade", "sell", "0.0800", "300", ""),  # at the bid: 300 of the 500 ahead
    (103, "trade", "buy", "0.0802", "999", ""),  # a buy lifts asks, not bids
    (104, "trade", "sell", "0.0800", "250", ""),  # 200 more ahead, then 50 past the queue
    (105, "trade", "sell", "0.0799", "1000", ""),  # through the price: the rest fills
]


async def test_a_resting_bid_fills_exactly_when_trades_get_through_the_queue(
    tmp_path: Path,
) -> None:
    seen, venue = await replay(tmp_path, TAPE)
    assert fills(seen) == [(104.0, D(50), D(50)), (105.0, D(50), D(0))]
    fill_events = [e for _, e in seen if isinstance(e, OrderFilled)]
    assert all(e.fill.price == D("0.0800") and e.fill.is_maker for e in fill_events)
    assert venue.open_order_count == 0
    balances = await venue.fetch_balances()
    assert balances.total("KAS") == 100 and balances.total("USDT") == 1000 - 8


async def test_front_of_queue_fills_on_the_first_trade_at_the_price(tmp_path: Path) -> None:
    seen, _ = await replay(tmp_path, TAPE, queue="front")
    assert fills(seen) == [(102.0, D(100), D(0))]


async def test_a_book_moving_through_the_bid_fills_it_before_the_book_is_published(
    tmp_path: Path,
) -> None:
    rows = [
        *book_rows(100, [("0.0800", "500")], [("0.0802", "400")]),
        *book_rows(101, [("0.0799", "500")], [("0.0801", "400")]),  # still above the bid
        *book_rows(102, [("0.0797", "500")], [("0.0799", "400")]),  # the ask reaches it
    ]
    seen, _ = await replay(tmp_path, rows, bid="0.0799")
    kinds = [(t, type(e).__name__) for t, e in seen]
    assert kinds == [
        (100.0, "BookUpdated"),
        (101.0, "BookUpdated"),
        (102.0, "OrderFilled"),
        (102.0, "BookUpdated"),
    ]
    assert fills(seen) == [(102.0, D(100), D(0))]


async def test_published_book_includes_the_bots_orders_and_post_only_is_enforced(
    tmp_path: Path,
) -> None:
    rows = [
        *book_rows(100, [("0.0800", "500")], [("0.0802", "400")]),
        *book_rows(101, [("0.0800", "450")], [("0.0802", "400")]),
    ]
    seen, venue = await replay(tmp_path, rows)
    _, last = seen[-1]
    assert isinstance(last, BookUpdated)
    assert last.book.bids == (BookLevel(D("0.0800"), D(550)),)  # 450 recorded + our 100
    with pytest.raises(PostOnlyWouldCross):
        await venue.place_order(
            OrderRequest(ClientOrderId("s1"), Side.BUY, D("0.0802"), D(1), post_only=True)
        )


async def test_the_queue_shrinks_with_the_displayed_level(tmp_path: Path) -> None:
    rows = [
        *book_rows(100, [("0.0800", "500")], [("0.0802", "400")]),
        # Others cancelled: the recorded level (others only) shows 100, so 100 are ahead.
        *book_rows(101, [("0.0800", "100")], [("0.0802", "400")]),
        (102, "trade", "sell", "0.0800", "150", ""),
    ]
    seen, _ = await replay(tmp_path, rows)
    assert fills(seen) == [(102.0, D(50), D(50))]


# --- a backtest on the sample ----------------------------------------------------------------


def test_backtest_on_the_sample_replays_the_whole_file() -> None:
    first = run_backtest(demo_profile(), market="replay", data=SAMPLE, workers=1)
    second = run_backtest(demo_profile(), market="replay", data=SAMPLE, paths=5, workers=1)
    assert first.paths == second.paths == 1  # a replay has one path whatever is asked
    one, two = first.to_json(), second.to_json()
    del one["timing"], two["timing"]
    assert one == two
    path = first.run.paths[0]
    assert first.horizon_s is None and first.data == str(SAMPLE)
    assert path.end_time_s == pytest.approx(299)
    assert path.fills_buy + path.fills_sell > 0
    assert path.open_orders_left == 0 and path.decisions > 300
    short = run_backtest(demo_profile(), market="replay", data=SAMPLE, horizon_s=60, workers=1)
    assert short.run.paths[0].end_time_s <= 60


def test_replay_refuses_another_symbol(tmp_path: Path) -> None:
    path = tmp_path / "btc.csv"
    path.write_text(
        write_rows(
            book_rows(1, [("1", "1")], [("2", "1")]), header="# kasmm-replay 1 symbol=BTC/USDT"
        )
    )
    assert read_header(path).symbol == "BTC/USDT"
    with pytest.raises(BacktestError, match="BTC/USDT"):
        run_backtest(demo_profile(), market="replay", data=path, workers=1)


async def test_on_a_real_clock_the_replay_starts_now_at_the_recorded_pace(tmp_path: Path) -> None:
    from kasmm.clock import RealClock

    rows = [
        *book_rows(1_000.0, [("0.0800", "500")], [("0.0802", "400")]),
        (1_000.05, "trade", "sell", "0.0799", "500", ""),
        *book_rows(1_000.1, [("0.0801", "500")], [("0.0803", "400")]),
    ]
    path = tmp_path / "rt.csv"
    path.write_text(write_rows(rows, header=HEADER))
    clock = RealClock()
    config = SimVenueConfig(type="sim", balances={"KAS": D(0), "USDT": D(1000)})
    venue = ReplayVenue(config, "KAS/USDT", clock, path)
    start = clock.now()
    await venue.connect()
    seen: list[tuple[float, VenueEvent]] = []
    async for event in venue.events():
        if not seen:
            await venue.place_order(
                OrderRequest(ClientOrderId("b1"), Side.BUY, D("0.0800"), D(100), post_only=True)
            )
        seen.append((clock.now() - start, event))
    # The trade (through the bid) fills it about 50 ms after the start: times are shifted to now.
    (fill_at, fill), *_ = [(t, e) for t, e in seen if isinstance(e, OrderFilled)]
    assert 0.04 <= fill_at < 1.0 and fill.fill.ts >= start
    assert 0.09 <= seen[-1][0] < 1.5


async def test_an_ioc_takes_the_recorded_book_until_the_next_snapshot(tmp_path: Path) -> None:
    rows = [
        *book_rows(100, [("0.0800", "500")], [("0.0802", "400"), ("0.0803", "600")]),
        *book_rows(101, [("0.0800", "500")], [("0.0802", "400"), ("0.0803", "600")]),
    ]
    path = tmp_path / "r.csv"
    path.write_text(write_rows(rows, header=HEADER))
    clock = BacktestClock(0.0)
    config = SimVenueConfig(type="sim", balances={"KAS": D(0), "USDT": D(1000)})
    venue = ReplayVenue(config, "KAS/USDT", clock, path)
    await venue.connect()
    events = venue.events()
    assert isinstance(await anext(events), BookUpdated)  # the snapshot at 100
    outcome = await venue.place_ioc(
        OrderRequest.ioc(ClientOrderId("h1"), Side.BUY, D("0.0803"), D(500))
    )
    assert (outcome.status, outcome.filled) == ("filled", D(500))
    first, second, book = [await anext(events) for _ in range(3)]
    assert isinstance(first, OrderFilled) and isinstance(second, OrderFilled)
    assert [(f.fill.price, f.fill.size, f.fill.is_maker) for f in (first, second)] == [
        (D("0.0802"), D(400), False),
        (D("0.0803"), D(100), False),
    ]
    assert isinstance(book, BookUpdated) and clock.now() == 100.0
    assert book.book.asks == (BookLevel(D("0.0803"), D(500)),)  # taken until the next row
    again = await venue.place_ioc(
        OrderRequest.ioc(ClientOrderId("h2"), Side.BUY, D("0.0802"), D(10))
    )
    assert (again.status, again.filled) == ("expired", D(0))
    snapshot = await anext(events)
    assert isinstance(snapshot, BookUpdated) and clock.now() == 101.0
    assert snapshot.book.asks[0] == BookLevel(D("0.0802"), D(400))  # the market replaced it
    await events.aclose()
    await venue.close()
