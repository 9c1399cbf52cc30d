"""Domain types shared by the decision code, the venues and the bot.

Everything here is a frozen, slotted dataclass. Money (prices, sizes, fees, balances) is
``Decimal``; times are float seconds on the clock the caller injects (epoch seconds in real
time, virtual seconds in simulation and backtests).

Hot values (built on every decision, here and in the engine, the core and the sim) are declared
``@dataclass(frozen=True, slots=True, init=False)`` with their ``__init__`` written out: one
``object.__setattr__`` per field, in field order, with the fields' defaults. They stay frozen
dataclasses (equality, hashing, ``repr``, ``replace``, ``FrozenInstanceError``); only the
constructor differs. The generated one runs as interpreted bytecode even in the compiled build
(``make native``): about 0.6-2 us a value, some 36 values a decision. mypyc compiles the
written-out one to direct slot stores (about 0.05 us). ``tests/unit/test_value_inits.py``
checks every written-out ``__init__`` against its fields.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, NewType

ClientOrderId = NewType("ClientOrderId", str)
VenueOrderId = NewType("VenueOrderId", str)
TradeId = NewType("TradeId", str)

ZERO: Final = Decimal(0)


class Side(enum.StrEnum):
    """Order side. ``BUY`` rests on the bid, ``SELL`` on the ask."""

    BUY = "buy"
    SELL = "sell"

    @property
    def opposite(self) -> Side:
        """The other side."""
        return Side.SELL if self is Side.BUY else Side.BUY

    @property
    def sign(self) -> int:
        """+1 for a buy (inventory grows), -1 for a sell."""
        return 1 if self is Side.BUY else -1


class TimeInForce(enum.StrEnum):
    """How long an order may work. ``GTC`` rests until filled or cancelled (``place_order``);
    ``IOC`` executes at once against the book as far as its limit price allows and the venue
    cancels the rest: it never rests (``Venue.place_ioc``)."""

    GTC = "gtc"
    IOC = "ioc"


@dataclass(frozen=True, slots=True, init=False)
class BookLevel:
    """One price level of an order book."""

    price: Decimal
    size: Decimal
    #: Price and size both finite and positive, checked once when the level is made: a book
    #: reuses most of its levels from one update to the next, and the engine rejects a book
    #: with any level that is not. Not a field of the level: never compared or shown.
    well_formed: bool = field(init=False, repr=False, compare=False)

    def __init__(self, price: Decimal, size: Decimal) -> None:
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)
        # Finite first: an ordering comparison with a NaN raises.
        object.__setattr__(
            self,
            "well_formed",
            price.is_finite() and size.is_finite() and price > ZERO and size > ZERO,
        )


class _Unset(enum.Enum):
    """Not computed yet (a cached value that may itself be ``None``)."""

    UNSET = enum.auto()


@dataclass(frozen=True, slots=True, init=False)
class Book:
    """An L2 order book snapshot. Bids best (highest) first, asks best (lowest) first."""

    bids: tuple[BookLevel, ...]
    asks: tuple[BookLevel, ...]
    ts: float
    #: ``mid`` once computed: the bot reads it several times per event (its decision, the risk
    #: rules, the next book's previous mid). Not a field of the snapshot: never compared or shown.
    _mid: Decimal | _Unset | None = field(
        default=_Unset.UNSET, init=False, repr=False, compare=False
    )
    #: ``float(mid)`` once computed (it goes through the number's string): the volatility
    #: estimate, the quoting model, the KPIs and a backtest's meter each read it per event.
    _mid_float: float | _Unset | None = field(
        default=_Unset.UNSET, init=False, repr=False, compare=False
    )

    def __init__(self, bids: tuple[BookLevel, ...], asks: tuple[BookLevel, ...], ts: float) -> None:
        object.__setattr__(self, "bids", bids)
        object.__setattr__(self, "asks", asks)
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "_mid", _Unset.UNSET)
        object.__setattr__(self, "_mid_float", _Unset.UNSET)

    def with_levels(self, bids: tuple[BookLevel, ...], asks: tuple[BookLevel, ...]) -> Book:
        """A book of ``bids`` and ``asks`` at this one's time stamp.

        When both top levels are this book's very objects the new book has the same mid, so
        the mid and its float, if computed already, are handed over rather than computed again.
        """
        book = Book(bids, asks, self.ts)
        tops = bool(bids and asks and self.bids and self.asks)
        if tops and bids[0] is self.bids[0] and asks[0] is self.asks[0]:
            object.__setattr__(book, "_mid", self._mid)
            object.__setattr__(book, "_mid_float", self._mid_float)
        return book

    @property
    def best_bid(self) -> Decimal | None:
        """Highest bid price, or ``None`` when the bid side is empty."""
        return self.bids[0].price if self.bids else None

    @property
    def best_ask(self) -> Decimal | None:
        """Lowest ask price, or ``None`` when the ask side is empty."""
        return self.asks[0].price if self.asks else None

    @property
    def mid(self) -> Decimal | None:
        """Arithmetic mid of the top of book, or ``None`` when a side is empty."""
        mid = self._mid
        if mid is _Unset.UNSET:
            bids, asks = self.bids, self.asks
            mid = (bids[0].price + asks[0].price) / 2 if bids and asks else None
            object.__setattr__(self, "_mid", mid)
        return mid

    @property
    def mid_float(self) -> float | None:
        """``float(mid)``, or ``None`` when there is no mid."""
        mid_float = self._mid_float
        if mid_float is _Unset.UNSET:
            mid = self.mid
            mid_float = float(mid) if mid is not None else None
            object.__setattr__(self, "_mid_float", mid_float)
        return mid_float

    def same_levels_as(self, other: Book) -> bool:
        """Both sides have the same levels as ``other``'s (the time stamp aside): no change."""
        return same_levels(self.bids, other.bids) and same_levels(self.asks, other.asks)

    @property
    def is_crossed(self) -> bool:
        """True when best bid >= best ask (a broken or locked book)."""
        bid, ask = self.best_bid, self.best_ask
        return bid is not None and ask is not None and bid >= ask


def same_levels(a: tuple[BookLevel, ...], b: tuple[BookLevel, ...]) -> bool:
    """The same prices and sizes, level by level: a book side that did not *change*.

    Identity first (the sim reuses unchanged sides and levels), then prices and sizes directly
    rather than through the dataclass ``__eq__``, which is interpreted even when compiled.
    """
    if a is b:
        return True
    if len(a) != len(b):
        return False
    for x, y in zip(a, b, strict=True):
        if x is not y and not (x.price == y.price and x.size == y.size):
            return False
    return True


@dataclass(frozen=True, slots=True)
class MarketRules:
    """A market's trading rules: price tick, size lot, minimum notional and fee rates."""

    symbol: str
    base: str
    quote: str
    tick: Decimal
    lot: Decimal
    min_notional: Decimal = ZERO
    min_size: Decimal = ZERO
    maker_fee: Decimal = ZERO
    taker_fee: Decimal = ZERO
    #: The integer grid of these rules (:func:`kasmm.core.grid.grid_of`), derived on first use:
    #: not a rule, never compared or shown. (``Any``: see ``QuotingParams._derived``.)
    _grid: Any = field(default=None, init=False, repr=False, compare=False)


@dataclass(frozen=True, slots=True, init=False)
class Balance:
    """One asset's balance: ``free`` can back new orders, ``locked`` backs open orders."""

    free: Decimal
    locked: Decimal = ZERO

    def __init__(self, free: Decimal, locked: Decimal = ZERO) -> None:
        object.__setattr__(self, "free", free)
        object.__setattr__(self, "locked", locked)

    @property
    def total(self) -> Decimal:
        """Free plus locked."""
        return self.free + self.locked


_NO_BALANCE = Balance(ZERO)
_NO_ASSETS: Mapping[str, Balance] = MappingProxyType({})


@dataclass(frozen=True, slots=True, init=False)
class Balances:
    """Balances per asset. Missing assets read as zero."""

    assets: Mapping[str, Balance] = field(default_factory=lambda: _NO_ASSETS)

    def __init__(self, assets: Mapping[str, Balance] = _NO_ASSETS) -> None:
        object.__setattr__(self, "assets", assets)

    def get(self, asset: str) -> Balance:
        """The balance of ``asset`` (zero when unknown)."""
        return self.assets.get(asset, _NO_BALANCE)

    def free(self, asset: str) -> Decimal:
        """Free amount of ``asset``."""
        return self.get(asset).free

    def total(self, asset: str) -> Decimal:
        """Total (free + locked) amount of ``asset``."""
        return self.get(asset).total


@dataclass(frozen=True, slots=True, init=False)
class OrderIntent:
    """A desired resting limit order produced by the quoting core (no identity yet)."""

    side: Side
    price: Decimal
    size: Decimal
    level: int = 0
    #: ``price`` and ``size`` in ticks and lots of the grid of the rules they were quoted for
    #: (:mod:`kasmm.core.grid`), -1 when not known: what reconciliation compares when the open
    #: orders are on the same grid. Not part of the value: never compared or shown.
    ticks: int = field(default=-1, compare=False, repr=False)
    lots: int = field(default=-1, compare=False, repr=False)

    def __init__(
        self,
        side: Side,
        price: Decimal,
        size: Decimal,
        level: int = 0,
        ticks: int = -1,
        lots: int = -1,
    ) -> None:
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "ticks", ticks)
        object.__setattr__(self, "lots", lots)


@dataclass(frozen=True, slots=True, init=False)
class Quotes:
    """The full set of desired orders for one decision. Bids best first, asks best first."""

    bids: tuple[OrderIntent, ...] = ()
    asks: tuple[OrderIntent, ...] = ()

    def __init__(
        self, bids: tuple[OrderIntent, ...] = (), asks: tuple[OrderIntent, ...] = ()
    ) -> None:
        object.__setattr__(self, "bids", bids)
        object.__setattr__(self, "asks", asks)

    def side(self, side: Side) -> tuple[OrderIntent, ...]:
        """The intents of one side."""
        return self.bids if side is Side.BUY else self.asks

    @property
    def all(self) -> tuple[OrderIntent, ...]:
        """Bids then asks."""
        return self.bids + self.asks


@dataclass(frozen=True, slots=True, init=False)
class OrderRequest:
    """A limit order as handed to a venue: an intent plus the client order id.

    ``time_in_force`` is ``GTC`` for the resting orders of ``place_order`` (post-only by
    default); an immediate-or-cancel order for ``Venue.place_ioc`` is built with :meth:`ioc`
    (``IOC``, never post-only: it exists to take liquidity).
    """

    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    post_only: bool = True
    #: The intent's ticks and lots (see ``OrderIntent``), carried to the open order the venue
    #: accepts: not part of the request, never compared or shown.
    ticks: int = field(default=-1, compare=False, repr=False)
    lots: int = field(default=-1, compare=False, repr=False)
    time_in_force: TimeInForce = TimeInForce.GTC

    def __init__(
        self,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        post_only: bool = True,
        ticks: int = -1,
        lots: int = -1,
        time_in_force: TimeInForce = TimeInForce.GTC,
    ) -> None:
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "post_only", post_only)
        object.__setattr__(self, "ticks", ticks)
        object.__setattr__(self, "lots", lots)
        object.__setattr__(self, "time_in_force", time_in_force)

    @classmethod
    def ioc(
        cls,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        *,
        ticks: int = -1,
        lots: int = -1,
    ) -> OrderRequest:
        """An immediate-or-cancel order: ``size`` taken at ``price`` or better, the rest
        cancelled by the venue (a buy executes at or below ``price``, a sell at or above)."""
        return cls(client_id, side, price, size, False, ticks, lots, TimeInForce.IOC)

    @property
    def is_ioc(self) -> bool:
        """True for an immediate-or-cancel order."""
        return self.time_in_force is TimeInForce.IOC


@dataclass(frozen=True, slots=True, init=False)
class OpenOrder:
    """A resting order as known to the bot or reported by the venue."""

    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    remaining: Decimal
    created_at: float
    venue_id: VenueOrderId | None = None
    level: int = 0
    #: ``price`` in ticks and ``remaining`` in lots of ``grid`` (a :class:`kasmm.core.grid.Grid`;
    #: -1 and ``None`` when not known), so that reconciliation compares integers. Not part of
    #: the value: never compared or shown. (``Any``: see ``QuotingParams._derived``.)
    ticks: int = field(default=-1, compare=False, repr=False)
    lots: int = field(default=-1, compare=False, repr=False)
    grid: Any = field(default=None, compare=False, repr=False)

    def __init__(
        self,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        remaining: Decimal,
        created_at: float,
        venue_id: VenueOrderId | None = None,
        level: int = 0,
        ticks: int = -1,
        lots: int = -1,
        grid: Any = None,
    ) -> None:
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "remaining", remaining)
        object.__setattr__(self, "created_at", created_at)
        object.__setattr__(self, "venue_id", venue_id)
        object.__setattr__(self, "level", level)
        object.__setattr__(self, "ticks", ticks)
        object.__setattr__(self, "lots", lots)
        object.__setattr__(self, "grid", grid)

    @property
    def filled(self) -> Decimal:
        """Size filled so far."""
        return self.size - self.remaining


@dataclass(frozen=True, slots=True, init=False)
class Fill:
    """One execution against one of the bot's orders. ``trade_id`` is the venue's unique id."""

    trade_id: TradeId
    client_id: ClientOrderId
    side: Side
    price: Decimal
    size: Decimal
    fee: Decimal
    fee_asset: str
    ts: float
    remaining: Decimal = ZERO
    is_maker: bool = True
    venue_id: VenueOrderId | None = None

    def __init__(
        self,
        trade_id: TradeId,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        fee: Decimal,
        fee_asset: str,
        ts: float,
        remaining: Decimal = ZERO,
        is_maker: bool = True,
        venue_id: VenueOrderId | None = None,
    ) -> None:
        object.__setattr__(self, "trade_id", trade_id)
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "side", side)
        object.__setattr__(self, "price", price)
        object.__setattr__(self, "size", size)
        object.__setattr__(self, "fee", fee)
        object.__setattr__(self, "fee_asset", fee_asset)
        object.__setattr__(self, "ts", ts)
        object.__setattr__(self, "remaining", remaining)
        object.__setattr__(self, "is_maker", is_maker)
        object.__setattr__(self, "venue_id", venue_id)

    @property
    def notional(self) -> Decimal:
        """Price times size, in quote currency."""
        return self.price * self.size


# --- events a venue emits, consumed by the bot ---------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class BookUpdated:
    """The venue's order book changed."""

    book: Book

    def __init__(self, book: Book) -> None:
        object.__setattr__(self, "book", book)


@dataclass(frozen=True, slots=True, init=False)
class OrderFilled:
    """One of the bot's orders was (partially) filled."""

    fill: Fill

    def __init__(self, fill: Fill) -> None:
        object.__setattr__(self, "fill", fill)


@dataclass(frozen=True, slots=True, init=False)
class OrderClosed:
    """An order left the book without a fill from us asking (expired, venue-cancelled)."""

    client_id: ClientOrderId
    reason: str
    ts: float

    def __init__(self, client_id: ClientOrderId, reason: str, ts: float) -> None:
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "reason", reason)
        object.__setattr__(self, "ts", ts)


@dataclass(frozen=True, slots=True, init=False)
class ReferenceUpdated:
    """The book of a market the profile prices off changed (another venue's, shared by the
    supervisor's market data; see :mod:`kasmm.core.reference`).

    ``key`` is ``"<exchange>:<symbol>"``; ``received_at`` is when it arrived, on the interval
    clock (what the reference's ``max_age_s`` is measured against, never the venue's stamp).
    """

    key: str
    book: Book
    received_at: float

    def __init__(self, key: str, book: Book, received_at: float) -> None:
        object.__setattr__(self, "key", key)
        object.__setattr__(self, "book", book)
        object.__setattr__(self, "received_at", received_at)


VenueEvent = BookUpdated | OrderFilled | OrderClosed | ReferenceUpdated


# --- actions the reconciler asks for --------------------------------------------------------


@dataclass(frozen=True, slots=True, init=False)
class PlaceOrder:
    """Place a new order for ``intent``."""

    intent: OrderIntent

    def __init__(self, intent: OrderIntent) -> None:
        object.__setattr__(self, "intent", intent)


@dataclass(frozen=True, slots=True, init=False)
class CancelOrder:
    """Cancel the open order ``client_id``."""

    client_id: ClientOrderId
    reason: str = ""

    def __init__(self, client_id: ClientOrderId, reason: str = "") -> None:
        object.__setattr__(self, "client_id", client_id)
        object.__setattr__(self, "reason", reason)


OrderAction = PlaceOrder | CancelOrder
