"""The paper venue's ccxt public feed: a loopback MEXC REST API, websocket fallback, helpers."""

from __future__ import annotations

import asyncio
import importlib.util
from collections.abc import AsyncIterator
from contextlib import aclosing, asynccontextmanager
from decimal import Decimal
from typing import Any, ClassVar

import anyio
import ccxt.async_support as ccxt
import pytest
from aiohttp import web

from kasmm.core.types import Book, MarketRules, Side
from kasmm.errors import FatalVenueError
from kasmm.venues.paper_feed import (
    CcxtPublicFeed,
    TradeFilter,
    build_exchange,
    rules_from_market,
)
from kasmm.venues.public_data import FeedItem, PublicTrade
from tests.paper_fakes import make_book

pytestmark = pytest.mark.anyio
D = Decimal
NOW_MS = 1_700_000_000_000


# --- a loopback MEXC spot REST API ------------------------------------------------------------


class MexcPublicApi:
    """MEXC's public spot endpoints as ``fetch_spot_markets``, ``fetch_order_book`` and
    ``fetch_trades`` (aggTrades, ccxt's default) call them; records every request path."""

    def __init__(self) -> None:
        self.paths: list[str] = []
        self.queries: dict[str, dict[str, str]] = {}
        self.fail_depth = 0
        self.trades: list[dict[str, Any]] = [
            {"a": 1, "p": "0.080000", "q": "120.5", "T": NOW_MS - 2000, "m": True, "M": True},
            {"a": 2, "p": "0.080100", "q": "80", "T": NOW_MS - 1000, "m": False, "M": True},
        ]
        self.bids = [["0.080000", "500"], ["0.079990", "800"]]
        self.asks = [["0.080100", "400"], ["0.080110", "700"]]

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/api/v3/exchangeInfo", self.exchange_info)
        app.router.add_get("/api/v3/depth", self.depth)
        app.router.add_get("/api/v3/aggTrades", self.agg_trades)
        app.router.add_route("*", "/{tail:.*}", self.not_found)
        return app

    def _record(self, request: web.Request) -> None:
        self.paths.append(request.path)
        self.queries[request.path] = dict(request.query)

    async def exchange_info(self, request: web.Request) -> web.Response:
        self._record(request)
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
        return web.json_response(
            {"timezone": "CST", "serverTime": NOW_MS, "rateLimits": [], "symbols": [symbol]}
        )

    async def depth(self, request: web.Request) -> web.Response:
        self._record(request)
        if self.fail_depth:
            self.fail_depth -= 1
            return web.Response(status=503, text="busy")
        return web.json_response(
            {"lastUpdateId": 7, "bids": self.bids, "asks": self.asks, "timestamp": NOW_MS}
        )

    async def agg_trades(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response(self.trades)

    async def not_found(self, request: web.Request) -> web.Response:
        self._record(request)
        return web.json_response({"code": 404, "msg": "not served"}, status=404)


@asynccontextmanager
async def serve(api: MexcPublicApi) -> AsyncIterator[str]:
    """Run ``api`` on 127.0.0.1 (a free port); yield its base URL."""
    runner = web.AppRunner(api.app())
    await runner.setup()
    try:
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        host, port = runner.addresses[0][:2]
        yield f"http://{host}:{port}"
    finally:
        await runner.cleanup()


async def next_item(items: AsyncIterator[FeedItem]) -> FeedItem:
    """The feed's next item, failing instead of hanging."""
    with anyio.fail_after(3):
        return await anext(items)


def mexc_feed(url: str) -> CcxtPublicFeed:
    return CcxtPublicFeed(
        "mexc",
        "KAS/USDT",
        rest_url=url,
        use_websocket=False,
        poll_interval_s=0.02,
        enable_rate_limit=False,
    )


async def test_mexc_rest_feed_on_loopback(anyio_backend: str) -> None:
    api = MexcPublicApi()
    async with serve(api) as url:
        feed = mexc_feed(url)
        try:
            assert not feed.uses_websocket
            rules = await feed.load_market()
            assert rules == MarketRules(
                symbol="KAS/USDT",
                base="KAS",
                quote="USDT",
                tick=D("0.000001"),
                lot=D("0.01"),
                min_notional=D(1),
                min_size=D("0.1"),
                maker_fee=D(0),
                taker_fee=D("0.0005"),
            )
            async with aclosing(feed.watch()) as items:
                # The first poll only primes the trade filter: older trades are never reported.
                first = await next_item(items)
                assert isinstance(first, Book)
                assert (first.best_bid, first.best_ask) == (D("0.080000"), D("0.080100"))
                assert first.bids[1].size == D(800) and first.ts == NOW_MS / 1000

                api.trades.append(
                    {"a": 3, "p": "0.079990", "q": "55", "T": NOW_MS + 500, "m": True, "M": True}
                )
                api.asks = [["0.080050", "10"]]
                items_seen = [await next_item(items) for _ in range(2)]
                while not isinstance(items_seen[-1], Book) or items_seen[-1].best_ask != D(
                    "0.080050"
                ):
                    items_seen.append(await next_item(items))
        finally:
            await feed.close()

    trades = [i for i in items_seen if isinstance(i, PublicTrade)]
    assert trades == [PublicTrade(D("0.079990"), D(55), Side.SELL, (NOW_MS + 500) / 1000, "3")]
    # Spot only: no contract (swap) market list, nothing signed, nothing else.
    assert set(api.paths) == {"/api/v3/exchangeInfo", "/api/v3/depth", "/api/v3/aggTrades"}
    assert api.paths.count("/api/v3/exchangeInfo") == 1
    assert api.queries["/api/v3/depth"] == {"symbol": "KASUSDT", "limit": "100"}
    assert api.queries["/api/v3/aggTrades"] == {"symbol": "KASUSDT", "limit": "100"}


async def test_rest_errors_are_retried_and_unknown_symbols_are_fatal(anyio_backend: str) -> None:
    api = MexcPublicApi()
    api.fail_depth = 2
    async with serve(api) as url:
        feed = mexc_feed(url)
        try:
            await feed.load_market()
            async with aclosing(feed.watch()) as items:
                assert isinstance(await next_item(items), Book)  # after two failed polls
            assert api.paths.count("/api/v3/depth") == 3
        finally:
            await feed.close()
        other = CcxtPublicFeed("mexc", "BTC/USDT", rest_url=url, use_websocket=False)
        try:
            with pytest.raises(FatalVenueError, match="no market BTC/USDT"):
                await other.load_market()
        finally:
            await other.close()


# --- websockets and their fallback (a scripted exchange, no network) -------------------------


class ScriptedExchange:
    """The slice of a ccxt.pro exchange the feed uses; websockets fail ``ws_failures`` times."""

    id = "scripted"
    has: ClassVar[dict[str, bool]] = {"watchOrderBook": True, "watchTrades": True}

    def __init__(self, ws_failures: int, error: Exception) -> None:
        self.ws_failures = ws_failures
        self.error = error
        self.ws_calls = 0
        self.ws_resets = 0
        self.closed = False
        self.trade_seq = 0

    async def watch_order_book(self, symbol: str) -> dict[str, Any]:
        self.ws_calls += 1
        if self.ws_failures:
            self.ws_failures -= 1
            raise self.error
        await asyncio.sleep(0.005)
        return {"bids": [[0.08, 100.0]], "asks": [[0.0801, 50.0]], "timestamp": NOW_MS}

    async def watch_trades(self, symbol: str) -> list[dict[str, Any]]:
        await asyncio.sleep(0.005)
        self.trade_seq += 1
        return [self._trade(self.trade_seq)]

    async def fetch_trades(self, symbol: str, limit: int | None = None) -> list[dict[str, Any]]:
        self.trade_seq += 1
        return [self._trade(self.trade_seq)]

    async def fetch_order_book(self, symbol: str, limit: int | None = None) -> dict[str, Any]:
        return {"bids": [[0.07, 1.0]], "asks": [[0.09, 1.0]], "timestamp": NOW_MS}

    def _trade(self, n: int) -> dict[str, Any]:
        return {
            "id": str(n),
            "timestamp": NOW_MS + n,
            "side": "buy",
            "price": 0.0801,
            "amount": 2.0,
        }

    async def close_ws_clients(self) -> None:
        self.ws_resets += 1

    async def close(self) -> None:
        self.closed = True

    def open(self) -> None:
        self.closed = False


def scripted_feed(exchange: ScriptedExchange) -> CcxtPublicFeed:
    return CcxtPublicFeed(
        "gate",
        "KAS/USDT",
        use_websocket=True,
        poll_interval_s=0.01,
        ws_backoff_s=(0.05, 0.05),
        exchange=exchange,
    )


async def test_websocket_failure_falls_back_to_rest_then_reconnects(anyio_backend: str) -> None:
    exchange = ScriptedExchange(ws_failures=1, error=ccxt.NetworkError("connection reset"))
    feed = scripted_feed(exchange)
    assert feed.uses_websocket
    seen: list[FeedItem] = []
    async with aclosing(feed.watch()) as items:
        while not seen or not _is_ws_book(seen[-1]):
            seen.append(await next_item(items))
        seen.append(await next_item(items))
        seen.append(await next_item(items))
    await feed.close()
    books = [i for i in seen if isinstance(i, Book)]
    assert books[0].best_bid == D("0.07")  # REST while the websocket was down
    assert books[-1].best_bid == D("0.08")  # then the websocket again
    assert exchange.ws_resets == 1 and exchange.closed
    trades = [i for i in seen if isinstance(i, PublicTrade)]
    ids = [t.trade_id for t in trades]
    assert len(ids) == len(set(ids)) and ids == sorted(ids, key=int)
    assert all(t.taker_side is Side.BUY and t.price == D("0.0801") for t in trades)


def _is_ws_book(item: FeedItem) -> bool:
    return isinstance(item, Book) and item.best_bid == D("0.08")


async def test_an_unsupported_websocket_switches_to_rest_for_good(anyio_backend: str) -> None:
    exchange = ScriptedExchange(ws_failures=1, error=ccxt.NotSupported("needs protobuf"))
    feed = scripted_feed(exchange)
    async with aclosing(feed.watch()) as items:
        seen = [await next_item(items) for _ in range(8)]
    await feed.close()
    books = [i for i in seen if isinstance(i, Book)]
    assert len(books) >= 4 and all(b.best_bid == D("0.07") for b in books)  # REST only
    assert exchange.ws_calls == 1 and not feed.uses_websocket


def test_mexc_streams_only_with_protobuf_installed() -> None:
    try:
        protobuf = importlib.util.find_spec("google.protobuf") is not None
    except ImportError:
        protobuf = False
    assert CcxtPublicFeed("mexc", "KAS/USDT").uses_websocket is protobuf
    assert CcxtPublicFeed("gate", "KAS/USDT").uses_websocket
    assert not CcxtPublicFeed("gate", "KAS/USDT", use_websocket=False).uses_websocket


# --- helpers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange_id", "section", "expected"),
    [
        ("mexc", ("spot", "public"), "http://127.0.0.1:9"),
        ("gate", ("public", "spot"), "http://127.0.0.1:9/api/v4"),
        ("kucoin", ("public",), "http://127.0.0.1:9"),
        ("bingx", ("spot",), "http://127.0.0.1:9/openApi"),
    ],
)
def test_rest_url_is_the_live_venues_override_and_keeps_websockets(
    exchange_id: str, section: tuple[str, ...], expected: str
) -> None:
    default = build_exchange(exchange_id, websocket=True)
    moved = build_exchange(exchange_id, websocket=True, rest_url="http://127.0.0.1:9/")
    node: Any = moved.urls["api"]
    for key in section:
        node = node[key]
    assert node == expected
    assert moved.urls["api"]["ws"] == default.urls["api"]["ws"]
    assert moved.has["watchOrderBook"] and not moved.check_required_credentials(False)


def test_account_mode_options_avoid_private_calls() -> None:
    kucoin = build_exchange("kucoin", websocket=False)
    assert (kucoin.options["hf"], kucoin.options["uta"]) == (True, False)
    assert kucoin.options["fetchMarkets"]["types"] == ["spot"]
    assert build_exchange("gate", websocket=False).options["unifiedAccount"] is False
    with pytest.raises(FatalVenueError):
        build_exchange("nosuchexchange", websocket=False)


def test_rules_from_market() -> None:
    market = {
        "symbol": "KAS/USDT",
        "spot": True,
        "base": "KAS",
        "quote": "USDT",
        "precision": {"price": 1e-06, "amount": 0.01},
        "limits": {"amount": {"min": None}, "cost": {"min": 1.0}},
        "maker": None,
        "taker": 0.002,
    }
    rules = rules_from_market("KAS/USDT", market, 4)  # ccxt's TICK_SIZE precision mode
    assert (rules.tick, rules.lot, rules.min_size, rules.min_notional) == (
        D("0.000001"),
        D("0.01"),
        D("0.01"),
        D(1),
    )
    assert (rules.maker_fee, rules.taker_fee) == (D("0.001"), D("0.002"))  # unknown: 10 bps
    with pytest.raises(FatalVenueError):
        rules_from_market("KAS/USDT", {**market, "spot": False}, 4)
    with pytest.raises(FatalVenueError):
        rules_from_market("KAS/USDT", {**market, "precision": {"price": None, "amount": 1}}, 4)


def test_trade_filter_primes_dedupes_and_classifies() -> None:
    book = make_book([("0.0800", "1")], [("0.0802", "1")])

    def raw(tid: str, ts: int, price: float, side: str | None = "sell") -> dict[str, Any]:
        return {"id": tid, "timestamp": ts, "side": side, "price": price, "amount": 1.5}

    f = TradeFilter(memory=2)
    primed_before = f.primed
    assert f.accept([raw("1", 100, 0.08)], book, report=False) == []
    assert (primed_before, f.primed) == (False, True)
    new = f.accept([raw("1", 100, 0.08), raw("2", 100, 0.08), raw("0", 99, 0.08)], book)
    assert [t.trade_id for t in new] == ["2"]  # same ms, new id; older ones never
    sides = f.accept(
        [raw("3", 101, 0.0799, None), raw("4", 102, 0.0803, None), raw("5", 103, 0.0801, None)],
        book,
    )
    assert [(t.trade_id, t.taker_side) for t in sides] == [("3", Side.SELL), ("4", Side.BUY)]
    assert sides[0] == PublicTrade(D("0.0799"), D("1.5"), Side.SELL, 0.101, "3")
