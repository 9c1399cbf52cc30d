"""Gate.io spot APIv4 request bodies of the Gate emulator, checked as Gate checks them (no I/O).

:class:`~tests.emulators.gate_venue.GateVenue` hands each order, batch and countdown body here
first: what Gate refuses before it looks at the account (a missing or malformed field, a bad
``text``, too many decimals, an order too small or too large) is answered with Gate's label
(:class:`~tests.emulators.gate_shapes.GateError`) before anything reaches the matching engine.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from tests.emulators.gate_shapes import (
    DEFAULT_TEXT,
    TEXT_RE,
    ZERO,
    GateError,
    GateMarket,
    decimals_of,
    fmt,
)

#: Gate's batch limits: orders per pair in one ``batch_orders``, pairs per batch, cancels.
BATCH_ORDERS_PER_PAIR = 10
BATCH_PAIRS = 4
BATCH_CANCELS = 20
#: The shortest countdown Gate accepts (0 disarms).
MIN_COUNTDOWN_S = 5


@dataclass(frozen=True)
class PlaceRequest:
    """One checked ``POST /spot/orders`` body. ``amount`` is quote for a market buy."""

    market: GateMarket
    side: str
    type: str
    tif: str
    text: str
    amount: Decimal
    price: Decimal  # 0 for a market order

    @property
    def market_buy(self) -> bool:
        return self.type == "market" and self.side == "buy"

    @property
    def lock(self) -> tuple[str, Decimal]:
        """The currency and amount the order needs available."""
        if self.side == "sell":
            return self.market.base, self.amount
        return self.market.quote, self.amount if self.market_buy else self.amount * self.price


def page(rows: list[Any], number: int, limit: int) -> list[Any]:
    """Page ``number`` (from 1) of ``limit`` rows, or Gate's ``INVALID_PARAM_VALUE``."""
    if number < 1 or limit < 1:
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: page/limit")
    start = (number - 1) * limit
    return rows[start : start + limit]


def opt_str(body: Mapping[str, Any], key: str) -> str | None:
    """``body[key]`` when it is a string, None when absent, else ``INVALID_PARAM_VALUE``."""
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {key}")
    return value


def parse_positive(value: object, name: str) -> Decimal:
    """A finite positive decimal from a JSON string or number, or Gate's error for ``name``."""
    if value is None or value == "":
        raise GateError(400, "MISSING_REQUIRED_PARAM", f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    try:
        number = Decimal(str(value))
    except InvalidOperation:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}") from None
    if not number.is_finite() or number <= 0:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    return number


def check_precision(market: GateMarket, price: Decimal | None, amount: Decimal | None) -> None:
    """Gate's ``INVALID_PRECISION`` for a price or base amount with too many decimals."""
    if price is not None and decimals_of(price) > market.precision:
        raise GateError(
            400, "INVALID_PRECISION", f"Price precision of {market.id} is {market.precision}"
        )
    if amount is not None and decimals_of(amount) > market.amount_precision:
        raise GateError(
            400,
            "INVALID_PRECISION",
            f"Amount precision of {market.id} is {market.amount_precision}",
        )


def check_size(
    market: GateMarket, order_type: str, side: str, amount: Decimal, price: Decimal
) -> None:
    """Gate's minimum / maximum order size errors (checked before the balance)."""
    market_buy = order_type == "market" and side == "buy"
    if market_buy:
        cost: Decimal | None = amount
    elif order_type == "market":
        cost = None
    else:
        cost = amount * price
    if cost is not None and cost < market.min_quote_amount:
        # Gate's wording; ccxt maps INVALID_PARAM_VALUE to BadRequest.
        raise GateError(
            400,
            "INVALID_PARAM_VALUE",
            f"Your order size {fmt(cost)} {market.quote} is too small. "
            f"The minimum is {fmt(market.min_quote_amount)} {market.quote}",
        )
    if not market_buy and amount < market.min_base_amount:
        raise GateError(
            400,
            "AMOUNT_TOO_LITTLE",
            f"Your order size {fmt(amount)} {market.base} is too small. "
            f"The minimum is {fmt(market.min_base_amount)} {market.base}",
        )
    if market.max_quote_amount is not None and cost is not None and cost > market.max_quote_amount:
        raise GateError(
            400,
            "AMOUNT_TOO_MUCH",
            f"Your order size {fmt(cost)} {market.quote} is too large. "
            f"The maximum is {fmt(market.max_quote_amount)} {market.quote}",
        )


def parse_place(
    body: object, market_of: Callable[[str | None], GateMarket], *, batch: bool = False
) -> PlaceRequest:
    """A ``POST /spot/orders`` body (one element of ``batch_orders`` when ``batch``: ``text``
    is then required), checked in Gate's order; ``market_of`` resolves ``currency_pair``."""
    if not isinstance(body, dict):
        raise GateError(400, "INVALID_REQUEST_BODY", "request body must be a JSON object")
    market = market_of(opt_str(body, "currency_pair"))
    side = opt_str(body, "side")
    if side not in ("buy", "sell"):
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: side")
    order_type = opt_str(body, "type") or "limit"
    if order_type not in ("limit", "market"):
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: type")
    account = opt_str(body, "account") or "spot"
    if account != "spot":
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: account {account}")
    tif = opt_str(body, "time_in_force") or ("gtc" if order_type == "limit" else "ioc")
    if tif not in ("gtc", "ioc", "poc", "fok"):
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: time_in_force")
    if order_type == "market" and tif not in ("ioc", "fok"):
        raise GateError(
            400, "INVALID_PARAM_VALUE", "Only ioc and fok are supported when type=market"
        )
    text = opt_str(body, "text")
    if text is None or text == "":
        if batch:
            raise GateError(400, "INVALID_PARAM_VALUE", "text is required in batch orders")
        text = DEFAULT_TEXT
    elif not TEXT_RE.match(text):
        raise GateError(
            400,
            "INVALID_PARAM_VALUE",
            "invalid argument: text must start with t- and contain at most 28 "
            "characters of 0-9, A-Z, a-z, _, - or . after it",
        )
    amount = parse_positive(body.get("amount"), "amount")
    price = ZERO
    if order_type == "limit":
        price = parse_positive(body.get("price"), "price")
        check_precision(market, price, None)
    if not (order_type == "market" and side == "buy"):
        check_precision(market, None, amount)
    check_size(market, order_type, side, amount, price)
    return PlaceRequest(market, side, order_type, tif, text, amount, price)


def check_batch(body: object) -> list[dict[str, Any]]:
    """``POST /spot/batch_orders``: a non-empty array, at most 4 pairs and 10 orders per pair,
    one ``account`` for all (Gate refuses the whole batch otherwise)."""
    if not isinstance(body, list) or not body:
        raise GateError(400, "INVALID_REQUEST_BODY", "request body must be a non-empty array")
    per_pair: dict[str, int] = {}
    accounts = set()
    for item in body:
        if not isinstance(item, dict):
            raise GateError(400, "INVALID_REQUEST_BODY", "each order must be an object")
        pair = str(item.get("currency_pair"))
        per_pair[pair] = per_pair.get(pair, 0) + 1
        accounts.add(str(item.get("account") or "spot"))
    if len(per_pair) > BATCH_PAIRS:
        raise GateError(400, "TOO_MANY_CURRENCY_PAIRS", "Too many currency pairs in batch")
    if any(n > BATCH_ORDERS_PER_PAIR for n in per_pair.values()):
        raise GateError(400, "TOO_MANY_ORDERS", "Too many orders for one currency pair")
    if len(accounts) > 1:
        raise GateError(400, "MIXED_ACCOUNT_TYPE", "Mixed account types in batch")
    return body


def check_cancel_batch(body: object) -> list[Any]:
    """``POST /spot/cancel_batch_orders``: an array of at most 20 ``{currency_pair, id}``."""
    if not isinstance(body, list):
        raise GateError(400, "INVALID_REQUEST_BODY", "request body must be an array")
    if len(body) > BATCH_CANCELS:
        raise GateError(400, "TOO_MANY_ORDERS", "At most 20 orders per batch cancel")
    return body


def parse_countdown(body: object, market_of: Callable[[str | None], GateMarket]) -> tuple[int, str]:
    """``POST /spot/countdown_cancel_all`` ``{timeout, currency_pair?}``: (seconds, pair or
    ``""``); ``timeout`` 0 disarms, else at least 5 seconds."""
    if not isinstance(body, dict) or "timeout" not in body:
        raise GateError(400, "MISSING_REQUIRED_PARAM", "timeout is required")
    timeout = body["timeout"]
    if isinstance(timeout, bool) or not isinstance(timeout, int | str):
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: timeout")
    try:
        seconds = int(timeout)
    except ValueError:
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: timeout") from None
    pair = opt_str(body, "currency_pair") or ""
    if pair:
        market_of(pair)
    if seconds != 0 and seconds < MIN_COUNTDOWN_S:
        raise GateError(400, "INVALID_PARAM_VALUE", "timeout must be at least 5 seconds, or 0")
    return seconds, pair
