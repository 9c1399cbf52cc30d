"""``kasmm record``: a live market's public data, recorded in the replay format, replays.

The market is a loopback MEXC spot public API (the three endpoints the paper feed polls), served
by aiohttp; ccxt is unmodified.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import anyio
import pytest
from aiohttp import web

from kasmm.backtest import run_backtest
from kasmm.backtest.record import feed_for_profile, record
from kasmm.backtest.replay import iter_items, scan
from kasmm.commands.record import record_command
from kasmm.config.schema import PaperVenueConfig, Profile
from kasmm.core.types import Book, Side
from kasmm.errors import KasmmError
from kasmm.venues.paper_feed import CcxtPublicFeed
from kasmm.venues.public_data import PublicTrade

D = Decimal


class PublicMexc:
    """MEXC spot public REST: exchangeInfo, depth and aggTrades, stamped with the wall clock."""

    def __init__(self) -> None:
        self.trade_id = 1
        self.trades: list[dict[str, Any]] = [self._trade("0.080000", "5", maker_buyer=True)]
        self.bids = [["0.080000", "500"], ["0.079990", "800"]]
        self.asks = [["0.080100", "400"], ["0.080110", "700"]]

    def _trade(self, price: str, qty: str, *, maker_buyer: bool) -> dict[str, Any]:
        self.trade_id += 1
        return {
            "a": self.trade_id,
            "p": price,
            "q": qty,
            "T": int(time.time() * 1000),
            "m": maker_buyer,  # the buyer was the maker: the taker sold
            "M": True,
        }

    def print_trade(self, price: str, qty: str, *, taker: Side) -> None:
        self.trades.append(self._trade(price, qty, maker_buyer=taker is Side.SELL))

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        app.router.add_get("/api/v3/depth", self.depth)
        app.router.add_get("/api/v3/aggTrades", self.agg_trades)
        return app

    async def exchange_info(self, request: web.Request) -> web.Response:
        symbol = {
            "symbol": "KASUSDT",
            "status": "1",
            "baseAsset": "KAS",
            "baseAssetPrecision": 2,
            "quoteAsset": "USDT",
            "quotePrecision": 6,
            "quoteAssetPrecision": 6,
            "orderTypes": ["LIMIT", "MARKET", "LIMIT_MAKER"],
            "isSpotTradingAllowed": True,
            "isMarginTradingAllowed": False,
            "permissions": ["SPOT"],
            "baseSizePrecision": "0.1",
            "quoteAmountPrecision": "1",
            "maxQuoteAmount": "2000000",
            "makerCommission": "0",
            "takerCommission": "0.0005",
        }
        now = int(time.time() * 1000)
        return web.json_response(
            {"timezone": "CST", "serverTime": now, "rateLimits": [], "symbols": [symbol]}
        )

    async def depth(self, request: web.Request) -> web.Response:
        now = int(time.time() * 1000)
        return web.json_response(
            {"lastUpdateId": now, "bids": self.bids, "asks": self.asks, "timestamp": now}
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        return web.json_response(self.trades[-100:])


@asynccontextmanager
async def serve(api: PublicMexc) -> AsyncIterator[str]:
    runner = web.AppRunner(api.app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


@contextmanager
def serve_in_thread(api: PublicMexc) -> Iterator[str]:
    """The API on its own event loop in a thread (for the synchronous command)."""
    loop = asyncio.new_event_loop()
    ready: list[str] = []
    stop = asyncio.Event()
    started = threading.Event()

    async def main() -> None:
        async with serve(api) as url:
            ready.append(url)
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield ready[0]
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)
        loop.close()


def paper_profile(url: str) -> Profile:
    return Profile.model_validate(
        {
            "name": "paper",
            "venue": {
                "type": "paper",
                "exchange": "mexc",
                "rest_url": url,
                "use_websocket": False,
                "poll_interval_s": 0.2,
                "fees": {"maker_bps": 0, "taker_bps": 5},
            },
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 10, "size": 100},
                "passive": {"spread_bps": 20, "size": 100},
            },
            "kill_switch": {"stale_book": None},
        }
    )


@pytest.mark.anyio
async def test_record_writes_books_and_new_trades_in_the_replay_format(tmp_path: Path) -> None:
    api = PublicMexc()
    out = tmp_path / "rec.csv"
    async with serve(api) as url:
        feed = CcxtPublicFeed(
            "mexc",
            "KAS/USDT",
            rest_url=url,
            use_websocket=False,
            poll_interval_s=0.05,
            enable_rate_limit=False,
        )

        async def market() -> None:
            await anyio.sleep(0.3)
            api.print_trade("0.080000", "120", taker=Side.SELL)
            api.bids = [["0.080010", "50"], ["0.080000", "380"]]
            await anyio.sleep(0.2)
            api.print_trade("0.080100", "30", taker=Side.BUY)

        with open(out, "w", encoding="utf-8", newline="") as handle:  # noqa: ASYNC230
            async with anyio.create_task_group() as tg:
                tg.start_soon(market)
                stats = await record(feed, handle, duration_s=1.0, depth=1, source="mexc")

    assert stats.symbol == "KAS/USDT" and stats.source == "mexc"
    assert stats.books >= 5 and stats.trades == 2  # the trade printed before the start is not
    info = scan(out)
    assert info.header.symbol == "KAS/USDT"
    assert (info.header.tick, info.header.lot, info.header.min_notional) == (
        D("0.000001"),
        D("0.01"),
        D(1),
    )
    assert info.header.extra == {"source": "mexc"}
    assert info.books == stats.books and info.trades == 2
    with open(out, encoding="utf-8", newline="") as handle:  # noqa: ASYNC230
        _, items = iter_items(handle)
        recorded = [item for _, item in items]
    trades = [i for i in recorded if isinstance(i, PublicTrade)]
    assert [(t.price, t.size, t.taker_side) for t in trades] == [
        (D("0.080000"), D(120), Side.SELL),
        (D("0.080100"), D(30), Side.BUY),
    ]
    books = [i for i in recorded if isinstance(i, Book)]
    assert all(len(b.bids) == 1 and len(b.asks) == 1 for b in books)  # depth 1
    assert books[0].best_bid == D("0.080000") and books[-1].best_bid == D("0.080010")

    # And it replays: the paper profile's backtest runs on the recorded market.
    result = await anyio.to_thread.run_sync(
        lambda: run_backtest(paper_profile("http://127.0.0.1:9"), market="replay", data=out)
    )
    path = result.run.paths[0]
    assert path.market_events >= stats.books and path.open_orders_left == 0
    assert path.end_time_s == pytest.approx(info.span_s)


def test_record_command_from_a_paper_profile_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    api = PublicMexc()
    out = tmp_path / "cmd.csv"
    with serve_in_thread(api) as url:
        profile_file = tmp_path / "paper.yaml"
        profile_file.write_text(
            "name: paper\n"
            "venue:\n"
            "  type: paper\n"
            "  exchange: mexc\n"
            f"  rest_url: {url}\n"
            "  use_websocket: false\n"
            "  poll_interval_s: 0.2\n"
            "symbol: KAS/USDT\n"
            "modes:\n"
            "  aggressive: {spread_bps: 10, size: 100}\n"
            "  passive: {spread_bps: 20, size: 100}\n"
        )
        assert record_command(profile_file, out=out, duration=2.0) == 0
    assert "recorded" in capsys.readouterr().out
    info = scan(out)
    assert info.books >= 2 and info.header.extra["source"] == "mexc"


def test_record_needs_a_live_market() -> None:
    sim = Profile.model_validate(
        {
            "name": "sim",
            "venue": {"type": "sim"},
            "symbol": "KAS/USDT",
            "modes": {
                "aggressive": {"spread_bps": 10, "size": 100},
                "passive": {"spread_bps": 20, "size": 100},
            },
        }
    )
    with pytest.raises(KasmmError, match="paper or ccxt"):
        feed_for_profile(sim)
    feed, source = feed_for_profile(paper_profile("http://127.0.0.1:9"))
    assert isinstance(feed, CcxtPublicFeed) and source == "mexc"
    assert isinstance(paper_profile("http://x").venue, PaperVenueConfig)
