"""Values of the exchange-neutral matching engine (:mod:`tests.emulators.matching`).

Markets, balances, orders, fills, the events observers receive and the errors the engine raises,
split out so that adapters can import the shapes without the engine. Money is ``Decimal``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from decimal import Decimal
from enum import StrEnum
from typing import Any

D = Decimal
ZERO = D(0)
BUY, SELL = "buy", "sell"
LIMIT, MARKET = "limit", "market"
GTC, IOC, FOK, POST_ONLY = "gtc", "ioc", "fok", "post_only"
TIME_IN_FORCE = (GTC, IOC, FOK, POST_ONLY)
POST_ONLY_CROSS = ("reject", "cancel")
OPEN, FILLED, CANCELED = "open", "filled", "canceled"
STATE_VERSION = 1
_MICRO, _CENT, _ONE, _TENTH_PERCENT = D("0.000001"), D("0.01"), D(1), D("0.001")


class Reason(StrEnum):
    """Why the engine refused an operation (adapters map these to exchange codes)."""

    UNKNOWN_MARKET = "unknown_market"
    UNKNOWN_ACCOUNT = "unknown_account"
    UNKNOWN_ORDER = "unknown_order"
    ORDER_NOT_OPEN = "order_not_open"  # already filled or canceled
    INVALID_PARAMETER = "invalid_parameter"
    BAD_PRICE_STEP = "bad_price_step"
    BAD_SIZE_STEP = "bad_size_step"
    BELOW_MIN_SIZE = "below_min_size"
    BELOW_MIN_NOTIONAL = "below_min_notional"
    INSUFFICIENT_BALANCE = "insufficient_balance"
    WOULD_CROSS = "would_cross"  # post-only in "reject" mode
    DUPLICATE_CLIENT_ID = "duplicate_client_id"


class MatchingError(Exception):
    """An operation the engine refused, with a neutral :class:`Reason`."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.message = message


def dec(value: object) -> Decimal:
    """Decimal from str/int/float/Decimal (floats through ``str``: no binary noise)."""
    return value if isinstance(value, Decimal) else D(str(value))


@dataclass(frozen=True)
class Market:
    """One spot market: steps, minimums and fee rates (fractions: 0.001 = 0.1 %)."""

    symbol: str = "KAS-USDT"
    base: str = "KAS"
    quote: str = "USDT"
    tick: Decimal = _MICRO
    lot: Decimal = _CENT
    min_size: Decimal = _CENT
    min_notional: Decimal = _ONE
    maker_fee: Decimal = _TENTH_PERCENT
    taker_fee: Decimal = _TENTH_PERCENT
    #: Step of ``funds`` (quote) of market orders.
    funds_step: Decimal = _MICRO
    #: Where fees are charged: ``"received"`` (base for a buy, quote for a sell) or ``"quote"``.
    fee_in: str = "received"


@dataclass
class Balance:
    """One asset of an account."""

    available: Decimal = ZERO
    locked: Decimal = ZERO

    @property
    def total(self) -> Decimal:
        return self.available + self.locked


@dataclass
class Order:
    """An order. ``size`` is base (``None`` for a market order by ``funds``, quote)."""

    id: str
    client_id: str | None
    account: str
    symbol: str
    side: str
    type: str
    tif: str
    price: Decimal | None
    size: Decimal | None
    funds: Decimal | None
    arrival: int  # time priority among resting orders
    created_ms: int
    updated_ms: int
    filled: Decimal = ZERO  # base
    filled_funds: Decimal = ZERO  # quote
    fee: Decimal = ZERO
    fee_asset: str = ""
    locked: Decimal = ZERO  # what the order still holds locked
    status: str = OPEN
    resting: bool = False  # on the book (``open`` sent)
    cancel_reason: str | None = None  # user | ioc | fok | post_only | no_liquidity | timer
    done_ms: int | None = None

    @property
    def is_open(self) -> bool:
        return self.status == OPEN

    @property
    def remaining(self) -> Decimal:
        """Size left (base), or funds left (quote) for a market order by funds."""
        if self.size is None:
            assert self.funds is not None
            return self.funds - self.filled_funds
        return self.size - self.filled


@dataclass(frozen=True)
class Fill:
    """One side of a match. Both sides of a match share ``trade_id``."""

    id: str
    trade_id: str
    order_id: str
    client_id: str | None
    account: str
    symbol: str
    side: str
    role: str  # maker | taker
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    time_ms: int


@dataclass(frozen=True)
class OrderEvent:
    """An order changed: ``kind`` is received, open, match, filled or canceled; ``order`` is a
    copy as it was right after the change; ``fill`` is set for ``match``."""

    kind: str
    order: Order
    fill: Fill | None = None


@dataclass(frozen=True)
class LevelChange:
    """One aggregated price level of the merged book changed: ``size`` 0 means removed."""

    side: str  # buy (bids) | sell (asks)
    price: Decimal
    size: Decimal
    seq: int


@dataclass(frozen=True)
class BookChange:
    """Level changes of one market's merged book, numbered ``seq_start..seq_end``."""

    symbol: str
    seq_start: int
    seq_end: int
    changes: tuple[LevelChange, ...]
    time_ms: int


@dataclass(frozen=True)
class BookSnapshot:
    """The merged book, best first, as of sequence number ``seq``."""

    symbol: str
    seq: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int


@dataclass
class Observers:
    """Callbacks the websocket layers publish from (each a list: several may listen)."""

    on_book: list[Callable[[BookChange], None]] = field(default_factory=list)
    on_order: list[Callable[[OrderEvent], None]] = field(default_factory=list)
    on_fill: list[Callable[[Fill], None]] = field(default_factory=list)


def to_json(value: Any) -> Any:
    """Decimals (nested in dicts and lists) as strings."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: to_json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [to_json(v) for v in value]
    return value


_DECIMAL_FIELDS = {
    "price",
    "size",
    "funds",
    "filled",
    "filled_funds",
    "fee",
    "locked",
}


def from_json(raw: Mapping[str, Any], cls: type) -> dict[str, Any]:
    """Constructor arguments of ``cls`` (Order, Fill) from :func:`to_json` output."""
    names = {f.name for f in fields(cls)}
    return {
        k: (D(v) if k in _DECIMAL_FIELDS and v is not None else v)
        for k, v in raw.items()
        if k in names
    }
