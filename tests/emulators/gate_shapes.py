"""Gate.io spot APIv4 values, errors and JSON shapes of the Gate emulator (no engine, no I/O).

:mod:`tests.emulators.gate_venue` keeps orders and fills in the shared matching engine
(:mod:`tests.emulators.matching`); this module holds what is Gate's own: the pair description
(:class:`GateMarket`, ``GET /spot/currency_pairs``), the error (:class:`GateError`, Gate's body
``{"label", "message"}``), read-only Gate views of orders and fills (:class:`GateOrder`,
:class:`GateFill`) and their JSON as Gate sends it and ccxt 4.5.90 parses it (``parse_order``,
``parse_trade``): numbers as plain decimal strings, times in seconds and milliseconds.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from tests.emulators.matching_types import Market, MatchingError, Reason

D = Decimal
ZERO = D(0)

#: ``text`` (client order id) rule from Gate's docs: ``t-`` + at most 28 bytes of [0-9A-Za-z_.-].
TEXT_RE = re.compile(r"^t-[0-9A-Za-z_.\-]{1,28}$")
#: ``text`` Gate stores for an order placed through APIv4 without a user ``text``.
DEFAULT_TEXT = "apiv4"
POC_MODES = ("reject", "cancel")
#: First book update id of every pair (ids only grow from there, across restarts too).
FIRST_BOOK_UPDATE_ID = 1000
#: Step of a market buy's quote ``amount``: Gate checks no precision on it.
_FUNDS_STEP = D("1e-12")

_DEFAULT_MIN_BASE = D("0.01")
_DEFAULT_MIN_QUOTE = D("1")
_DEFAULT_FEE_RATE = D("0.002")


class GateError(Exception):
    """A Gate API error: HTTP ``status`` and the body ``{"label": label, "message": message}``."""

    def __init__(self, status: int, label: str, message: str) -> None:
        super().__init__(f"{status} {label}: {message}")
        self.status = status
        self.label = label
        self.message = message


def refused(exc: MatchingError) -> GateError:
    """The matching engine's refusal as Gate's error (Gate's own checks run before it)."""
    reason = exc.reason
    if reason == Reason.INSUFFICIENT_BALANCE:
        return GateError(400, "BALANCE_NOT_ENOUGH", "Not enough balance")
    if reason == Reason.WOULD_CROSS:
        return GateError(
            400, "POC_FILL_IMMEDIATELY", "Order would match and take immediately so its cancelled"
        )
    if reason in (Reason.BAD_PRICE_STEP, Reason.BAD_SIZE_STEP):
        return GateError(400, "INVALID_PRECISION", exc.message)
    if reason == Reason.BELOW_MIN_SIZE:
        return GateError(400, "AMOUNT_TOO_LITTLE", exc.message)
    if reason == Reason.UNKNOWN_ORDER:
        return GateError(404, "ORDER_NOT_FOUND", "Order not found")
    return GateError(400, "INVALID_PARAM_VALUE", exc.message)


def fmt(value: Decimal) -> str:
    """Gate's decimal string: plain notation, no trailing zeros (``"0"`` for zero)."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def decimals_of(value: Decimal) -> int:
    """Number of decimal places ``value`` really uses (``1.50`` -> 1, ``100`` -> 0)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_decimal(value: object) -> Decimal:
    """Decimal from a str/int/float/Decimal (floats via ``str`` to avoid binary noise)."""
    return value if isinstance(value, Decimal) else D(str(value))


@dataclass(frozen=True)
class GateMarket:
    """One spot currency pair as Gate's ``GET /spot/currency_pairs`` describes it.

    ``precision`` is the price scale (decimals), ``amount_precision`` the amount scale; fee rates
    are fractions (0.002 = 0.2 %). Gate serves ``fee`` (the taker rate) in percent; ccxt reads it
    for both maker and taker.
    """

    id: str = "KAS_USDT"
    base: str = "KAS"
    quote: str = "USDT"
    precision: int = 6
    amount_precision: int = 2
    min_base_amount: Decimal = _DEFAULT_MIN_BASE
    min_quote_amount: Decimal = _DEFAULT_MIN_QUOTE
    max_quote_amount: Decimal | None = None
    maker_fee_rate: Decimal = _DEFAULT_FEE_RATE
    taker_fee_rate: Decimal = _DEFAULT_FEE_RATE
    trade_status: str = "tradable"
    base_name: str = "Kaspa"
    quote_name: str = "Tether"

    @property
    def tick(self) -> Decimal:
        """Price tick, ``10**-precision``."""
        return D(1).scaleb(-self.precision)

    @property
    def lot(self) -> Decimal:
        """Amount step, ``10**-amount_precision``."""
        return D(1).scaleb(-self.amount_precision)

    def engine_market(self) -> Market:
        """The matching engine's market (fees in the currency received, as on Gate's spot)."""
        return Market(
            symbol=self.id,
            base=self.base,
            quote=self.quote,
            tick=self.tick,
            lot=self.lot,
            min_size=self.min_base_amount,
            min_notional=self.min_quote_amount,
            maker_fee=self.maker_fee_rate,
            taker_fee=self.taker_fee_rate,
            funds_step=_FUNDS_STEP,
            fee_in="received",
        )

    def pair_json(self) -> dict[str, Any]:
        """The ``GET /spot/currency_pairs`` entry."""
        out: dict[str, Any] = {
            "id": self.id,
            "base": self.base,
            "base_name": self.base_name,
            "quote": self.quote,
            "quote_name": self.quote_name,
            "fee": fmt(self.taker_fee_rate * 100),
            "min_base_amount": fmt(self.min_base_amount),
            "min_quote_amount": fmt(self.min_quote_amount),
            "amount_precision": self.amount_precision,
            "precision": self.precision,
            "trade_status": self.trade_status,
            "sell_start": 1600000000,
            "buy_start": 1600000000,
            "delisting_time": 0,
            "type": "normal",
            "trade_url": f"https://www.gate.com/trade/{self.id}",
            "st_tag": False,
        }
        if self.max_quote_amount is not None:
            out["max_quote_amount"] = fmt(self.max_quote_amount)
        return out


DEFAULT_MARKETS: tuple[GateMarket, ...] = (GateMarket(),)
DEFAULT_BALANCES: Mapping[str, Decimal] = {"KAS": D("100000"), "USDT": D("10000")}


@dataclass(frozen=True)
class GateOrder:
    """An order as Gate shows it (a view of the engine's order, see ``GateVenue.view``).

    ``amount`` and ``left`` are base, or quote for a market buy; ``price`` is 0 for a market
    order; ``seq`` is the order's place in time (an amend that loses the queue place renews it).
    """

    id: str
    text: str
    pair: str
    side: str  # buy | sell
    type: str  # limit | market
    tif: str  # gtc | ioc | poc | fok
    price: Decimal
    amount: Decimal
    left: Decimal
    seq: int
    create_ms: int
    update_ms: int
    account: str = "spot"
    filled_amount: Decimal = ZERO
    filled_total: Decimal = ZERO
    fee: Decimal = ZERO
    locked: Decimal = ZERO  # what the order still holds locked in the account
    status: str = "open"  # open | closed | cancelled
    finish_as: str = "open"
    finish_ms: int | None = None
    amend_text: str = "-"  # the last amend's ``amend_text``

    @property
    def is_open(self) -> bool:
        """Still resting (or being matched)."""
        return self.status == "open"


@dataclass(frozen=True)
class GateFill:
    """One of the account's fills (a ``GET /spot/my_trades`` entry)."""

    id: str
    order_id: str
    text: str
    pair: str
    side: str
    role: str  # maker | taker
    amount: Decimal
    price: Decimal
    fee: Decimal
    fee_currency: str
    time_ms: float
    sequence_id: int


@dataclass(frozen=True)
class BookUpdate:
    """The merged book of ``pair`` changed: its update id is now ``update_id``.

    ``bids`` / ``asks`` are the changed levels ``(price, new size)``, size 0 for a level that
    went away, as Gate's ``spot.order_book_update`` sends them.
    """

    pair: str
    update_id: int
    time_ms: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]


#: A side of a merged book: price -> total size.
Levels = dict[Decimal, Decimal]


def level_changes(old: Levels, new: Levels) -> tuple[tuple[Decimal, Decimal], ...]:
    """Levels of ``new`` that differ from ``old``, and ``(price, 0)`` for those gone."""
    changed = [(p, s) for p, s in new.items() if old.get(p) != s]
    changed += [(p, ZERO) for p in old if p not in new]
    return tuple(sorted(changed))


def order_json(order: GateOrder, market: GateMarket) -> dict[str, Any]:
    """Gate's spot order (``FULL`` action mode)."""
    fee_currency = market.base if order.side == "buy" else market.quote
    rebate_currency = market.quote if order.side == "buy" else market.base
    out: dict[str, Any] = {
        "id": order.id,
        "text": order.text,
        "amend_text": order.amend_text,
        "create_time": str(order.create_ms // 1000),
        "update_time": str(order.update_ms // 1000),
        "create_time_ms": order.create_ms,
        "update_time_ms": order.update_ms,
        "status": order.status,
        "currency_pair": order.pair,
        "type": order.type,
        "account": order.account,
        "side": order.side,
        "amount": fmt(order.amount),
        "price": fmt(order.price),
        "time_in_force": order.tif,
        "iceberg": "0",
        "left": fmt(order.left),
        "filled_amount": fmt(order.filled_amount),
        "fill_price": fmt(order.filled_total),
        "filled_total": fmt(order.filled_total),
        "fee": fmt(order.fee),
        "fee_currency": fee_currency,
        "point_fee": "0",
        "gt_fee": "0",
        "gt_maker_fee": "0",
        "gt_taker_fee": "0",
        "gt_discount": False,
        "rebated_fee": "0",
        "rebated_fee_currency": rebate_currency,
        "stp_id": 0,
        "stp_act": "-",
        "finish_as": order.finish_as,
    }
    if order.filled_amount > 0:
        out["avg_deal_price"] = fmt(order.filled_total / order.filled_amount)
    return out


def fill_json(fill: GateFill) -> dict[str, Any]:
    """Gate's ``GET /spot/my_trades`` entry."""
    return {
        "id": fill.id,
        "create_time": str(int(fill.time_ms // 1000)),
        "create_time_ms": f"{fill.time_ms:.3f}",
        "currency_pair": fill.pair,
        "side": fill.side,
        "role": fill.role,
        "amount": fmt(fill.amount),
        "price": fmt(fill.price),
        "order_id": fill.order_id,
        "fee": fmt(fill.fee),
        "fee_currency": fill.fee_currency,
        "point_fee": "0",
        "gt_fee": "0",
        "amend_text": "-",
        "sequence_id": str(fill.sequence_id),
        "text": fill.text,
        "deal": fmt(fill.amount * fill.price),
    }
