"""``CcxtVenue`` behaviour: throttling, unknown outcomes, cancel-all, the event stream.

Two kinds of fakes, both loopback-only: ccxt with its ``fetch`` replaced (exact request costs and
shapes, virtual time), and the MEXC / Gate emulators that unmodified ccxt trades against (real
sockets on 127.0.0.1, fault injection, fills by an outside taker).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import anyio
import ccxt.async_support as ccxt
import pytest
import structlog.testing
from pydantic import SecretStr

from kasmm.clock import RealClock, VirtualClock
from kasmm.config.schema import Profile
from kasmm.config.secrets import MissingSecret, ResolvedCredentials
from kasmm.core.types import (
    BookUpdated,
    ClientOrderId,
    OrderClosed,
    OrderFilled,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    AuthenticationFailed,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RateLimited,
    RequestTimedOut,
)
from kasmm.limiter import TokenBucket
from kasmm.venues.ccxt import CcxtVenue, StreamSettings
from kasmm.venues.ccxt.client import build_exchange
from kasmm.venues.ccxt.exchanges import flavour_for
from kasmm.venues.factory import build_venue
from tests.ccxt_fakes import (
    API_KEY,
    SECRET,
    FakeHttp,
    HttpError,
    SpyBucket,
    fake_venue,
    spot_market,
    venue_config,
)
from tests.emulators.gate import GateEmulator
from tests.emulators.mexc import MexcEmulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

D = Decimal
FAST = StreamSettings(
    book_interval_s=0.02, orders_interval_s=0.02, ws_orders_interval_s=0.05, trades_safety_s=0.1
)
EMU_KEY, EMU_SECRET = "emu-key-123", "emu-secret-4567890"

DEPTH = {"lastUpdateId": 1, "bids": [["0.0999", "1000"]], "asks": [["0.1001", "1000"]]}


def mexc_order(cid: str, oid: str, *, status: str = "NEW", executed: str = "0") -> dict[str, Any]:
    return {
        "symbol": "KASUSDT",
        "orderId": oid,
        "clientOrderId": cid,
        "price": "0.09",
        "origQty": "100",
        "executedQty": executed,
        "cummulativeQuoteQty": "0",
        "status": status,
        "type": "LIMIT_MAKER",
        "side": "BUY",
        "time": 1700000000000,
        "updateTime": 1700000000000,
        "isWorking": True,
    }


# --- throttle routing -------------------------------------------------------------------------


async def test_throttle_takes_each_endpoints_ccxt_cost_from_the_bucket() -> None:
    clock = VirtualClock(1_700_000_000.0)
    bucket = SpyBucket(clock)
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)
    http.route("GET", "/api/v3/openOrders", [])
    http.route("GET", "/api/v3/myTrades", [])
    http.route(
        "GET", "/api/v3/account", {"balances": [{"asset": "KAS", "free": "5", "locked": "1"}]}
    )
    http.route("POST", "/api/v3/order", {"symbol": "KASUSDT", "orderId": "O1", "transactTime": 1})
    http.route("GET", "/api/v3/order", mexc_order("ct1", "O1"))
    venue = fake_venue("mexc", http, clock=clock, limiter=bucket)
    await venue.connect()
    await venue.poll_book()
    await venue.fetch_open_orders()
    await venue.poll_trades()
    balances = await venue.fetch_balances()
    await venue.place_order(OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D("100")))
    await venue.close()
    # ccxt/abstract/mexc.py: depth 3, openOrders 3, myTrades 10, account 10, POST order 1; no
    # GET order after the placement (a listing confirms it, not a second round trip).
    assert bucket.weights == [3, 3, 10, 10, 1]
    assert http.to("GET", "/api/v3/order") == []
    assert balances.get("KAS").free == 5 and balances.get("KAS").locked == 1
    assert len(http.requests) == len(bucket.weights)


async def test_costs_above_capacity_wait_for_a_full_bucket_instead_of_failing() -> None:
    clock = VirtualClock(1_700_000_000.0)
    parent = TokenBucket(4, 1, clock, name="account")
    bucket = SpyBucket(clock, capacity=8, refill=8)
    bucket.parent = parent
    http = FakeHttp()
    http.route("GET", "/api/v3/myTrades", [])
    venue = fake_venue("mexc", http, clock=clock, limiter=bucket)
    await venue.connect()
    await venue.poll_trades()  # cost 10 > 8 > 4: capped at the account's 4
    await venue.close()
    assert bucket.weights == [4]


async def test_rate_limit_answer_raises_rate_limited() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v3/openOrders", HttpError(429, {"code": 429, "msg": "Too Many"}))
    venue = fake_venue("mexc", http)
    await venue.connect()
    with pytest.raises(RateLimited):
        await venue.fetch_open_orders()
    await venue.close()


# --- validation before sending ------------------------------------------------------------------


@pytest.mark.parametrize(
    ("price", "size", "cid"),
    [
        (D("0.0900005"), D("100"), "ct1"),  # off tick
        (D("0.09"), D("100.005"), "ct1"),  # off lot
        (D("0.09"), D("10"), "ct1"),  # 0.9 USDT < min notional 1
        (D("NaN"), D("100"), "ct1"),
        (D("-0.09"), D("100"), "ct1"),
        (D("0.09"), D("100"), "ct-1"),  # not alphanumeric
    ],
)
async def test_invalid_orders_are_rejected_without_a_request(
    price: Decimal, size: Decimal, cid: str
) -> None:
    http = FakeHttp()
    venue = fake_venue("mexc", http)
    await venue.connect()
    with pytest.raises(OrderRejected):
        await venue.place_order(OrderRequest(ClientOrderId(cid), Side.BUY, price, size))
    await venue.close()
    assert http.requests == []


async def test_secrets_never_in_errors_or_repr() -> None:
    http = FakeHttp()
    http.route(
        "POST", "/api/v3/order", HttpError(400, {"code": 700002, "msg": "Signature not valid"})
    )
    venue = fake_venue("mexc", http)
    await venue.connect()
    with pytest.raises(AuthenticationFailed) as info:
        await venue.place_order(OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D("100")))
    await venue.close()
    text = f"{info.value} {info.value.__cause__!r} {venue!r}"
    assert API_KEY not in text and SECRET not in text and "signature=" not in text


# --- emulator-backed ------------------------------------------------------------------------------


def emulator_venue(exchange: str, base_url: str, **kwargs: Any) -> CcxtVenue:
    config = venue_config(exchange, rest_url=base_url, timeout_s=kwargs.pop("timeout_s", 5.0))
    credentials = ResolvedCredentials(SecretStr(EMU_KEY), SecretStr(EMU_SECRET))
    clock = RealClock()

    def factory() -> Any:
        instance = build_exchange(config, credentials, flavour_for(exchange), websocket=False)
        instance.timeout_on_exit = 0
        return instance

    kwargs.setdefault("stream", FAST)
    kwargs.setdefault("use_websocket", False)
    kwargs.setdefault("dead_man_switch_s", None)
    return CcxtVenue(
        config, "KAS/USDT", clock, TokenBucket(1_000, 1_000, clock), credentials=credentials,
        exchange_factory=factory, **kwargs,
    )  # fmt: skip


@pytest.fixture
async def mexc() -> AsyncIterator[tuple[MexcEmulator, CcxtVenue]]:
    async with MexcEmulator(api_key=EMU_KEY, secret=EMU_SECRET, weight_limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = emulator_venue("mexc", emu.base_url)
        await venue.connect()
        try:
            yield emu, venue
        finally:
            await venue.close()
        assert emu.internal_errors == []


def posts(emu: MexcEmulator) -> int:
    return sum(1 for r in emu.requests if (r.method, r.path) == ("POST", "/api/v3/order"))


async def test_lost_answer_is_found_by_client_id_not_placed_twice(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    emu.inject_fault(
        "POST", "/api/v3/order", status=504, body={"code": 504, "msg": "Gateway Time-out"},
        after=True,
    )  # fmt: skip
    request = OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D("100"))
    order = await venue.place_order(request)
    assert (order.client_id, order.price, order.size, order.remaining) == (
        "ct1",
        D("0.09"),
        D("100"),
        D("100"),
    )
    assert order.venue_id is not None
    assert posts(emu) == 1
    assert [o["clientOrderId"] for o in emu.orders(open_only=True)] == ["ct1"]
    lookups = [r for r in emu.requests if (r.method, r.path) == ("GET", "/api/v3/order")]
    assert lookups and lookups[0].params.get("origClientOrderId") == "ct1"
    await venue.cancel_order(ClientOrderId("ct1"))  # the id map knows it


async def test_timeout_not_found_raises_request_timed_out_once(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, _ = mexc
    venue = emulator_venue("mexc", emu.base_url, timeout_s=0.2)
    await venue.connect()
    try:
        # The exchange is slow: the order lands after ccxt gave up and after the lookup.
        emu.inject_fault("POST", "/api/v3/order", status=200, body=None, delay_s=0.5)
        request = OrderRequest(ClientOrderId("ct2"), Side.BUY, D("0.09"), D("100"))
        with pytest.raises(RequestTimedOut):
            await venue.place_order(request)
        assert posts(emu) == 1
        with pytest.raises(OrderRejected):  # the id may be live: never sent again
            await venue.place_order(request)
        assert posts(emu) == 1
        await anyio.sleep(0.6)
        listed = await venue.fetch_open_orders()
        assert [o.client_id for o in listed] == ["ct2"]
        assert await venue.cancel_all("ct") == 1
    finally:
        await venue.close()


async def test_cancel_all_leaves_foreign_orders(mexc: tuple[MexcEmulator, CcxtVenue]) -> None:
    emu, venue = mexc
    for i, price in enumerate(("0.09", "0.089", "0.088")):
        await venue.place_order(OrderRequest(ClientOrderId(f"ct{i}"), Side.BUY, D(price), D(100)))
    emu.place_foreign("BUY", "0.09", "100", client_order_id="zz1")
    emu.place_foreign("SELL", "0.2", "100")  # a human's order: no client id
    assert await venue.cancel_all("ct") == 3
    left = await venue.fetch_open_orders()
    assert sorted(o.client_id for o in left) == ["", "zz1"]
    assert not [r for r in emu.requests if (r.method, r.path) == ("DELETE", "/api/v3/openOrders")]
    assert await venue.cancel_all("ct") == 0


async def test_cancel_unknown_and_twice(mexc: tuple[MexcEmulator, CcxtVenue]) -> None:
    _, venue = mexc
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("ctnever"))  # -2011 from MEXC
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("ct-bad-id"))  # cannot exist: no request
    await venue.place_order(OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D(100)))
    await venue.cancel_order(ClientOrderId("ct1"))
    with pytest.raises(OrderNotFound):
        await venue.cancel_order(ClientOrderId("ct1"))


async def events_until(
    events: AsyncIterator[VenueEvent], done: Any, limit: int = 2_000
) -> list[VenueEvent]:
    seen: list[VenueEvent] = []
    for _ in range(limit):
        seen.append(await anext(events))
        if done(seen):
            return seen
    raise AssertionError(f"condition not met in {limit} events: {seen[-5:]}")


def fills(events: list[VenueEvent]) -> list[OrderFilled]:
    return [e for e in events if isinstance(e, OrderFilled)]


async def test_rest_stream_books_and_deduplicated_fills(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    stream = venue.events()
    try:
        first = await anext(stream)
        assert isinstance(first, BookUpdated) and first.book.best_bid == D("0.0999")
        assert venue.book_age_s < 1.0
        await venue.place_order(OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.0999"), D(100)))
        emu.trade("sell", "0.0999", "40")
        seen = await events_until(stream, lambda s: len(fills(s)) >= 1)
        emu.trade("sell", "0.0999", "60")
        seen += await events_until(stream, lambda s: len(fills(s)) >= 1)
        # Keep reading through several trade-history re-reads (trades_safety_s): no duplicates.
        deadline = anyio.current_time() + 0.4
        while anyio.current_time() < deadline:
            seen.append(await anext(stream))
    finally:
        await stream.aclose()
    got = [e.fill for e in fills(seen)]
    assert [(f.client_id, f.size, f.remaining) for f in got] == [
        ("ct1", D(40), D(60)),
        ("ct1", D(60), D(0)),
    ]
    assert len({f.trade_id for f in got}) == 2
    assert all(f.side is Side.BUY and f.price == D("0.0999") and f.is_maker for f in got)
    assert sum(isinstance(e, BookUpdated) for e in seen) >= 3
    assert not any(isinstance(e, OrderClosed) for e in seen)


async def test_order_cancelled_by_the_venue_is_reported_closed(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    stream = venue.events()
    try:
        await anext(stream)
        mine = await venue.place_order(
            OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D(100))
        )
        await venue.place_order(OrderRequest(ClientOrderId("ct2"), Side.BUY, D("0.089"), D(100)))
        await venue.cancel_order(ClientOrderId("ct2"))  # ours: not news
        assert mine.venue_id is not None
        # A listing shows it resting first (until then it could have been cancelled on arrival).
        await events_until(stream, lambda s: "ct1" not in venue.tracker.awaiting)
        emu.cancel_foreign(mine.venue_id)  # expired / cancelled by the exchange
        seen = await events_until(stream, lambda s: any(isinstance(e, OrderClosed) for e in s))
    finally:
        await stream.aclose()
    closed = [e for e in seen if isinstance(e, OrderClosed)]
    assert [(e.client_id, e.reason) for e in closed] == [("ct1", "closed_by_venue")]


async def test_stream_survives_transient_errors(mexc: tuple[MexcEmulator, CcxtVenue]) -> None:
    emu, venue = mexc
    stream = venue.events()
    try:
        await anext(stream)
        emu.inject_fault("GET", "/api/v3/depth", status=503, count=2)
        seen = await events_until(stream, lambda s: sum(isinstance(e, BookUpdated) for e in s) > 2)
    finally:
        await stream.aclose()
    assert sum(1 for r in emu.requests if r.path == "/api/v3/depth" and r.status == 503) == 2
    assert isinstance(seen[-1], BookUpdated)


async def test_gate_batch_cancel_and_dead_mans_switch() -> None:
    async with GateEmulator(api_key=EMU_KEY, secret=EMU_SECRET, limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = emulator_venue("gate", emu.base_url, dead_man_switch_s=0.3)
        await venue.connect()
        stream = venue.events()
        try:
            await anext(stream)
            for i in range(3):
                await venue.place_order(
                    OrderRequest(
                        ClientOrderId(f"ct{i}"), Side.SELL, D("0.2") + i * D("0.001"), D(100)
                    )
                )
            await venue.place_order(OrderRequest(ClientOrderId("zz1"), Side.SELL, D("0.3"), D(100)))
            deadline = anyio.current_time() + 0.5
            while anyio.current_time() < deadline:
                await anext(stream)
            assert "KAS_USDT" in emu.countdowns
            assert await venue.cancel_all("ct") == 3
        finally:
            await stream.aclose()
            await venue.close()
        arms = emu.requests_to("/spot/countdown_cancel_all", "POST")
        assert len(arms) >= 3  # refreshed every third of the timeout, then disarmed on close
        assert emu.countdowns == {}
        assert len(emu.requests_to("/spot/cancel_batch_orders", "POST")) == 1
        assert not [r for r in emu.requests if r.method == "DELETE" and r.path == "/spot/orders"]
        assert [o["text"] for o in emu.orders(status="open")] == ["t-zz1"]


# --- websockets (ccxt.pro instance with its streams replaced) --------------------------------


def pro_venue(
    http: FakeHttp, watch_book: Any, watch_trades: Any, *, feed_stall_s: float = 5.0
) -> CcxtVenue:
    config = venue_config("mexc")
    credentials = ResolvedCredentials(SecretStr(API_KEY), SecretStr(SECRET))
    clock = RealClock()

    def factory() -> Any:
        instance = build_exchange(config, credentials, flavour_for("mexc"), websocket=True)
        instance.timeout_on_exit = 0
        instance.set_markets([spot_market("mexc")])
        http.install(instance)
        instance.watch_order_book = watch_book
        instance.watch_my_trades = watch_trades
        return instance

    settings = StreamSettings(
        book_interval_s=0.02, orders_interval_s=0.02, ws_orders_interval_s=0.05,
        trades_safety_s=0.05, ws_backoff_s=0.05, ws_backoff_max_s=0.1, feed_stall_s=feed_stall_s,
    )  # fmt: skip
    return CcxtVenue(
        config, "KAS/USDT", clock, TokenBucket(1_000, 1_000, clock), credentials=credentials,
        exchange_factory=factory, use_websocket=True, stream=settings, dead_man_switch_s=None,
    )  # fmt: skip


TRADE = {
    "symbol": "KASUSDT", "id": "T1", "orderId": "O1", "price": "0.09", "qty": "100",
    "quoteQty": "9", "commission": "0", "commissionAsset": "KAS", "time": 1700000000001,
    "isBuyer": True, "isMaker": True,
}  # fmt: skip


async def test_websocket_books_and_fills_then_rest_fallback_and_reconnect() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)
    http.route("POST", "/api/v3/order", {"symbol": "KASUSDT", "orderId": "O1", "transactTime": 1})
    http.route("GET", "/api/v3/order", mexc_order("ct1", "O1"))
    http.route("GET", "/api/v3/openOrders", [mexc_order("ct1", "O1")])
    http.route("GET", "/api/v3/myTrades", [TRADE])  # REST re-reads the websocket's trade
    calls = {"book": 0, "trades": 0}
    ws_trade = {
        "id": "T1", "order": "O1", "side": "buy", "price": 0.09, "amount": 100.0,
        "timestamp": 1700000000001, "fee": {"cost": 0.0, "currency": "KAS"},
        "takerOrMaker": "maker", "info": {},
    }  # fmt: skip

    async def watch_book(symbol: str, limit: int | None = None, params: Any = None) -> Any:
        calls["book"] += 1
        await asyncio.sleep(0.01)
        if calls["book"] == 5:
            raise ccxt.NetworkError("mexc websocket closed")
        return {"bids": [[0.0998, 10.0]], "asks": [[0.1002, 10.0]], "timestamp": None}

    async def watch_trades(symbol: str, *args: Any, **kwargs: Any) -> Any:
        calls["trades"] += 1
        if calls["trades"] == 2:
            return [ws_trade]
        await asyncio.sleep(3600)
        return []

    venue = pro_venue(http, watch_book, watch_trades)
    await venue.connect()
    stream = venue.events()
    try:
        first = await anext(stream)
        assert isinstance(first, BookUpdated) and first.book.best_bid == D("0.0999")  # REST
        await venue.place_order(OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.09"), D(100)))
        seen = await events_until(stream, lambda s: calls["book"] >= 8, limit=5_000)
    finally:
        await stream.aclose()
        await venue.close()
    ws_books = [e for e in seen if isinstance(e, BookUpdated) and e.book.best_bid == D("0.0998")]
    rest_books = [e for e in seen if isinstance(e, BookUpdated) and e.book.best_bid == D("0.0999")]
    assert ws_books and rest_books  # websocket, then REST while it was down, then websocket
    assert [(f.fill.trade_id, f.fill.client_id, f.fill.remaining) for f in fills(seen)] == [
        ("T1", "ct1", D(0))
    ]
    assert calls["trades"] >= 2


async def _hang() -> Any:
    await asyncio.sleep(3600)


def _depth_requests(http: FakeHttp) -> int:
    return sum(1 for r in http.requests if r.path == "/api/v3/depth")


async def test_a_stalled_websocket_book_is_resubscribed_and_rest_serves_meanwhile() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)  # the market moved: best bid 0.0999
    http.route("GET", "/api/v3/openOrders", [])
    http.route("GET", "/api/v3/myTrades", [])
    calls = {"book": 0}

    async def watch_book(symbol: str, *args: Any, **kwargs: Any) -> Any:
        calls["book"] += 1
        if calls["book"] == 4:
            return await _hang()  # the socket stays open; nothing more arrives
        await asyncio.sleep(0.005)
        return {"bids": [[0.0998, 10.0]], "asks": [[0.1002, 10.0]], "timestamp": None}

    async def watch_trades(symbol: str, *args: Any, **kwargs: Any) -> Any:
        return await _hang()

    venue = pro_venue(http, watch_book, watch_trades, feed_stall_s=0.2)
    await venue.connect()
    stream = venue.events()
    try:
        with structlog.testing.capture_logs() as logs, anyio.fail_after(10):
            seen = await events_until(stream, lambda s: calls["book"] >= 6)
    finally:
        await stream.aclose()
        await venue.close()
    bids = [e.book.best_bid for e in seen if isinstance(e, BookUpdated)]
    # REST first, the websocket's three books, then the REST snapshot that showed the stall,
    # then (after the reconnect backoff) the websocket again on a new subscription.
    assert bids[:5] == [D("0.0999"), D("0.0998"), D("0.0998"), D("0.0998"), D("0.0999")]
    assert D("0.0998") in bids[5:]
    stalled = [entry for entry in logs if entry["event"] == "feed_stalled"]
    assert len(stalled) == 1 and stalled[0]["unchanged_s"] >= 0.2
    assert any(entry["event"] == "websocket_failed" for entry in logs)


async def test_a_quiet_market_keeps_its_websocket() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)
    http.route("GET", "/api/v3/openOrders", [])
    http.route("GET", "/api/v3/myTrades", [])
    calls = {"book": 0}

    async def watch_book(symbol: str, *args: Any, **kwargs: Any) -> Any:
        calls["book"] += 1
        if calls["book"] > 1:
            return await _hang()
        return {"bids": [[0.0999, 1000.0]], "asks": [[0.1001, 1000.0]], "timestamp": None}

    async def watch_trades(symbol: str, *args: Any, **kwargs: Any) -> Any:
        return await _hang()

    venue = pro_venue(http, watch_book, watch_trades, feed_stall_s=0.1)
    await venue.connect()
    stream = venue.events()
    consumer = asyncio.ensure_future(events_until(stream, lambda s: False, limit=10**6))
    try:
        with structlog.testing.capture_logs() as logs, anyio.fail_after(10):
            while _depth_requests(http) < 5:  # the first book, then four REST checks
                await asyncio.sleep(0.01)
    finally:
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer
        await stream.aclose()
        await venue.close()
    # The REST snapshots showed the same book: no stall, the subscription was never renewed.
    assert calls["book"] == 2
    assert not [entry for entry in logs if entry["event"] in ("feed_stalled", "websocket_failed")]


async def test_websocket_not_supported_falls_back_for_good() -> None:
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)
    http.route("GET", "/api/v3/openOrders", [])
    http.route("GET", "/api/v3/myTrades", [])
    calls = {"book": 0}

    async def watch_book(symbol: str, *args: Any, **kwargs: Any) -> Any:
        calls["book"] += 1
        raise ccxt.NotSupported("mexc requires protobuf to decode messages")

    async def watch_trades(symbol: str, *args: Any, **kwargs: Any) -> Any:
        await asyncio.sleep(3600)

    venue = pro_venue(http, watch_book, watch_trades)
    await venue.connect()
    stream = venue.events()
    try:
        seen = await events_until(stream, lambda s: len(s) >= 10)
    finally:
        await stream.aclose()
        await venue.close()
    assert calls["book"] == 1
    assert all(isinstance(e, BookUpdated) for e in seen)


# --- book age, factory ---------------------------------------------------------------------


async def test_book_age_tracks_the_last_book() -> None:
    clock = VirtualClock(1_700_000_000.0)
    http = FakeHttp()
    http.route("GET", "/api/v3/depth", DEPTH)
    venue = fake_venue("mexc", http, clock=clock)
    assert venue.book_age_s == float("inf")
    await venue.connect()
    await venue.poll_book()
    clock.advance_to(clock.now() + 7.5)
    assert venue.book_age_s == pytest.approx(7.5)
    await venue.close()


PROFILE = {
    "name": "kas-mexc",
    "venue": {
        "type": "ccxt",
        "exchange": "mexc",
        "credentials": {"api_key": "${KASMM_TEST_KEY}", "secret": "${KASMM_TEST_SECRET}"},
    },
    "symbol": "KAS/USDT",
    "modes": {
        "aggressive": {"spread_bps": 20, "size": 1000},
        "passive": {"spread_bps": 40, "size": 1000},
    },
}


def test_factory_builds_a_ccxt_venue_from_env_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KASMM_TEST_KEY", "canary-key-value")
    monkeypatch.setenv("KASMM_TEST_SECRET", "canary-secret-value")
    clock = RealClock()
    venue = build_venue(Profile.model_validate(PROFILE), clock, TokenBucket(20, 10, clock))
    assert isinstance(venue, CcxtVenue) and venue.name == "mexc"
    assert "canary" not in repr(venue)
    monkeypatch.delenv("KASMM_TEST_SECRET")
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    with pytest.raises(MissingSecret, match="KASMM_TEST_SECRET") as info:
        build_venue(Profile.model_validate(PROFILE), clock, TokenBucket(20, 10, clock))
    assert "canary" not in str(info.value)


async def test_mexc_post_only_cancelled_on_arrival_costs_one_request_then_closes(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    assert venue.book is None  # no local pre-check possible: only the venue can tell
    crossing = OrderRequest(ClientOrderId("ct1"), Side.BUY, D("0.1001"), D(100))
    order = await venue.place_order(crossing)  # MEXC accepts it, then cancels it
    assert order.client_id == "ct1" and order.venue_id is not None
    assert posts(emu) == 1
    assert not [r for r in emu.requests if (r.method, r.path) == ("GET", "/api/v3/order")]
    stream = venue.events()
    try:
        seen = await events_until(stream, lambda s: any(isinstance(e, OrderClosed) for e in s))
    finally:
        await stream.aclose()
    closed = [e for e in seen if isinstance(e, OrderClosed)]
    assert [(e.client_id, e.reason) for e in closed] == [("ct1", "cancelled_on_arrival")]
    assert not venue.tracker.is_open("ct1") and venue.tracker.awaiting == {}
    assert not [r for r in emu.requests if (r.method, r.path) == ("GET", "/api/v3/order")]


async def test_gate_post_only_returned_cancelled_is_refused() -> None:
    async with GateEmulator(
        api_key=EMU_KEY, secret=EMU_SECRET, limit=None, poc_cross="cancel"
    ) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = emulator_venue("gate", emu.base_url)
        await venue.connect()
        try:
            with pytest.raises(PostOnlyWouldCross):
                await venue.place_order(
                    OrderRequest(ClientOrderId("ct1"), Side.SELL, D("0.0999"), D(100))
                )
            assert await venue.fetch_open_orders() == []
        finally:
            await venue.close()
