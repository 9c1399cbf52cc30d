"""ccxt exceptions -> kasmm errors: every mapping row, exchange codes, and scrubbed messages.

Exchange-specific rows are produced by the exchange's own ``handle_errors`` from a response body,
so they pin what ccxt 4.5.90 really raises (MEXC's ``-2011`` is a ``BadRequest``, Gate's
``ORDER_CLOSED`` an ``InvalidOrder``), not what one would guess.
"""

from __future__ import annotations

import json
from typing import Any

import ccxt.async_support as ccxt
import pytest
from pydantic import SecretStr

from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RateLimited,
    RequestTimedOut,
    TransientVenueError,
    VenueError,
)
from kasmm.venues.ccxt.errors import CLASS_MAP, classify, exchange_code, scrub, translate

# --- ccxt class rows: every row of CLASS_MAP and the classes it covers by inheritance ----------

CLASS_ROWS: list[tuple[type[Exception], type[VenueError]]] = [
    (ccxt.RequestTimeout, RequestTimedOut),
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.NetworkError, TransientVenueError),
    (ccxt.ExchangeNotAvailable, TransientVenueError),
    (ccxt.OnMaintenance, TransientVenueError),
    (ccxt.InvalidNonce, TransientVenueError),
    (ccxt.OperationFailed, TransientVenueError),
    (ccxt.BadResponse, TransientVenueError),
    (ccxt.NullResponse, TransientVenueError),
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.InvalidOrder, OrderRejected),
    (ccxt.DuplicateOrderId, OrderRejected),
    (ccxt.OrderImmediatelyFillable, PostOnlyWouldCross),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.AuthenticationError, AuthenticationFailed),
    (ccxt.PermissionDenied, AuthenticationFailed),
    (ccxt.AccountSuspended, AuthenticationFailed),
    (ccxt.AccountNotEnabled, AuthenticationFailed),
    (ccxt.BadSymbol, FatalVenueError),
    (ccxt.NotSupported, FatalVenueError),
    (ccxt.BadRequest, FatalVenueError),
    (ccxt.ExchangeError, FatalVenueError),
    (ccxt.ArgumentsRequired, FatalVenueError),
    (ccxt.BaseError, FatalVenueError),
]


@pytest.mark.parametrize(("ccxt_class", "expected"), CLASS_ROWS, ids=lambda v: v.__name__)
def test_ccxt_class_maps_to_kasmm_class(
    ccxt_class: type[Exception], expected: type[VenueError]
) -> None:
    assert classify(ccxt_class("mexc something failed"), "mexc") is expected


def test_every_class_map_row_is_covered() -> None:
    covered = {row[0] for row in CLASS_ROWS}
    assert {ccxt_class for ccxt_class, _ in CLASS_MAP} <= covered


@pytest.mark.parametrize(
    ("exc", "expected"),
    [
        (TimeoutError(), RequestTimedOut),
        (ConnectionResetError(), TransientVenueError),
        (KeyError("data"), FatalVenueError),
    ],
    ids=["timeout", "oserror", "other"],
)
def test_non_ccxt_exceptions(exc: Exception, expected: type[VenueError]) -> None:
    assert classify(exc, "gate") is expected


def test_post_only_hint_in_an_invalid_order_message() -> None:
    exc = ccxt.InvalidOrder('bingx {"code":100400,"msg":"PostOnly order would immediately match"}')
    assert classify(exc, "bingx") is PostOnlyWouldCross


# --- exchange bodies through ccxt's own handle_errors -----------------------------------------


def raised_by(exchange_id: str, status: int, body: dict[str, Any]) -> Exception:
    """The exception ccxt raises for ``body`` (as ``fetch`` would, from ``handle_errors``)."""
    exchange = getattr(ccxt, exchange_id)()
    text = json.dumps(body)
    url = "https://api.example.com/api/v3/order?symbol=KASUSDT&signature=deadbeef"
    try:
        exchange.handle_errors(status, "", url, "POST", {}, text, body, {}, None)
        exchange.handle_http_status_code(status, "", url, "POST", text)
    except Exception as exc:
        return exc
    raise AssertionError(f"{exchange_id} raised nothing for {body}")


EXCHANGE_ROWS: list[tuple[str, int, dict[str, Any], type[Exception], type[VenueError]]] = [
    # MEXC: ccxt's class is too generic; the code decides.
    ("mexc", 400, {"code": -2011, "msg": "Unknown order sent."}, ccxt.BadRequest, OrderNotFound),
    (
        "mexc",
        400,
        {"code": -2013, "msg": "Order does not exist."},
        ccxt.ExchangeError,
        OrderNotFound,
    ),
    (
        "mexc",
        400,
        {"code": 30002, "msg": "The minimum transaction volume cannot be less than:1USDT"},
        ccxt.InvalidOrder,
        OrderRejected,
    ),
    (
        "mexc",
        400,
        {"code": 30004, "msg": "Insufficient position"},
        ccxt.InsufficientFunds,
        InsufficientFunds,
    ),
    (
        "mexc",
        400,
        {"code": 700002, "msg": "Signature for this request is not valid."},
        ccxt.AuthenticationError,
        AuthenticationFailed,
    ),
    ("mexc", 429, {"code": 429, "msg": "Too Many Requests"}, ccxt.RateLimitExceeded, RateLimited),
    (
        "mexc",
        400,
        {"code": -2010, "msg": "Duplicate order sent."},
        ccxt.ExchangeError,
        OrderRejected,
    ),
    ("mexc", 400, {"code": 400, "msg": "price scale is invalid"}, ccxt.BadRequest, OrderRejected),
    ("mexc", 400, {"code": -1121, "msg": "Invalid symbol."}, ccxt.BadSymbol, FatalVenueError),
    (
        "mexc",
        400,
        {"code": 700003, "msg": "Timestamp outside recvWindow"},
        ccxt.InvalidNonce,
        TransientVenueError,
    ),
    # Gate: the label decides where ccxt's class is imprecise.
    (
        "gate",
        400,
        {"label": "POC_FILL_IMMEDIATELY", "message": "Order would match"},
        ccxt.OrderImmediatelyFillable,
        PostOnlyWouldCross,
    ),
    (
        "gate",
        400,
        {"label": "ORDER_CLOSED", "message": "Order already closed"},
        ccxt.InvalidOrder,
        OrderNotFound,
    ),
    (
        "gate",
        400,
        {"label": "ORDER_CANCELLED", "message": "Order already cancelled"},
        ccxt.InvalidOrder,
        OrderNotFound,
    ),
    (
        "gate",
        404,
        {"label": "ORDER_NOT_FOUND", "message": "Order not found"},
        ccxt.OrderNotFound,
        OrderNotFound,
    ),
    (
        "gate",
        400,
        {"label": "BALANCE_NOT_ENOUGH", "message": "Not enough balance"},
        ccxt.InsufficientFunds,
        InsufficientFunds,
    ),
    (
        "gate",
        429,
        {"label": "TOO_MANY_REQUESTS", "message": "Too many requests"},
        ccxt.RateLimitExceeded,
        RateLimited,
    ),
    (
        "gate",
        401,
        {"label": "INVALID_SIGNATURE", "message": "Signature mismatch"},
        ccxt.AuthenticationError,
        AuthenticationFailed,
    ),
    (
        "gate",
        400,
        {"label": "INVALID_PRECISION", "message": "Invalid precision"},
        ccxt.InvalidOrder,
        OrderRejected,
    ),
    (
        "gate",
        500,
        {"label": "SERVER_ERROR", "message": "Internal"},
        ccxt.ExchangeNotAvailable,
        TransientVenueError,
    ),
    # KuCoin
    (
        "kucoin",
        400,
        {"code": "400100", "msg": "order_not_exist_or_not_allow_to_cancel"},
        ccxt.OrderNotFound,
        OrderNotFound,
    ),
    (
        "kucoin",
        429,
        {"code": "429000", "msg": "Too many requests."},
        ccxt.RateLimitExceeded,
        RateLimited,
    ),
    (
        "kucoin",
        400,
        {"code": "400100", "msg": "Order size increment invalid."},
        ccxt.InvalidOrder,
        OrderRejected,
    ),
    (
        "kucoin",
        401,
        {"code": "400005", "msg": "Invalid KC-API-SIGN"},
        ccxt.AuthenticationError,
        AuthenticationFailed,
    ),
    # BingX
    (
        "bingx",
        200,
        {"code": 100202, "msg": "Insufficient balance"},
        ccxt.InsufficientFunds,
        InsufficientFunds,
    ),
    (
        "bingx",
        200,
        {"code": 100001, "msg": "Signature verification failed"},
        ccxt.AuthenticationError,
        AuthenticationFailed,
    ),
    # Found by the BingX emulator's contract run: a cancel of a gone order is a plain 100400,
    # and ccxt raises the rate limit (100410) as OperationFailed, a class the code map must
    # still win over.
    (
        "bingx",
        200,
        {
            "code": 100400,
            "msg": "the order you want to cancel is FILLED or CANCELLED already, or is not a "
            "valid order id ,please verify",
        },
        ccxt.BadRequest,
        OrderNotFound,
    ),
    (
        "bingx",
        200,
        {"code": 100400, "msg": "Invalid parameters, quantity must be positive"},
        ccxt.BadRequest,
        FatalVenueError,
    ),
    (
        "bingx",
        200,
        {"code": 100410, "msg": "The current system is busy, please try again later"},
        ccxt.OperationFailed,
        RateLimited,
    ),
    (
        "bingx",
        200,
        {"code": 100421, "msg": "cancel fail, order not exist"},
        ccxt.BadSymbol,
        OrderNotFound,
    ),
    (
        "bingx",
        200,
        {"code": 100421, "msg": "Null timestamp or timestamp mismatch"},
        ccxt.BadSymbol,
        TransientVenueError,
    ),
]


@pytest.mark.parametrize(
    ("exchange_id", "status", "body", "ccxt_class", "expected"),
    EXCHANGE_ROWS,
    ids=[f"{r[0]}-{r[2].get('code', r[2].get('label'))}" for r in EXCHANGE_ROWS],
)
def test_exchange_answer_maps_to_kasmm_class(
    exchange_id: str,
    status: int,
    body: dict[str, Any],
    ccxt_class: type[Exception],
    expected: type[VenueError],
) -> None:
    exc = raised_by(exchange_id, status, body)
    assert type(exc) is ccxt_class  # what ccxt 4.5.90 raises, before kasmm looks at it
    assert classify(exc, exchange_id) is expected


def test_code_parsing() -> None:
    assert exchange_code('mexc {"code": -2011, "msg": "x"}') == "-2011"
    assert exchange_code('kucoin {"code":"400100","msg":"x"}') == "400100"
    assert exchange_code("mexc POST https://api.mexc.com/api/v3/order") is None


# --- messages never carry secrets -------------------------------------------------------------

API_KEY = "mx0vglAPIKEYcanary42"
SECRET = "c4n4rySECRETvalue0123456789abcdef"
PASSWORD = "pa55phraseCANARY"
SECRETS = [SecretStr(API_KEY), SecretStr(SECRET), SecretStr(PASSWORD)]

LEAKY = [
    ccxt.RequestTimeout(
        "mexc POST https://api.mexc.com/api/v3/order?symbol=KASUSDT&side=BUY&quantity=10"
        "&newClientOrderId=ab1&timestamp=1795596956717&recvWindow=5000"
        "&signature=5d00126b3b6066d02d12b2737ece491ccc0930a47649fc5693cdde4c38d6a4d0"
    ),
    ccxt.ExchangeNotAvailable(
        f"bingx GET https://open-api.bingx.com/openApi/spot/v1/trade/query?apiKey={API_KEY}"
        "&signature=abcdef0123"
    ),
    ccxt.AuthenticationError(
        f'kucoin {{"code":"400003","msg":"KC-API-KEY not exists","apiKey":"{API_KEY}"}}'
    ),
    ccxt.ExchangeError(f"gate secret={SECRET} password: {PASSWORD} KEY={API_KEY}"),
    ccxt.BadRequest(f"kucoin passphrase {PASSWORD} was refused for key {API_KEY}"),
]


@pytest.mark.parametrize("exc", LEAKY, ids=lambda e: type(e).__name__)
def test_translated_messages_hold_no_secret_signature_or_query(exc: Exception) -> None:
    original = str(exc)
    translated = translate(exc, "mexc", action="place_order", secrets=SECRETS)
    for text in (str(translated), str(exc), repr(exc)):  # the cause is scrubbed in place too
        for secret in (API_KEY, SECRET, PASSWORD):
            assert secret not in text
        assert "signature=5d00" not in text and "signature=abcdef" not in text
        assert "recvWindow=5000" not in text
    assert original != str(exc) or "?" not in original


def test_translate_keeps_the_cause_and_names_the_action() -> None:
    exc = ccxt.OrderNotFound('gate {"label":"ORDER_NOT_FOUND"}')
    try:
        raise translate(exc, "gate", action="cancel_order") from exc
    except OrderNotFound as err:
        assert err.__cause__ is exc
        assert str(err).startswith("gate cancel_order: OrderNotFound:")


def test_scrub_keeps_the_useful_part() -> None:
    text = scrub('mexc {"code":-2011,"msg":"Unknown order sent."}')
    assert text == 'mexc {"code":-2011,"msg":"Unknown order sent."}'
    assert scrub("GET https://x.io/api/v3/depth?symbol=KASUSDT") == "GET https://x.io/api/v3/depth"
    assert len(scrub("x" * 5_000)) < 500
