"""Per-exchange request shapes, recorded from unmodified ccxt with its HTTP layer replaced.

What each exchange receives for a post-only order with a client id, the dead man's switch calls,
the spot-only market load, the KuCoin passphrase header and the ``rest_url`` override. These pin
the facts in ``kasmm/venues/ccxt/exchanges.py`` against ccxt 4.5.90.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
import structlog
import structlog.testing

from kasmm.clock import RealClock
from kasmm.config.checks import check_ws_url
from kasmm.config.schema import CcxtVenueConfig
from kasmm.core.types import ClientOrderId, OrderRequest, Side
from kasmm.errors import FatalVenueError
from kasmm.limiter import TokenBucket
from kasmm.venues.ccxt.client import build_exchange, configure_exchange
from kasmm.venues.ccxt.exchanges import (
    FLAVOURS,
    client_id_from_native,
    default_rate_budget,
    flavour_for,
    native_client_id,
    rest_urls,
    valid_client_id,
    ws_urls,
)
from tests.ccxt_fakes import CREDENTIALS, PASSWORD, FakeHttp, fake_venue, venue_config
from tests.support import make_profile

pytestmark = pytest.mark.anyio

D = Decimal
REQUEST = OrderRequest(ClientOrderId("kab12c0001"), Side.BUY, D("0.081"), D("100"))

CREATE_ANSWERS: dict[str, tuple[str, str, Any]] = {
    "kucoin": (
        "POST",
        "/api/v1/hf/orders",
        {"code": "200000", "data": {"orderId": "670fd33bf9406e0007ab3945", "clientOid": "x"}},
    ),
    "bingx": (
        "POST",
        "/openApi/spot/v1/trade/order",
        {
            "code": 0,
            "msg": "",
            "data": {
                "symbol": "KAS-USDT",
                "orderId": 1850000000000000001,
                "transactTime": 1700000000000,
                "price": "0.081",
                "origQty": "100",
                "executedQty": "0",
                "cummulativeQuoteQty": "0",
                "status": "PENDING",
                "type": "LIMIT",
                "side": "BUY",
                "clientOrderID": "kab12c0001",
            },
        },
    ),
    "gate": (
        "POST",
        "/api/v4/spot/orders",
        {
            "id": "100000000001",
            "text": "t-kab12c0001",
            "currency_pair": "KAS_USDT",
            "type": "limit",
            "account": "spot",
            "side": "buy",
            "amount": "100",
            "price": "0.081",
            "time_in_force": "poc",
            "left": "100",
            "filled_total": "0",
            "status": "open",
            "create_time_ms": 1700000000000,
        },
    ),
    "mexc": (
        "POST",
        "/api/v3/order",
        {
            "symbol": "KASUSDT",
            "orderId": "C02__1",
            "orderListId": -1,
            "price": "0.081",
            "origQty": "100",
            "type": "LIMIT_MAKER",
            "side": "BUY",
            "transactTime": 1700000000000,
        },
    ),
}


async def placed_request(exchange: str) -> Any:
    """The create request the venue sends for :data:`REQUEST` on ``exchange``."""
    http = FakeHttp()
    method, path, answer = CREATE_ANSWERS[exchange]
    http.route(method, path, answer)
    venue = fake_venue(exchange, http)
    await venue.connect()
    order = await venue.place_order(REQUEST)
    await venue.close()
    assert order.client_id == REQUEST.client_id and order.venue_id
    (request,) = http.to(method, path)
    return request


async def test_kucoin_order_shape_and_passphrase_header() -> None:
    request = await placed_request("kucoin")
    assert request.path == "/api/v1/hf/orders"  # hf: no /api/ua/v1/account/mode probe first
    assert request.json == {
        "clientOid": "kab12c0001",
        "side": "buy",
        "symbol": "KAS-USDT",
        "type": "limit",
        "size": "100",
        "price": "0.081",
        "postOnly": True,
    }
    assert request.headers["KC-API-PASSPHRASE"]  # key version 2: HMAC of the passphrase
    assert request.headers["KC-API-PASSPHRASE"] != PASSWORD
    assert PASSWORD not in str(request.headers) and PASSWORD not in (request.body or "")


async def test_bingx_order_shape() -> None:
    request = await placed_request("bingx")
    assert request.path == "/openApi/spot/v1/trade/order"
    query = request.query
    assert query["newClientOrderId"] == "kab12c0001"
    assert query["timeInForce"] == "PostOnly"
    assert (query["type"], query["side"], query["symbol"]) == ("LIMIT", "BUY", "KAS-USDT")
    assert (query["price"], query["quantity"]) == ("0.081", "100")
    assert "X-BX-APIKEY" in request.headers


async def test_gate_order_shape() -> None:
    request = await placed_request("gate")
    assert request.json == {
        "currency_pair": "KAS_USDT",
        "type": "limit",
        "account": "spot",
        "side": "buy",
        "amount": "100",
        "price": "0.081",
        "time_in_force": "poc",
        "text": "t-kab12c0001",
    }


async def test_mexc_order_shape() -> None:
    request = await placed_request("mexc")
    query = request.query
    assert query["type"] == "LIMIT_MAKER" and query["newClientOrderId"] == "kab12c0001"
    assert (query["price"], query["quantity"]) == ("0.081", "100")


@pytest.mark.parametrize("exchange", sorted(FLAVOURS))
def test_flavour_post_only_and_client_id_field_are_what_ccxt_sends(exchange: str) -> None:
    flavour = flavour_for(exchange)
    expected = {
        "mexc": ("newClientOrderId", "type=LIMIT_MAKER"),
        "gate": ("text", "time_in_force=poc"),
        "kucoin": ("clientOid", "postOnly=true"),
        "bingx": ("newClientOrderId", "timeInForce=PostOnly"),
    }[exchange]
    assert (flavour.client_id_field, flavour.post_only_as) == expected


# --- dead man's switch --------------------------------------------------------------------

DMS: dict[str, tuple[str, Any]] = {
    "bingx": (
        "/openApi/spot/v1/trade/cancelAllAfter",
        {"code": 0, "msg": "", "data": {"triggerTime": 1700000060000, "status": "ACTIVATED"}},
    ),
    "gate": ("/api/v4/spot/countdown_cancel_all", {"triggerTime": "1700000060000"}),
    "kucoin": (
        "/api/v1/hf/orders/dead-cancel-all",
        {"code": "200000", "data": {"currentTime": 1700000000, "triggerTime": 1700000060}},
    ),
}


@pytest.mark.parametrize("exchange", sorted(DMS))
async def test_dead_mans_switch_arm_and_disarm(exchange: str) -> None:
    http = FakeHttp()
    path, answer = DMS[exchange]
    http.route("POST", path, answer)
    venue = fake_venue(exchange, http, dead_man_switch_s=60.0)
    await venue.connect()
    assert await venue.refresh_dead_man_switch() is True
    await venue.close()
    arm, disarm = http.to("POST", path)
    if exchange == "bingx":
        assert (arm.query["type"], arm.query["timeOut"]) == ("ACTIVATE", "60")
        assert (disarm.query["type"], disarm.query["timeOut"]) == ("CLOSE", "0")
    elif exchange == "gate":
        assert arm.json == {"timeout": 60, "currency_pair": "KAS_USDT"}
        assert disarm.json == {"timeout": 0, "currency_pair": "KAS_USDT"}
    else:
        assert arm.json == {"timeout": 60, "symbols": "KAS-USDT"}
        assert disarm.json == {"timeout": -1, "symbols": "KAS-USDT"}


async def test_mexc_has_no_dead_mans_switch_and_says_so_once() -> None:
    http = FakeHttp()
    venue = fake_venue("mexc", http, dead_man_switch_s=60.0)
    await venue.connect()
    with structlog.testing.capture_logs() as logs:
        assert await venue.refresh_dead_man_switch() is False
        assert await venue.refresh_dead_man_switch() is False
    await venue.close()
    assert http.requests == []
    assert [e["event"] for e in logs].count("dead_mans_switch_unavailable") == 1


# --- market loading: spot only --------------------------------------------------------------

MARKET_ANSWERS: dict[str, Any] = {
    "kucoin": {"code": "200000", "data": []},
    "bingx": {"code": 0, "data": {"symbols": []}},
    "gate": [],
    "mexc": {"timezone": "CST", "serverTime": 1700000000000, "symbols": []},
}
SPOT_ONLY_PATHS: dict[str, set[str]] = {
    "kucoin": {"/api/v3/currencies", "/api/v2/symbols", "/api/v1/market/allTickers"},
    "bingx": {"/openApi/spot/v1/common/symbols"},
    "gate": {
        "/api/v4/spot/currencies",
        "/api/v4/margin/currency_pairs",
        "/api/v4/spot/currency_pairs",
    },
    "mexc": {"/api/v3/exchangeInfo"},
}


@pytest.mark.parametrize("exchange", sorted(SPOT_ONLY_PATHS))
async def test_market_load_is_spot_only(exchange: str) -> None:
    http = FakeHttp()
    http.route("GET", "", MARKET_ANSWERS[exchange])

    def unload(instance: Any) -> None:
        instance.markets = None
        instance.markets_by_id = None

    venue = fake_venue(exchange, http, prepare=unload)
    with pytest.raises(FatalVenueError, match="KAS/USDT"):  # the fake lists no markets
        await venue.connect()
    await venue.close()
    assert {r.path for r in http.requests} == SPOT_ONLY_PATHS[exchange]
    assert all(r.method == "GET" for r in http.requests)


@pytest.mark.parametrize("exchange", sorted(FLAVOURS))
def test_constructor_options(exchange: str) -> None:
    instance = build_exchange(
        venue_config(exchange), CREDENTIALS, flavour_for(exchange), websocket=False
    )
    options = instance.options
    assert options["maxRetriesOnFailure"] == 0
    assert instance.enableRateLimit is True and instance.timeout == 10_000
    if exchange == "kucoin":
        assert (options["hf"], options["uta"]) == (True, False)
    if exchange == "gate":
        assert options["unifiedAccount"] is False
    if exchange in ("gate", "kucoin"):
        assert options["fetchMarkets"]["types"] == ["spot"]


# --- rest_url --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exchange", "path"),
    [
        ("kucoin", "/api/v1/hf/orders"),
        ("bingx", "/openApi/spot/v1/trade/order"),
        ("gate", "/api/v4/spot/orders"),
        ("mexc", "/api/v3/order"),
    ],
)
async def test_rest_url_override_is_applied(exchange: str, path: str) -> None:
    http = FakeHttp()
    method, suffix, answer = CREATE_ANSWERS[exchange]
    http.route(method, suffix, answer)
    config = venue_config(exchange, rest_url="http://127.0.0.1:8999/")
    venue = fake_venue(exchange, http, config=config)
    await venue.connect()
    await venue.place_order(REQUEST)
    await venue.close()
    (request,) = http.requests
    assert request.url.startswith(f"http://127.0.0.1:8999{path}")


def test_rest_url_replaces_whole_values_and_keeps_suffixes() -> None:
    bingx = {"spot": "https://open-api.{hostname}/openApi", "swap": "https://x/{hostname}"}
    out = rest_urls(flavour_for("bingx"), bingx, "http://h:1")
    assert out["spot"] == "http://h:1/openApi" and out["swap"] == bingx["swap"]
    bingx_pro = {**bingx, "user": "https://open-api.{hostname}/openApi"}  # the listen-key calls
    assert rest_urls(flavour_for("bingx"), bingx_pro, "http://h:1")["user"] == "http://h:1/openApi"
    gate = {"public": {"spot": "a", "margin": "b"}, "private": {"spot": "c"}}
    assert rest_urls(flavour_for("gate"), gate, "http://h:1/api/v4") == {
        "public": {"spot": "http://h:1/api/v4", "margin": "http://h:1/api/v4"},
        "private": {"spot": "http://h:1/api/v4"},
    }
    mexc = rest_urls(flavour_for("mexc"), {"spot": {}, "contract": {}}, "http://h:1")
    assert mexc["spot"] == {"public": "http://h:1", "private": "http://h:1"}
    assert mexc["contract"]["public"] == "http://h:1/api/v1/contract"


# --- ws_url ----------------------------------------------------------------------------------

#: Where each ``ccxt.pro`` exchange reads its spot websocket URL (ccxt/pro/<exchange>.py 4.5.90),
#: and what it appends for a private stream.
WS_URL_READ_BY_PRO = {
    "gate": (lambda api: api["spot"]),
    "mexc": (lambda api: api["ws"]["spot"]),
    "bingx": (lambda api: api["ws"]["spot"]),
}


@pytest.mark.parametrize("exchange", sorted(WS_URL_READ_BY_PRO))
def test_ws_url_replaces_the_spot_websocket_url_ccxt_pro_reads(exchange: str) -> None:
    config = venue_config(exchange, ws_url="ws://127.0.0.1:8998/ws", rest_url="http://h:1")
    flavour = flavour_for(exchange)
    instance = build_exchange(config, CREDENTIALS, flavour, websocket=True)
    before = instance.urls["api"]
    configure_exchange(instance, config, flavour, TokenBucket(10, 10, RealClock()))
    api = instance.urls["api"]
    assert WS_URL_READ_BY_PRO[exchange](api) == "ws://127.0.0.1:8998/ws"
    assert WS_URL_READ_BY_PRO[exchange](before) != "ws://127.0.0.1:8998/ws"
    # Nothing but the spot websocket (and the REST sections) changed: swap streams keep theirs.
    if exchange != "gate":
        assert {k: v for k, v in api["ws"].items() if k != "spot"} == {
            k: v for k, v in before["ws"].items() if k != "spot"
        }
    else:
        assert api["swap"] == before["swap"]


def test_ws_url_is_refused_where_the_endpoint_comes_from_the_rest_api() -> None:
    with pytest.raises(ValueError, match="kucoin"):
        ws_urls(flavour_for("kucoin"), {"ws": {"spot": "wss://x"}}, "ws://h:1")
    profile = make_profile(name="p", venue=venue_config("kucoin", ws_url="ws://h:1").model_dump())
    assert check_ws_url(profile) == [
        (
            ("venue", "ws_url"),
            "kucoin takes its websocket endpoint from the REST API's answer (bullet token), so "
            "it follows rest_url; remove ws_url",
        )
    ]
    for exchange in ("gate", "mexc", "bingx"):
        ok = make_profile(name="p", venue=venue_config(exchange, ws_url="wss://h/ws").model_dump())
        assert check_ws_url(ok) == []


def test_ws_url_must_be_a_websocket_url() -> None:
    with pytest.raises(ValueError, match="ws_url"):
        venue_config("gate", ws_url="http://127.0.0.1:1/ws")


# --- client ids, sandbox, budgets -------------------------------------------------------------


@pytest.mark.parametrize(
    ("client_id", "ok"),
    [
        ("kab12c0001", True),
        ("kab12_c0001", True),  # the prefix delimiter (BingX allows letters, digits and "_")
        ("a" * 24, True),
        ("a" * 25, False),
        ("", False),
        ("ct-never-placed", False),
        ("k_1", True),
        ("k.1", False),
        ("kéa1", False),
    ],
)
@pytest.mark.parametrize("exchange", sorted(FLAVOURS))
def test_client_id_validation(exchange: str, client_id: str, ok: bool) -> None:
    assert valid_client_id(flavour_for(exchange), client_id) is ok


def test_gate_client_ids_carry_t_prefix() -> None:
    gate = flavour_for("gate")
    assert native_client_id(gate, "kab1") == "t-kab1"
    assert client_id_from_native(gate, "t-kab1") == "kab1"
    assert client_id_from_native(gate, "apiv4") == "apiv4"
    assert client_id_from_native(flavour_for("mexc"), None) is None


@pytest.mark.parametrize("exchange", ["mexc", "kucoin", "bingx"])
def test_sandbox_refused_without_a_spot_testnet(exchange: str) -> None:
    with pytest.raises(FatalVenueError, match="sandbox"):
        build_exchange(
            venue_config(exchange, sandbox=True),
            CREDENTIALS,
            flavour_for(exchange),
            websocket=False,
        )


def test_gate_sandbox_switches_urls() -> None:
    instance = build_exchange(
        venue_config("gate", sandbox=True), CREDENTIALS, flavour_for("gate"), websocket=False
    )
    assert "testnet" in instance.urls["api"]["private"]["spot"]


def test_kucoin_needs_its_passphrase() -> None:
    config = CcxtVenueConfig.model_validate(
        {
            "type": "ccxt",
            "exchange": "kucoin",
            "credentials": {"api_key": "${K}", "secret": "${S}"},
        }
    )
    creds = type(CREDENTIALS)(CREDENTIALS.api_key, CREDENTIALS.secret, None)
    with pytest.raises(FatalVenueError, match="password"):
        build_exchange(config, creds, flavour_for("kucoin"), websocket=False)


@pytest.mark.parametrize("exchange", sorted(FLAVOURS))
def test_default_budget_matches_ccxt_rate_limit(exchange: str) -> None:
    budget = default_rate_budget(exchange)
    assert budget is not None and budget.source
    instance = build_exchange(
        venue_config(exchange), CREDENTIALS, flavour_for(exchange), websocket=False
    )
    assert budget.refill_per_s == pytest.approx(1000 / instance.rateLimit)
    assert budget.capacity >= 2 * budget.refill_per_s - 1e-9


def bingx_order(cid: str, oid: int) -> dict[str, Any]:
    return {
        "symbol": "KAS-USDT",
        "orderId": oid,
        "price": "0.2",
        "origQty": "100",
        "executedQty": "0",
        "cummulativeQuoteQty": "0",
        "status": "NEW",
        "type": "LIMIT",
        "side": "SELL",
        "time": 1700000000000,
        "updateTime": 1700000000000,
        "origQuoteOrderQty": "0",
        "clientOrderID": cid,
    }


async def test_bingx_cancel_all_batches_by_order_id_and_spares_foreign_orders() -> None:
    http = FakeHttp()
    listed = [bingx_order("ct1", 11), bingx_order("ct2", 12), bingx_order("zz1", 13)]
    listings = iter(
        [{"code": 0, "data": {"orders": listed}}, {"code": 0, "data": {"orders": listed[2:]}}]
    )
    http.route("GET", "/openApi/spot/v1/trade/openOrders", lambda _: next(listings))
    http.route(
        "POST",
        "/openApi/spot/v1/trade/cancelOrders",
        {"code": 0, "data": {"orders": listed[:2]}},
    )
    venue = fake_venue("bingx", http)
    await venue.connect()
    assert await venue.cancel_all("ct") == 2
    await venue.close()
    (batch,) = http.to("POST", "/cancelOrders")
    assert batch.query["orderIds"] == "11,12" and batch.query["symbol"] == "KAS-USDT"
    assert not http.to("POST", "/cancelOpenOrders")  # never the symbol-wide cancel
