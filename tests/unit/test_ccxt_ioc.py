"""Immediate-or-cancel orders of the ccxt venue: what each exchange receives, how the outcome is
read (from the answer or by reading the order back), lost answers, and fills whose trade arrives
before the answer that names their order.

The wire shapes are recorded from unmodified ccxt 4.5.90 with its HTTP layer replaced
(:mod:`tests.ccxt_fakes`); lost answers run against the MEXC emulator's fault injection.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import anyio
import pytest
import structlog.testing

from kasmm.clock import VirtualClock
from kasmm.core.types import ClientOrderId, OrderFilled, OrderRequest, Side, VenueOrderId
from kasmm.errors import OrderRejected, RequestTimedOut
from kasmm.venues.base import IocOutcome
from kasmm.venues.ccxt import ioc
from kasmm.venues.ccxt.exchanges import flavour_for
from kasmm.venues.ccxt.tracker import LostIoc, OrderTracker
from tests.ccxt_fakes import FakeHttp, HttpError, fake_venue
from tests.contract.ccxt_harness import API_KEY, SECRET, ccxt_venue
from tests.emulators.mexc import MexcEmulator

pytestmark = pytest.mark.anyio
D = Decimal
CID = ClientOrderId("kab12h0001")
IOC = OrderRequest.ioc(CID, Side.BUY, D("0.081"), D("100"))

#: A Gate answer: the order already finished (``finish_as=ioc``), 60 of 100 filled.
GATE_DONE = {
    "id": "100000000007",
    "text": "t-kab12h0001",
    "currency_pair": "KAS_USDT",
    "type": "limit",
    "account": "spot",
    "side": "buy",
    "amount": "100",
    "price": "0.081",
    "time_in_force": "ioc",
    "left": "40",
    "filled_total": "4.86",
    "avg_deal_price": "0.081",
    "status": "cancelled",
    "finish_as": "ioc",
    "create_time_ms": 1700000000000,
}
#: BingX answers with the final state too (fully filled here).
BINGX_DONE = {
    "code": 0,
    "msg": "",
    "data": {
        "symbol": "KAS-USDT",
        "orderId": 1850000000000000007,
        "transactTime": 1700000000000,
        "price": "0.081",
        "origQty": "100",
        "executedQty": "100",
        "cummulativeQuoteQty": "8.08",
        "status": "FILLED",
        "type": "LIMIT",
        "side": "BUY",
        "clientOrderID": "kab12h0001",
    },
}
#: MEXC acknowledges with ids only; the order read back says what happened.
MEXC_ACK = {
    "symbol": "KASUSDT",
    "orderId": "C02__7",
    "orderListId": -1,
    "price": "0.081",
    "origQty": "100",
    "type": "IMMEDIATE_OR_CANCEL",
    "side": "BUY",
    "transactTime": 1700000000000,
}
MEXC_DONE = {
    "symbol": "KASUSDT",
    "orderId": "C02__7",
    "clientOrderId": "kab12h0001",
    "price": "0.081",
    "origQty": "100",
    "executedQty": "0",
    "cummulativeQuoteQty": "0",
    "status": "CANCELED",
    "type": "IMMEDIATE_OR_CANCEL",
    "side": "BUY",
    "time": 1700000000000,
    "updateTime": 1700000000000,
}
#: KuCoin HF acknowledges with ids only; the order by client id tells.
KUCOIN_ACK = {"code": "200000", "data": {"orderId": "6710000000000000000007", "clientOid": "x"}}
KUCOIN_DONE = {
    "code": "200000",
    "data": {
        "id": "6710000000000000000007",
        "clientOid": "kab12h0001",
        "symbol": "KAS-USDT",
        "type": "limit",
        "side": "buy",
        "price": "0.081",
        "size": "100",
        "dealSize": "100",
        "dealFunds": "8.1",
        "timeInForce": "IOC",
        "active": False,
        "inOrderBook": False,
        "cancelExist": False,
        "createdAt": 1700000000000,
        "lastUpdatedAt": 1700000000000,
    },
}


async def placed(exchange: str, routes: list[tuple[str, str, Any]]) -> tuple[IocOutcome, FakeHttp]:
    http = FakeHttp()
    for method, path, answer in routes:
        http.route(method, path, answer)
    venue = fake_venue(exchange, http)
    await venue.connect()
    try:
        outcome = await venue.place_ioc(IOC)
        assert not venue.tracker.is_open(CID)  # never rests: nothing to list or cancel
        assert venue.tracker.client_id_for(outcome.venue_id) == CID  # its trades are its fills
        assert venue.tracker.trades_due == (outcome.filled > 0)
    finally:
        await venue.close()
    return outcome, http


async def test_gate_sends_time_in_force_ioc_and_reads_the_outcome_from_the_answer() -> None:
    outcome, http = await placed("gate", [("POST", "/spot/orders", GATE_DONE)])
    (request,) = http.to("POST", "/spot/orders")
    assert request.json["time_in_force"] == "ioc" and request.json["text"] == "t-kab12h0001"
    assert outcome == IocOutcome(CID, D(60), D("0.081"), "partial", VenueOrderId("100000000007"))
    assert len(http.requests) == 1  # no read-back: the answer was final


async def test_bingx_sends_time_in_force_ioc_and_reads_the_outcome_from_the_answer() -> None:
    outcome, http = await placed("bingx", [("POST", "/spot/v1/trade/order", BINGX_DONE)])
    (request,) = http.to("POST", "/spot/v1/trade/order")
    assert (request.query["timeInForce"], request.query["type"]) == ("IOC", "LIMIT")
    assert (outcome.status, outcome.filled, outcome.average_price) == (
        "filled",
        D(100),
        D("0.0808"),
    )


async def test_mexc_sends_immediate_or_cancel_and_reads_the_order_back() -> None:
    outcome, http = await placed(
        "mexc", [("POST", "/api/v3/order", MEXC_ACK), ("GET", "/api/v3/order", MEXC_DONE)]
    )
    (request,) = http.to("POST", "/api/v3/order")
    assert request.query["type"] == "IMMEDIATE_OR_CANCEL"
    assert "timeInForce" not in request.query
    (lookup,) = http.to("GET", "/api/v3/order")
    assert lookup.query["orderId"] == "C02__7"
    assert outcome == IocOutcome(CID, D(0), None, "expired", VenueOrderId("C02__7"))


async def test_kucoin_sends_time_in_force_ioc_and_reads_the_order_back() -> None:
    outcome, http = await placed(
        "kucoin",
        [
            ("POST", "/api/v1/hf/orders", KUCOIN_ACK),
            ("GET", "/api/v1/hf/orders/6710000000000000000007", KUCOIN_DONE),
        ],
    )
    (request,) = http.to("POST", "/api/v1/hf/orders")
    assert request.json["timeInForce"] == "IOC" and "postOnly" not in request.json
    assert (outcome.status, outcome.filled, outcome.average_price) == ("filled", D(100), D("0.081"))


@pytest.mark.parametrize(
    ("exchange", "ioc_as"),
    [
        ("mexc", "type=IMMEDIATE_OR_CANCEL"),
        ("gate", "time_in_force=ioc"),
        ("kucoin", "timeInForce=IOC"),
        ("bingx", "timeInForce=IOC"),
    ],
)
def test_each_flavour_documents_the_ioc_the_tests_above_record(exchange: str, ioc_as: str) -> None:
    assert flavour_for(exchange).ioc_as == ioc_as


async def test_a_request_that_is_not_an_ioc_sends_nothing() -> None:
    http = FakeHttp()
    venue = fake_venue("mexc", http)
    await venue.connect()
    with pytest.raises(OrderRejected):
        await venue.place_ioc(OrderRequest(CID, Side.BUY, D("0.081"), D("100")))
    with pytest.raises(OrderRejected):  # and place_order refuses an IOC
        await venue.place_order(IOC)
    await venue.close()
    assert http.requests == []


async def test_an_order_taken_but_not_read_back_is_an_unknown_outcome_not_a_refusal() -> None:
    """A transient error reading the order back must not tell the caller "not placed" (it would
    hedge again): the outcome is unknown, and the client id stays taken."""
    http = FakeHttp()
    http.route("POST", "/api/v3/order", MEXC_ACK)
    http.route("GET", "/api/v3/order", HttpError(503, {"code": 503, "msg": "busy"}))
    venue = fake_venue("mexc", http)
    await venue.connect()
    try:
        with pytest.raises(RequestTimedOut, match="placed"):
            await venue.place_ioc(IOC)
        assert venue.tracker.is_open(CID)
    finally:
        await venue.close()


# --- lost answers (the MEXC emulator) ---------------------------------------------------------


async def test_a_lost_answer_is_resolved_by_client_id_without_a_second_order() -> None:
    async with MexcEmulator(api_key=API_KEY, secret=SECRET, weight_limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        venue = ccxt_venue("mexc", emu.base_url, dead_man_switch_s=None)
        await venue.connect()
        try:
            emu.inject_fault(
                "POST", "/api/v3/order", status=504, body={"code": 504, "msg": "Gateway Time-out"},
                after=True,
            )  # fmt: skip
            request = OrderRequest.ioc(ClientOrderId("ct1"), Side.BUY, D("0.1001"), D("1500"))
            outcome = await venue.place_ioc(request)
            assert (outcome.status, outcome.filled, outcome.average_price) == (
                "partial",
                D(1000),
                D("0.1001"),
            )
            posts = [r for r in emu.requests if (r.method, r.path) == ("POST", "/api/v3/order")]
            assert len(posts) == 1
            lookups = [r for r in emu.requests if (r.method, r.path) == ("GET", "/api/v3/order")]
            assert lookups[0].params.get("origClientOrderId") == "ct1"
            assert not venue.tracker.is_open(ClientOrderId("ct1"))
        finally:
            await venue.close()
        assert emu.internal_errors == []


async def test_an_answer_lost_before_the_order_landed_raises_then_the_stream_finds_it() -> None:
    async with MexcEmulator(api_key=API_KEY, secret=SECRET, weight_limit=None) as emu:
        emu.set_mid("0.1", spread_bps=20, levels=5, size=1000)
        venue = ccxt_venue("mexc", emu.base_url, dead_man_switch_s=None)
        await venue.connect()
        venue.exchange.timeout = 200  # ms: ccxt gives up before the slow exchange acts
        cid = ClientOrderId("ct2")
        try:
            emu.inject_fault("POST", "/api/v3/order", status=200, body=None, delay_s=0.5)
            request = OrderRequest.ioc(cid, Side.BUY, D("0.1001"), D("10"))
            with pytest.raises(RequestTimedOut):
                await venue.place_ioc(request)
            assert venue.tracker.is_open(cid) and cid in venue.tracker.lost_iocs
            with pytest.raises(OrderRejected):  # the id may be live: never sent again
                await venue.place_ioc(request)
            await anyio.sleep(0.6)  # the order lands, takes 10 at 0.1001 and is done
            events = await venue.poll_orders(force_trades=True)  # what the stream polls
            fills = [e.fill for e in events if isinstance(e, OrderFilled)]
            assert [(f.client_id, f.size, f.is_maker) for f in fills] == [(cid, D(10), False)]
            assert venue.tracker.lost_iocs == {} and not venue.tracker.is_open(cid)
            assert venue.tracker.client_id_for(fills[0].venue_id) == cid
        finally:
            await venue.close()


async def test_a_lost_ioc_never_found_is_given_up_after_a_while() -> None:
    """BingX cannot look an order up by client id: the lost IOC keeps its id taken until the
    lookup window ends, then the venue stops waiting for it (and says so)."""
    clock = VirtualClock(1_000.0)
    venue = fake_venue("bingx", FakeHttp(), clock=clock)
    await venue.connect()
    tracker = venue.tracker
    tracker.ioc_sending("h3")
    lost = LostIoc(Side.SELL, D("0.08"), D(10), lost_at=clock.now())
    tracker.ioc_failed("h3", outcome_unknown=True, lost=lost)
    await ioc.resolve_lost(venue)
    assert "h3" in tracker.lost_iocs  # nothing sent: no lookup by client id on BingX
    clock.advance_to(1_000.0 + ioc.LOST_IOC_LOOKUP_S)
    with structlog.testing.capture_logs() as logs:
        await ioc.resolve_lost(venue)
    assert tracker.lost_iocs == {}
    assert [e["event"] for e in logs] == ["ioc_outcome_unresolved"]
    await venue.close()


# --- fills whose trade comes before the answer --------------------------------------------------


def test_a_trade_pushed_before_the_ioc_answer_is_held_back_then_attributed() -> None:
    tracker = OrderTracker()
    tracker.ioc_sending("h1")
    trade = {"id": "t9", "order": "V7", "side": "buy", "price": 0.081, "amount": 60.0}
    assert tracker.fill_from_trade({**trade, "takerOrMaker": "taker"}, 1.0) is None
    tracker.ioc_done("h1", Side.BUY, D("0.081"), D(100), "V7", D(60), 5.0, 1.0)
    assert tracker.trades_due and tracker.confirmation_due(5.5, 0.5)  # read again soon
    fill = tracker.fill_from_trade({**trade, "takerOrMaker": "taker"}, 2.0)
    assert fill is not None
    assert (fill.client_id, fill.size, fill.remaining, fill.is_maker) == ("h1", D(60), D(40), False)
    assert tracker.fill_from_trade(trade, 3.0) is None  # once only
    assert not tracker.confirmation_due(10.0, 0.5)


def test_trades_of_unknown_orders_are_not_held_back_without_an_ioc_in_flight() -> None:
    tracker = OrderTracker()
    trade = {"id": "t1", "order": "F1", "side": "sell", "price": 0.08, "amount": 5.0}
    fill = tracker.fill_from_trade(trade, 1.0)
    assert fill is not None and fill.client_id == ""  # someone else's order, as before
    tracker.ioc_sending("h2")
    assert tracker.fill_from_trade({**trade, "id": "t3"}, 1.5) is None  # held back meanwhile
    tracker.ioc_failed("h2", outcome_unknown=False)
    assert not tracker.is_open("h2") and tracker.trades_due  # so it is read again
    assert tracker.fill_from_trade({**trade, "id": "t2"}, 2.0) is not None
