"""``CcxtVenue`` batch placement / cancellation and native amend.

Against the MEXC and Gate emulators (unmodified ccxt over loopback: per-order outcomes, lost
answers, the requests really sent) and, for KuCoin and BingX, which have no emulator, against
ccxt with its HTTP layer replaced (request shapes and costs recorded, virtual time).
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import pytest
from pydantic import SecretStr

from kasmm.clock import RealClock, VirtualClock
from kasmm.config.secrets import ResolvedCredentials
from kasmm.core.types import (
    ClientOrderId,
    OpenOrder,
    OrderClosed,
    OrderRequest,
    Side,
    VenueEvent,
)
from kasmm.errors import (
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RequestTimedOut,
)
from kasmm.limiter import TokenBucket
from kasmm.venues.base import BatchLimits
from kasmm.venues.ccxt import CcxtVenue, StreamSettings
from kasmm.venues.ccxt.client import build_exchange
from kasmm.venues.ccxt.errors import entry_error
from kasmm.venues.ccxt.exchanges import FLAVOURS, flavour_for
from tests.ccxt_fakes import FakeHttp, HttpError, SpyBucket, fake_venue, venue_config
from tests.emulators.gate import GateEmulator
from tests.emulators.mexc import MexcEmulator

pytestmark = [pytest.mark.anyio, pytest.mark.timeout(30)]

D = Decimal
FAST = StreamSettings(book_interval_s=0.02, orders_interval_s=0.02, trades_safety_s=0.1)
EMU_KEY, EMU_SECRET = "emu-key-123", "emu-secret-4567890"


def req(cid: str, side: Side, price: str, size: str = "100") -> OrderRequest:
    return OrderRequest(ClientOrderId(cid), side, D(price), D(size))


def emulator_venue(exchange: str, base_url: str, **kwargs: Any) -> CcxtVenue:
    config = venue_config(exchange, rest_url=base_url, timeout_s=kwargs.pop("timeout_s", 5.0))
    credentials = ResolvedCredentials(SecretStr(EMU_KEY), SecretStr(EMU_SECRET))
    clock = RealClock()

    def factory() -> Any:
        instance = build_exchange(config, credentials, flavour_for(exchange), websocket=False)
        instance.timeout_on_exit = 0
        return instance

    kwargs.setdefault("stream", FAST)
    return CcxtVenue(
        config, "KAS/USDT", clock, TokenBucket(1_000, 1_000, clock), credentials=credentials,
        exchange_factory=factory, use_websocket=False, dead_man_switch_s=None, **kwargs,
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


@pytest.fixture
async def gate() -> AsyncIterator[tuple[GateEmulator, CcxtVenue]]:
    async with GateEmulator(api_key=EMU_KEY, secret=EMU_SECRET, limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20)
        venue = emulator_venue("gate", emu.base_url)
        await venue.connect()
        try:
            yield emu, venue
        finally:
            await venue.close()


def mexc_calls(emu: MexcEmulator, method: str, path: str) -> list[Any]:
    return [r for r in emu.requests if (r.method, r.path) == (method, path)]


async def events_until(venue: CcxtVenue, done: Any, limit: int = 2_000) -> list[VenueEvent]:
    seen: list[VenueEvent] = []
    stream = venue.events()
    try:
        for _ in range(limit):
            seen.append(await anext(stream))
            if done(seen):
                return seen
    finally:
        await stream.aclose()
    raise AssertionError(f"condition not met within {limit} events")


# --- what each exchange declares --------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "limits", "amend"),
    [
        ("mexc", BatchLimits(place=20, cancel=1), False),
        ("gate", BatchLimits(place=10, cancel=20), True),
        ("kucoin", BatchLimits(place=5, cancel=1), False),
        ("bingx", BatchLimits(place=1, cancel=1), False),
    ],
)
def test_batch_limits_and_amend_per_exchange(
    exchange: str, limits: BatchLimits, amend: bool
) -> None:
    venue = fake_venue(exchange, FakeHttp())
    assert venue.batch_limits == limits == FLAVOURS[exchange].batch
    assert venue.supports_amend is amend


# --- MEXC: batchOrders ------------------------------------------------------------------------


async def test_mexc_batch_gives_each_order_its_own_outcome_in_one_request(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    emu.set_balance("USDT", "12")  # room for the first buy (9 USDT), not the second (8.9)
    requests = [
        req("ct1", Side.BUY, "0.09"),
        req("ct2", Side.BUY, "0.089"),
        req("ct3", Side.SELL, "0.11"),
        req("ct4", Side.SELL, "0.1100005"),  # off tick: refused locally, never sent
    ]
    first, funds, sell, off_tick = await venue.place_orders(requests)

    assert isinstance(first, OpenOrder) and isinstance(sell, OpenOrder)
    assert (first.client_id, first.price, first.remaining) == ("ct1", D("0.09"), D(100))
    assert (sell.client_id, sell.side) == ("ct3", Side.SELL) and sell.venue_id is not None
    assert isinstance(funds, InsufficientFunds), funds  # MEXC code 30004 in its entry
    assert isinstance(off_tick, OrderRejected)
    (batch,) = mexc_calls(emu, "POST", "/api/v3/batchOrders")
    assert batch.weight == 1
    assert mexc_calls(emu, "POST", "/api/v3/order") == []
    assert mexc_calls(emu, "GET", "/api/v3/order") == []  # no per-order confirmation
    assert sorted(o["clientOrderId"] for o in emu.orders(open_only=True)) == ["ct1", "ct3"]
    assert venue.tracker.is_open("ct1") and not venue.tracker.is_open("ct2")
    assert not venue.tracker.is_open("ct4")


async def test_mexc_batch_answer_lost_is_resolved_by_client_id_without_duplicates(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    emu.inject_fault(
        "POST", "/api/v3/batchOrders", status=504, body={"code": 504, "msg": "Gateway Time-out"},
        after=True,
    )  # fmt: skip
    requests = [req("ct1", Side.BUY, "0.09"), req("ct2", Side.SELL, "0.11")]
    outcomes = await venue.place_orders(requests)

    assert [o.client_id if isinstance(o, OpenOrder) else o for o in outcomes] == ["ct1", "ct2"]
    assert all(isinstance(o, OpenOrder) and o.venue_id for o in outcomes)
    lookups = mexc_calls(emu, "GET", "/api/v3/order")
    assert sorted(r.params["origClientOrderId"] for r in lookups) == ["ct1", "ct2"]
    assert len(mexc_calls(emu, "POST", "/api/v3/batchOrders")) == 1
    assert mexc_calls(emu, "POST", "/api/v3/order") == []
    assert sorted(o["clientOrderId"] for o in emu.orders()) == ["ct1", "ct2"]  # once each
    again = await venue.place_orders(requests)  # the ids are live: never sent again
    assert all(isinstance(o, OrderRejected) for o in again)
    assert len(mexc_calls(emu, "POST", "/api/v3/batchOrders")) == 1


async def test_mexc_batch_never_received_raises_timed_out_and_keeps_ids_reserved(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    emu.inject_fault("POST", "/api/v3/batchOrders", status=504, body={"code": 504, "msg": "x"})
    requests = [req("ct1", Side.BUY, "0.09"), req("ct2", Side.SELL, "0.11")]
    with pytest.raises(RequestTimedOut):
        await venue.place_orders(requests)
    assert emu.orders() == []
    assert all(isinstance(o, OrderRejected) for o in await venue.place_orders(requests))
    assert len(mexc_calls(emu, "POST", "/api/v3/batchOrders")) == 1


async def test_mexc_crossing_post_only_in_a_batch_is_reported_closed_by_a_listing(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    slow = StreamSettings(book_interval_s=0.05, orders_interval_s=60.0, confirm_after_s=0.05)
    venue.settings = slow  # the periodic listing is far away: only the confirmation lists
    assert venue.book is None  # no local pre-check: only the exchange can tell
    resting, crossing = await venue.place_orders(
        [req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.1001")]
    )
    assert isinstance(resting, OpenOrder) and isinstance(crossing, OpenOrder)
    seen = await events_until(venue, lambda s: any(isinstance(e, OrderClosed) for e in s))
    closed = [(e.client_id, e.reason) for e in seen if isinstance(e, OrderClosed)]
    assert closed == [("ct2", "cancelled_on_arrival")]
    assert venue.tracker.is_open("ct1") and not venue.tracker.is_open("ct2")
    assert mexc_calls(emu, "GET", "/api/v3/order") == []


async def test_entries_without_client_id_reordered_by_ccxt_are_looked_up_not_guessed() -> None:
    # ccxt sorts parsed orders by timestamp: the rejection (none) comes before the success.
    http = FakeHttp()
    http.route(
        "POST",
        "/api/v3/batchOrders",
        [
            {"symbol": "KASUSDT", "orderId": "O1", "transactTime": 1_700_000_000_000},
            {"code": 30004, "msg": "Insufficient position"},
        ],
    )
    found = {
        "symbol": "KASUSDT", "orderId": "O1", "clientOrderId": "ct1", "price": "0.09",
        "origQty": "100", "executedQty": "0", "status": "NEW", "side": "BUY", "type": "LIMIT",
    }  # fmt: skip
    http.route(
        "GET",
        "/api/v3/order",
        lambda r: (
            found
            if r.query["origClientOrderId"] == "ct1"
            else HttpError(400, {"code": -2013, "msg": "Order does not exist."})
        ),
    )
    http.route("GET", "/api/v3/openOrders", [found])
    venue = fake_venue("mexc", http)
    await venue.connect()
    resting, unknown = await venue.place_orders(
        [req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.089")]
    )
    await venue.close()
    assert isinstance(resting, OpenOrder) and resting.venue_id == "O1"
    assert isinstance(unknown, RequestTimedOut)  # not found: its id stays reserved
    assert venue.tracker.is_open("ct2")


async def test_mexc_batches_keep_to_its_two_per_second() -> None:
    clock = VirtualClock(1_700_000_000.0)
    sent: list[float] = []

    def answer(request: Any) -> list[dict[str, Any]]:
        sent.append(clock.now())
        return [{"symbol": "KASUSDT", "orderId": f"O{len(sent)}{i}"} for i in range(2)]

    http = FakeHttp()
    http.route("POST", "/api/v3/batchOrders", answer)
    venue = fake_venue("mexc", http, clock=clock)
    await venue.connect()
    for n in range(4):
        outcomes = await venue.place_orders(
            [req(f"ct{n}a", Side.BUY, "0.09"), req(f"ct{n}b", Side.BUY, "0.089")]
        )
        assert all(isinstance(o, OpenOrder) for o in outcomes)
    await venue.close()
    start = sent[0]
    assert [round(t - start, 3) for t in sent] == [0.0, 0.0, 0.5, 1.0]  # MEXC: 2 r/s


async def test_mexc_has_no_batch_cancel_so_cancels_go_out_at_once_as_singles(
    mexc: tuple[MexcEmulator, CcxtVenue],
) -> None:
    emu, venue = mexc
    await venue.place_orders([req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.089")])
    outcomes = await venue.cancel_orders(
        [ClientOrderId("ct1"), ClientOrderId("ctnever"), ClientOrderId("ct2")]
    )
    assert outcomes[0] is None and outcomes[2] is None
    assert isinstance(outcomes[1], OrderNotFound)
    assert len(mexc_calls(emu, "DELETE", "/api/v3/order")) == 3
    assert emu.orders(open_only=True) == []


async def test_mexc_amend_is_not_native() -> None:
    venue = fake_venue("mexc", FakeHttp())
    with pytest.raises(FatalVenueError):
        await venue.amend_order(ClientOrderId("ct1"), D("0.09"), D("100"))


# --- Gate: batch_orders, cancel_batch_orders, PATCH -------------------------------------------


async def test_gate_batch_per_order_errors_and_one_batch_cancel(
    gate: tuple[GateEmulator, CcxtVenue],
) -> None:
    emu, venue = gate
    emu.set_balance("USDT", "10")  # the first buy (9 USDT) fits, the second does not
    outcomes = await venue.place_orders(
        [
            req("ct1", Side.BUY, "0.09"),
            req("ct2", Side.BUY, "0.0999"),  # crosses nothing, but no funds left
            req("ct3", Side.SELL, "0.0999"),  # post-only at the best bid: POC_FILL_IMMEDIATELY
            req("ct4", Side.SELL, "0.11"),
        ]
    )
    first, funds, crossing, sell = outcomes
    assert isinstance(first, OpenOrder) and isinstance(sell, OpenOrder)
    assert isinstance(funds, InsufficientFunds), funds
    assert isinstance(crossing, PostOnlyWouldCross), crossing
    assert len(emu.requests_to("/spot/batch_orders", "POST")) == 1
    assert emu.requests_to("/spot/orders", "POST") == []
    assert sorted(o["text"] for o in emu.orders(status="open")) == ["t-ct1", "t-ct4"]

    await venue.cancel_order(ClientOrderId("ct4"))  # gone before the batch cancel
    cancelled = await venue.cancel_orders([ClientOrderId("ct1"), ClientOrderId("ct4")])
    assert cancelled[0] is None and isinstance(cancelled[1], OrderNotFound)
    (batch,) = emu.requests_to("/spot/cancel_batch_orders", "POST")
    assert [e["id"] for e in batch.body] == [first.venue_id, sell.venue_id]
    assert emu.orders(status="open") == []
    assert not venue.tracker.is_open("ct1")


async def test_gate_amend_keeps_the_exchange_order_id(
    gate: tuple[GateEmulator, CcxtVenue],
) -> None:
    emu, venue = gate
    placed = await venue.place_order(req("ct1", Side.SELL, "0.11"))
    amended = await venue.amend_order(ClientOrderId("ct1"), D("0.105"), D("80"))

    assert (amended.client_id, amended.venue_id) == ("ct1", placed.venue_id)
    assert (amended.price, amended.size, amended.remaining) == (D("0.105"), D(80), D(80))
    (patch,) = emu.requests_to(f"/spot/orders/{placed.venue_id}", "PATCH")
    assert patch.body == {
        "currency_pair": "KAS_USDT", "account": "spot", "amount": "80", "price": "0.105",
    }  # fmt: skip
    (order,) = emu.orders(status="open")
    assert (order["id"], order["text"], order["price"], order["amount"]) == (
        placed.venue_id,
        "t-ct1",
        "0.105",
        "80",
    )
    listed = await venue.fetch_open_orders()
    assert [(o.client_id, o.venue_id, o.price) for o in listed] == [
        ("ct1", placed.venue_id, D("0.105"))
    ]
    # Nothing to change: no request.
    same = await venue.amend_order(ClientOrderId("ct1"), D("0.105"), D("80"))
    assert same.price == D("0.105") and len(emu.requests_to(patch.path, "PATCH")) == 1


async def test_gate_amend_refusals_leave_the_order_and_gone_orders_are_not_found(
    gate: tuple[GateEmulator, CcxtVenue],
) -> None:
    emu, venue = gate
    placed = await venue.place_order(req("ct1", Side.SELL, "0.11"))
    assert venue.book is None  # no local pre-check: the exchange refuses the cross
    with pytest.raises(PostOnlyWouldCross):
        await venue.amend_order(ClientOrderId("ct1"), D("0.0999"), D("100"))
    with pytest.raises(OrderRejected):  # off tick: refused locally
        await venue.amend_order(ClientOrderId("ct1"), D("0.1100005"), D("100"))
    (order,) = emu.orders(status="open")
    assert (order["id"], order["price"]) == (placed.venue_id, "0.11")
    assert venue.tracker.is_open("ct1")
    emu.trade("buy", "0.11", "100")  # filled meanwhile
    with pytest.raises(OrderNotFound):
        await venue.amend_order(ClientOrderId("ct1"), D("0.109"), D("100"))
    assert not venue.tracker.is_open("ct1")
    with pytest.raises(OrderNotFound):
        await venue.amend_order(ClientOrderId("ctnever"), D("0.109"), D("100"))


async def test_gate_amend_answer_lost_is_looked_up(
    gate: tuple[GateEmulator, CcxtVenue],
) -> None:
    emu, venue = gate
    placed = await venue.place_order(req("ct1", Side.SELL, "0.11"))
    emu.inject_error("SERVER_ERROR", 502, path=f"/spot/orders/{placed.venue_id}", after=True)
    amended = await venue.amend_order(ClientOrderId("ct1"), D("0.108"), D("100"))
    assert (amended.venue_id, amended.price) == (placed.venue_id, D("0.108"))
    assert emu.requests_to("/spot/orders/t-ct1", "GET")  # looked up by its text


# --- KuCoin and BingX: request shapes and costs (no emulator) ---------------------------------

KUCOIN_MULTI = {
    "code": "200000",
    "data": [
        {"orderId": "6710d8336afcdb0007319c27", "clientOid": "ct1", "success": True},
        {"success": False, "failMsg": "Balance insufficient!", "clientOid": "ct2"},
        {"orderId": "6710d8336afcdb0007319c29", "clientOid": "ct3", "success": True},
    ],
}


async def test_kucoin_batch_goes_to_hf_multi_once_and_reads_each_entry() -> None:
    clock = VirtualClock(1_700_000_000.0)
    bucket = SpyBucket(clock)
    http = FakeHttp()
    http.route("POST", "/api/v1/hf/orders/multi", KUCOIN_MULTI)
    venue = fake_venue("kucoin", http, clock=clock, limiter=bucket)
    await venue.connect()
    outcomes = await venue.place_orders(
        [req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.089"), req("ct3", Side.SELL, "0.11")]
    )
    await venue.close()
    first, funds, sell = outcomes
    assert isinstance(first, OpenOrder) and first.venue_id == "6710d8336afcdb0007319c27"
    assert isinstance(sell, OpenOrder) and sell.venue_id == "6710d8336afcdb0007319c29"
    assert isinstance(funds, InsufficientFunds), funds
    (request,) = http.requests
    assert request.path == "/api/v1/hf/orders/multi"
    assert request.json["symbol"] == "KAS-USDT"
    assert request.json["orderList"][0] == {
        "clientOid": "ct1", "side": "buy", "symbol": "KAS-USDT", "type": "limit",
        "size": "100", "price": "0.09", "postOnly": True,
    }  # fmt: skip
    assert [o["clientOid"] for o in request.json["orderList"]] == ["ct1", "ct2", "ct3"]
    assert bucket.weights == [1]  # ccxt's cost of hf/orders/multi, once for three orders
    assert venue.tracker.awaiting.keys() == {"ct1", "ct3"}  # post-only: a listing confirms


async def test_kucoin_entry_without_client_id_is_matched_by_position() -> None:
    http = FakeHttp()
    answer = {
        "code": "200000",
        "data": [
            {"orderId": "A1", "success": True},
            {"success": False, "failMsg": "The order funds should more then 0.1 USDT."},
        ],
    }
    http.route("POST", "/api/v1/hf/orders/multi", answer)
    venue = fake_venue("kucoin", http)
    await venue.connect()
    ok, refused = await venue.place_orders(
        [req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.089")]
    )
    await venue.close()
    assert isinstance(ok, OpenOrder) and ok.venue_id == "A1"
    assert isinstance(refused, OrderRejected) and not isinstance(refused, PostOnlyWouldCross)


async def test_gate_and_mexc_batches_cost_the_batch_endpoint_once() -> None:
    for exchange, path, answer, cost in (
        (
            "mexc",
            "/api/v3/batchOrders",
            [{"symbol": "KASUSDT", "orderId": f"O{i}", "newClientOrderId": f"ct{i}"}
             for i in range(3)],
            10,  # ccxt: batchOrders cost 10 (2 r/s), POST order cost 1
        ),
        (
            "gate",
            "/api/v4/spot/batch_orders",
            [{"id": f"{i}", "text": f"t-ct{i}", "succeeded": True, "status": "open",
              "currency_pair": "KAS_USDT", "side": "buy", "amount": "100", "price": "0.09",
              "left": "100", "type": "limit"} for i in range(3)],
            0.4,  # ccxt: batch_orders cost 0.4, the same as one order
        ),
    ):  # fmt: skip
        clock = VirtualClock(1_700_000_000.0)
        bucket = SpyBucket(clock)
        http = FakeHttp()
        http.route("POST", path, answer)
        venue = fake_venue(exchange, http, clock=clock, limiter=bucket)
        await venue.connect()
        outcomes = await venue.place_orders(
            [req(f"ct{i}", Side.BUY, f"0.0{9 - i}") for i in range(3)]
        )
        await venue.close()
        assert all(isinstance(o, OpenOrder) for o in outcomes), (exchange, outcomes)
        assert [r.path for r in http.requests] == [path]
        assert bucket.weights == [cost], exchange


async def test_bingx_places_and_cancels_as_concurrent_singles() -> None:
    http = FakeHttp()

    def placed(request: Any) -> dict[str, Any]:
        cid = request.query["newClientOrderId"]
        return {
            "code": 0,
            "msg": "",
            "data": {"symbol": "KAS-USDT", "orderId": 1850000000000000000 + int(cid[2:]),
                     "status": "PENDING", "clientOrderID": cid, "price": request.query["price"],
                     "origQty": "100", "executedQty": "0", "side": "BUY", "type": "LIMIT"},
        }  # fmt: skip

    http.route("POST", "/openApi/spot/v1/trade/order", placed)
    http.route(
        "POST",
        "/openApi/spot/v1/trade/cancel",
        {"code": 0, "msg": "", "data": {"orderId": 1, "status": "CANCELED"}},
    )
    venue = fake_venue("bingx", http)
    await venue.connect()
    outcomes = await venue.place_orders(
        [req("ct1", Side.BUY, "0.09"), req("ct2", Side.BUY, "0.08")]
    )
    cancels = await venue.cancel_orders([ClientOrderId("ct1"), ClientOrderId("ct2")])
    await venue.close()
    assert [o.client_id for o in outcomes if isinstance(o, OpenOrder)] == ["ct1", "ct2"]
    assert cancels == [None, None]
    assert len(http.to("POST", "/openApi/spot/v1/trade/order")) == 2
    assert len(http.to("POST", "/openApi/spot/v1/trade/cancel")) == 2
    assert not http.to("POST", "/openApi/spot/v1/trade/batchOrders")


# --- per-order error translation ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "entry", "expected"),
    [
        ("mexc", {"newClientOrderId": "a", "code": 30004, "msg": "Insufficient position"},
         InsufficientFunds),
        ("mexc", {"code": 30002, "msg": "The minimum transaction volume cannot be less than"},
         OrderRejected),
        ("gate", {"succeeded": False, "label": "POC_FILL_IMMEDIATELY", "message": "x"},
         PostOnlyWouldCross),
        ("gate", {"succeeded": False, "label": "ORDER_CLOSED", "message": "x"}, OrderNotFound),
        ("gate", {"succeeded": False, "label": "BALANCE_NOT_ENOUGH", "message": "x"},
         InsufficientFunds),
        ("kucoin", {"success": False, "failMsg": "Balance insufficient!"}, InsufficientFunds),
        ("kucoin", {"success": False, "failMsg": "something new"}, OrderRejected),
    ],
)  # fmt: skip
def test_entry_errors_use_the_exchange_error_tables(
    exchange: str, entry: dict[str, Any], expected: type[Exception]
) -> None:
    instance = build_exchange(
        venue_config(exchange), _credentials(), flavour_for(exchange), websocket=False
    )
    error = entry_error(instance, entry, action="place_orders")
    assert type(error) is expected, error
    assert str(error).startswith(f"{exchange} place_orders: ")


def _credentials() -> ResolvedCredentials:
    return ResolvedCredentials(SecretStr("k" * 16), SecretStr("s" * 16), SecretStr("p" * 16))
