"""Matching engine and account state behind the Gate.io spot v4 emulator (``gate.py``).

Pure, synchronous and transport-free: the HTTP layer in :mod:`tests.emulators.gate` parses
requests, calls into :class:`GateEngine`, and turns :class:`GateError` into Gate's error body
``{"label": ..., "message": ...}``. Everything is :class:`~decimal.Decimal`; every JSON value the
engine produces has Gate's shape (numbers as strings, times as seconds / milliseconds).

Model
-----
* Every market has a *synthetic outside book* (:meth:`GateEngine.set_mid` /
  :meth:`GateEngine.set_book`) standing for other traders. It is served by ``order_book`` merged
  with the account's own resting orders, it is what a ``poc`` order must not cross, and incoming
  crossing API orders (gtc/ioc/fok/market) take from it as takers (the consumed size disappears).
* API orders rest at their limit price. :meth:`GateEngine.trade` simulates an outside taker that
  fills crossing API orders by price-time priority (maker fills, maker fee); it does not touch
  the synthetic book.
* An incoming API order is matched against the merged opposite liquidity in price priority; at one
  price the synthetic liquidity goes first, then resting API orders by time (self-trades happen,
  as on Gate without an STP group: two fills, one ``taker`` and one ``maker``).
* Fees are charged in the currency received (buy: base, sell: quote), like Gate's spot.
* Balances: placing locks ``amount*price`` quote (buy limit), the quote ``amount`` (market buy) or
  the base ``amount`` (sell); fills and cancels release the lock.

Observers
---------
The websocket layer (:mod:`tests.emulators.gate_ws`) follows the engine through listener lists;
none of them changes what the REST layer sees:

* ``order_listeners(event, order)``: ``put`` when an order is accepted (before it matches),
  ``update`` after a fill that leaves it open (and after an amend, see :meth:`order_updated`),
  ``finish`` when it is filled or cancelled: Gate's ``spot.orders`` events;
* ``fill_listeners(fill)``: each of the account's fills (``spot.usertrades``);
* ``book_listeners(update)``: a :class:`BookUpdate` whenever an operation changed the merged book
  (synthetic + own orders) of a pair. Each change takes the pair's next *book update id*, the
  ``id`` of ``GET /spot/order_book?with_id=true``, so REST snapshots and websocket updates are
  one sequence (Gate: "increments 1 on every order book update");
* ``change_listeners()``: after every operation that may have changed something (balances).
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal, InvalidOperation
from typing import Any

D = Decimal
ZERO = D(0)

#: ``text`` (client order id) rule from Gate's docs: ``t-`` + at most 28 bytes of [0-9A-Za-z_.-].
TEXT_RE = re.compile(r"^t-[0-9A-Za-z_.\-]{1,28}$")
#: ``text`` Gate stores for an order placed through APIv4 without a user ``text``.
DEFAULT_TEXT = "apiv4"

POC_MODES = ("reject", "cancel")

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


def fmt(value: Decimal) -> str:
    """Gate's decimal string: plain notation, no trailing zeros (``"0"`` for zero)."""
    if value == 0:
        return "0"
    text = format(value.normalize(), "f")
    return text


def decimals_of(value: Decimal) -> int:
    """Number of decimal places ``value`` really uses (``1.50`` -> 1, ``100`` -> 0)."""
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


def to_decimal(value: object) -> Decimal:
    """Decimal from a str/int/float/Decimal (floats via ``str`` to avoid binary noise)."""
    if isinstance(value, Decimal):
        return value
    return D(str(value))


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


@dataclass
class Balance:
    """One currency of the spot account."""

    available: Decimal = ZERO
    locked: Decimal = ZERO


@dataclass
class Order:
    """An order as the engine keeps it (serialised by :meth:`GateEngine.order_json`)."""

    id: str
    text: str
    pair: str
    side: str  # buy | sell
    type: str  # limit | market
    tif: str  # gtc | ioc | poc | fok
    price: Decimal  # 0 for market orders
    amount: Decimal  # base; quote for a market buy
    left: Decimal  # same unit as amount
    seq: int
    create_ms: int
    update_ms: int
    account: str = "spot"
    filled_amount: Decimal = ZERO
    filled_total: Decimal = ZERO
    fee: Decimal = ZERO
    locked: Decimal = ZERO  # what this order still holds locked in the account
    status: str = "open"  # open | closed | cancelled
    finish_as: str = "open"
    finish_ms: int | None = None
    amend_text: str = "-"  # the last amend's ``amend_text``

    @property
    def is_open(self) -> bool:
        """Still resting (or being matched)."""
        return self.status == "open"


@dataclass
class Fill:
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

#: First book update id of every pair (ids only grow from there, across restarts too).
FIRST_BOOK_UPDATE_ID = 1000


@dataclass
class _Liquidity:
    """One opposite-side liquidity source during matching."""

    price: Decimal
    rank: int  # 0 synthetic, 1 API order
    seq: int
    level: list[Decimal] | None = None  # synthetic [price, size], mutated in place
    order: Order | None = None

    @property
    def size(self) -> Decimal:
        if self.order is not None:
            return self.order.left
        assert self.level is not None
        return self.level[1]


@dataclass
class _Book:
    """Synthetic outside book of one market: ``[price, size]`` levels, best first."""

    bids: list[list[Decimal]] = field(default_factory=list)
    asks: list[list[Decimal]] = field(default_factory=list)
    version: int = 0
    update_ms: int = 0


class GateEngine:
    """Markets, balances, orders, fills and dead man's switches of one emulated Gate account."""

    def __init__(
        self,
        markets: Sequence[GateMarket] | None = None,
        balances: Mapping[str, object] | None = None,
        clock: Callable[[], float] | None = None,
        poc_cross: str = "reject",
        on_change: Callable[[], None] | None = None,
    ) -> None:
        if poc_cross not in POC_MODES:
            raise ValueError(f"poc_cross must be one of {POC_MODES}")
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.poc_cross = poc_cross
        self.on_change = on_change
        self.markets: dict[str, GateMarket] = {
            m.id: m for m in (markets if markets is not None else DEFAULT_MARKETS)
        }
        self.balances: dict[str, Balance] = {}
        for market in self.markets.values():
            self.balances.setdefault(market.base, Balance())
            self.balances.setdefault(market.quote, Balance())
        for currency, amount in (balances if balances is not None else DEFAULT_BALANCES).items():
            self.balances[currency] = Balance(available=to_decimal(amount))
        self.books: dict[str, _Book] = {pair: _Book() for pair in self.markets}
        self.orders_by_id: dict[str, Order] = {}
        self.fills: list[Fill] = []
        #: currency_pair (``""`` = every pair) -> deadline on ``clock``.
        self.countdowns: dict[str, float] = {}
        self.last_price: dict[str, Decimal] = {}
        self._next_order_id = 100_000_000_001
        self._next_trade_id = 5_000_000_001
        self._seq = 0
        self._sequence_ids: dict[str, int] = {}
        #: Observers (see the module docstring); the REST layer never needs them.
        self.order_listeners: list[Callable[[str, Order], None]] = []
        self.fill_listeners: list[Callable[[Fill], None]] = []
        self.book_listeners: list[Callable[[BookUpdate], None]] = []
        self.change_listeners: list[Callable[[], None]] = []
        #: Current book update id per pair, and the merged book it names.
        self.book_ids: dict[str, int] = {pair: FIRST_BOOK_UPDATE_ID for pair in self.markets}
        self._book_at_id: dict[str, tuple[Levels, Levels]] = {
            pair: ({}, {}) for pair in self.markets
        }

    # ------------------------------------------------------------------ helpers

    def now_ms(self) -> int:
        """Engine time in milliseconds."""
        return int(self.clock() * 1000)

    def _changed(self) -> None:
        for pair in self.markets:
            self._advance_book_id(pair)
        for listener in self.change_listeners:
            listener()
        if self.on_change is not None:
            self.on_change()

    def _advance_book_id(self, pair: str) -> None:
        """Give the merged book of ``pair`` the next update id if it differs from the last."""
        bids, asks = self.merged_levels(pair)
        old_bids, old_asks = self._book_at_id[pair]
        bid_changes, ask_changes = level_changes(old_bids, bids), level_changes(old_asks, asks)
        if not bid_changes and not ask_changes:
            return
        self.book_ids[pair] += 1
        self._book_at_id[pair] = (bids, asks)
        update = BookUpdate(pair, self.book_ids[pair], self.now_ms(), bid_changes, ask_changes)
        for listener in self.book_listeners:
            listener(update)

    def _notify_order(self, event: str, order: Order) -> None:
        for listener in self.order_listeners:
            listener(event, order)

    def order_updated(self, order: Order) -> None:
        """Tell the order listeners an open order changed outside a fill (an amend)."""
        if order.is_open:
            self._notify_order("update", order)

    def market(self, pair: str | None) -> GateMarket:
        """The market ``pair`` or ``INVALID_CURRENCY_PAIR``."""
        if not pair:
            raise GateError(400, "MISSING_REQUIRED_PARAM", "currency_pair is required")
        market = self.markets.get(pair)
        if market is None:
            raise GateError(400, "INVALID_CURRENCY_PAIR", f"Invalid currency pair {pair}")
        return market

    def _balance(self, currency: str) -> Balance:
        return self.balances.setdefault(currency, Balance())

    def _lock(self, currency: str, amount: Decimal) -> None:
        bal = self._balance(currency)
        bal.available -= amount
        bal.locked += amount

    def _release(self, order: Order) -> None:
        """Give back whatever ``order`` still holds."""
        if order.locked:
            market = self.markets[order.pair]
            currency = market.quote if order.side == "buy" else market.base
            bal = self._balance(currency)
            bal.locked -= order.locked
            bal.available += order.locked
            order.locked = ZERO

    def _finish(self, order: Order, status: str, finish_as: str) -> None:
        self._release(order)
        order.status = status
        order.finish_as = finish_as
        order.update_ms = order.finish_ms = self.now_ms()
        self._notify_order("finish", order)

    # ------------------------------------------------------------------ synthetic book

    def set_book(
        self,
        bids: Iterable[tuple[object, object]],
        asks: Iterable[tuple[object, object]],
        pair: str | None = None,
        fill_crossed: bool = True,
    ) -> list[Fill]:
        """Replace the synthetic outside book of ``pair`` (default: the first market).

        With ``fill_crossed`` (default), outside levels that cross resting API orders trade
        with them first, as on a real exchange: the API orders fill as makers at their own
        price (price-time priority) and the crossing outside size is consumed, so the merged
        book is never left crossed. Returns those fills.
        """
        pair_id = self._pair_or_default(pair)
        book = self.books[pair_id]
        book.bids = sorted(
            ([to_decimal(p), to_decimal(s)] for p, s in bids if to_decimal(s) > 0),
            key=lambda lv: -lv[0],
        )
        book.asks = sorted(
            ([to_decimal(p), to_decimal(s)] for p, s in asks if to_decimal(s) > 0),
            key=lambda lv: lv[0],
        )
        book.version += 1
        book.update_ms = self.now_ms()
        fills = self._cross_resting(pair_id) if fill_crossed else []
        self._changed()
        return fills

    def _cross_resting(self, pair: str) -> list[Fill]:
        book = self.books[pair]
        fills: list[Fill] = []
        resting = sorted(
            self._open(pair), key=lambda o: ((-o.price if o.side == "buy" else o.price), o.seq)
        )
        for order in resting:
            levels = book.asks if order.side == "buy" else book.bids
            for level in levels:
                crosses = (
                    level[0] <= order.price if order.side == "buy" else level[0] >= order.price
                )
                if not crosses or not order.is_open:
                    break
                qty = min(level[1], order.left)
                if qty > 0:
                    fills.append(self._fill(order, qty, order.price, "maker"))
                    level[1] -= qty
        book.bids = [lv for lv in book.bids if lv[1] > 0]
        book.asks = [lv for lv in book.asks if lv[1] > 0]
        return fills

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        pair: str | None = None,
        step_ticks: int = 1,
        fill_crossed: bool = True,
    ) -> list[Fill]:
        """Synthetic book around ``mid``: best bid/ask ``spread_bps`` apart (rounded outwards to
        the tick), then ``levels`` levels per side ``step_ticks`` ticks apart, ``size`` each.
        See :meth:`set_book` for ``fill_crossed``."""
        market = self.market(self._pair_or_default(pair))
        mid_d, half = to_decimal(mid), to_decimal(spread_bps) / D(20000)
        tick = market.tick
        best_bid = (mid_d * (1 - half) / tick).to_integral_value(ROUND_FLOOR) * tick
        best_ask = (mid_d * (1 + half) / tick).to_integral_value(ROUND_CEILING) * tick
        if best_ask <= best_bid:
            best_ask = best_bid + tick
        size_d, step = to_decimal(size), tick * step_ticks
        bids = [(best_bid - i * step, size_d) for i in range(levels) if best_bid - i * step > 0]
        asks = [(best_ask + i * step, size_d) for i in range(levels)]
        return self.set_book(bids, asks, market.id, fill_crossed)

    def _pair_or_default(self, pair: str | None) -> str:
        if pair is None:
            return next(iter(self.markets))
        self.market(pair)
        return pair

    def merged_levels(self, pair: str) -> tuple[Levels, Levels]:
        """Merged book of ``pair`` (synthetic + own resting orders): bids and asks by price."""
        book = self.books[pair]
        bids: Levels = {}
        asks: Levels = {}
        for price, size in book.bids:
            bids[price] = bids.get(price, ZERO) + size
        for price, size in book.asks:
            asks[price] = asks.get(price, ZERO) + size
        for order in self._open(pair):
            side = bids if order.side == "buy" else asks
            side[order.price] = side.get(order.price, ZERO) + order.left
        return bids, asks

    def book_snapshot(
        self, pair: str, limit: int | None = None
    ) -> tuple[list[list[str]], list[list[str]], _Book]:
        """Merged book (synthetic + own resting orders) as Gate's ``[[price, size], ...]``."""
        market = self.market(pair)
        book = self.books[market.id]
        bids, asks = self.merged_levels(market.id)
        bid_rows = sorted(bids.items(), key=lambda kv: -kv[0])
        ask_rows = sorted(asks.items(), key=lambda kv: kv[0])
        if limit is not None:
            bid_rows, ask_rows = bid_rows[:limit], ask_rows[:limit]
        return (
            [[fmt(p), fmt(s)] for p, s in bid_rows],
            [[fmt(p), fmt(s)] for p, s in ask_rows],
            book,
        )

    def best_prices(self, pair: str) -> tuple[Decimal | None, Decimal | None]:
        """Best bid and ask of the merged book."""
        bids, asks, _ = self.book_snapshot(pair, 1)
        return (D(bids[0][0]) if bids else None, D(asks[0][0]) if asks else None)

    # ------------------------------------------------------------------ queries

    def _open(self, pair: str | None = None) -> list[Order]:
        return [
            o for o in self.orders_by_id.values() if o.is_open and (pair is None or o.pair == pair)
        ]

    def find(self, pair: str | None, ref: str) -> Order:
        """Order ``ref`` (an id, or for an open order its ``t-`` text) in ``pair``.

        Gate: "Operations based on custom IDs can only be checked in pending orders. Only order
        ID can be used after the order is finished", so a ``t-...`` reference only finds open
        orders (the most recent one when several share the text).
        """
        market = self.market(pair)
        if ref.startswith("t-"):
            matches = [o for o in self._open(market.id) if o.text == ref]
            if matches:
                return max(matches, key=lambda o: o.seq)
        else:
            order = self.orders_by_id.get(ref)
            if order is not None and order.pair == market.id:
                return order
        raise GateError(404, "ORDER_NOT_FOUND", "Order not found")

    def list_orders(
        self,
        pair: str | None,
        status: str | None,
        page: int = 1,
        limit: int = 100,
        start: int | None = None,
        end: int | None = None,
        side: str | None = None,
    ) -> list[Order]:
        """``GET /spot/orders``: newest first."""
        market = self.market(pair)
        if status not in ("open", "finished"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: status")
        if status == "open":
            if limit > 100:
                raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: limit")
            rows = self._open(market.id)
        else:
            rows = [
                o
                for o in self.orders_by_id.values()
                if o.pair == market.id
                and not o.is_open
                and (side is None or o.side == side)
                and (start is None or (o.finish_ms or 0) >= start * 1000)
                and (end is None or (o.finish_ms or 0) <= end * 1000)
            ]
        rows.sort(key=lambda o: -o.seq)
        return _page(rows, page, limit)

    def open_orders_grouped(self, page: int = 1, limit: int = 100) -> list[dict[str, Any]]:
        """``GET /spot/open_orders``: every pair with open orders, ``limit`` per pair."""
        out = []
        for pair in self.markets:
            rows = sorted(self._open(pair), key=lambda o: -o.seq)
            if not rows:
                continue
            shown = _page(rows, page, limit)
            out.append(
                {
                    "currency_pair": pair,
                    "total": len(shown),
                    "orders": [self.order_json(o) for o in shown],
                }
            )
        return out

    def my_trades(
        self,
        pair: str | None = None,
        order_id: str | None = None,
        page: int = 1,
        limit: int = 100,
        start: int | None = None,
        end: int | None = None,
    ) -> list[Fill]:
        """``GET /spot/my_trades``: newest first; ``order_id`` needs ``currency_pair``."""
        if pair:
            self.market(pair)
        if order_id is not None and not pair:
            raise GateError(400, "MISSING_REQUIRED_PARAM", "currency_pair is required")
        if not 1 <= limit <= 1000:
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: limit")
        rows = [
            f
            for f in self.fills
            if (not pair or f.pair == pair)
            and (order_id is None or f.order_id == order_id)
            and (start is None or f.time_ms >= start * 1000)
            and (end is None or f.time_ms <= end * 1000)
        ]
        rows.reverse()
        return _page(rows, page, limit)

    # ------------------------------------------------------------------ order entry

    def place(self, body: object, *, batch: bool = False) -> Order:
        """``POST /spot/orders`` (one element of ``POST /spot/batch_orders`` when ``batch``).

        Raises :class:`GateError` for a rejected order; returns the order (possibly already
        finished: filled, ioc/fok remainder cancelled, or ``finish_as="poc"`` in
        ``poc_cross="cancel"`` mode).
        """
        if not isinstance(body, dict):
            raise GateError(400, "INVALID_REQUEST_BODY", "request body must be a JSON object")
        market = self.market(_opt_str(body, "currency_pair"))
        side = _opt_str(body, "side")
        if side not in ("buy", "sell"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: side")
        order_type = _opt_str(body, "type") or "limit"
        if order_type not in ("limit", "market"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: type")
        account = _opt_str(body, "account") or "spot"
        if account != "spot":
            raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: account {account}")
        tif = _opt_str(body, "time_in_force") or ("gtc" if order_type == "limit" else "ioc")
        if tif not in ("gtc", "ioc", "poc", "fok"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: time_in_force")
        if order_type == "market" and tif not in ("ioc", "fok"):
            raise GateError(
                400,
                "INVALID_PARAM_VALUE",
                "Only ioc and fok are supported when type=market",
            )
        text = _opt_str(body, "text")
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
        amount = _parse_positive(body.get("amount"), "amount")
        price = ZERO
        if order_type == "limit":
            price = _parse_positive(body.get("price"), "price")
            if decimals_of(price) > market.precision:
                raise GateError(
                    400,
                    "INVALID_PRECISION",
                    f"Price precision of {market.id} is {market.precision}",
                )
        is_market_buy = order_type == "market" and side == "buy"
        if not is_market_buy and decimals_of(amount) > market.amount_precision:
            raise GateError(
                400,
                "INVALID_PRECISION",
                f"Amount precision of {market.id} is {market.amount_precision}",
            )
        self._check_size(market, order_type, side, amount, price)

        # balance
        if side == "buy":
            need = amount if is_market_buy else amount * price
            currency = market.quote
        else:
            need, currency = amount, market.base
        if self._balance(currency).available < need:
            raise GateError(400, "BALANCE_NOT_ENOUGH", "Not enough balance")

        # post-only
        best_bid, best_ask = self.best_prices(market.id)
        crosses = (side == "buy" and best_ask is not None and price >= best_ask) or (
            side == "sell" and best_bid is not None and price <= best_bid
        )
        if tif == "poc" and crosses and self.poc_cross == "reject":
            raise GateError(
                400,
                "POC_FILL_IMMEDIATELY",
                "Order would match and take immediately so its cancelled",
            )

        now = self.now_ms()
        self._seq += 1
        order = Order(
            id=str(self._next_order_id),
            text=text,
            pair=market.id,
            side=side,
            type=order_type,
            tif=tif,
            price=price,
            amount=amount,
            left=amount,
            seq=self._seq,
            create_ms=now,
            update_ms=now,
            account=account,
        )
        self._next_order_id += 1
        self.orders_by_id[order.id] = order
        self._notify_order("put", order)
        if tif == "poc":
            if crosses:  # poc_cross == "cancel": accepted, then cancelled without trading
                self._finish(order, "cancelled", "poc")
            else:
                self._lock(currency, need)
                order.locked = need
        else:
            self._lock(currency, need)
            order.locked = need
            self._match_incoming(order)
        self._changed()
        return order

    def _check_size(
        self, market: GateMarket, order_type: str, side: str, amount: Decimal, price: Decimal
    ) -> None:
        if order_type == "market" and side == "buy":
            cost = amount
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
        if not (order_type == "market" and side == "buy") and amount < market.min_base_amount:
            raise GateError(
                400,
                "AMOUNT_TOO_LITTLE",
                f"Your order size {fmt(amount)} {market.base} is too small. "
                f"The minimum is {fmt(market.min_base_amount)} {market.base}",
            )
        if (
            market.max_quote_amount is not None
            and cost is not None
            and cost > market.max_quote_amount
        ):
            raise GateError(
                400,
                "AMOUNT_TOO_MUCH",
                f"Your order size {fmt(cost)} {market.quote} is too large. "
                f"The maximum is {fmt(market.max_quote_amount)} {market.quote}",
            )

    def place_batch(self, body: object) -> list[dict[str, Any]]:
        """``POST /spot/batch_orders``: per-order results, failures as ``succeeded: false``.

        Gate: ``text`` required on each order, at most 4 pairs and 10 orders per pair, one
        ``account`` for all.
        """
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
        if len(per_pair) > 4:
            raise GateError(400, "TOO_MANY_CURRENCY_PAIRS", "Too many currency pairs in batch")
        if any(n > 10 for n in per_pair.values()):
            raise GateError(400, "TOO_MANY_ORDERS", "Too many orders for one currency pair")
        if len(accounts) > 1:
            raise GateError(400, "MIXED_ACCOUNT_TYPE", "Mixed account types in batch")
        results: list[dict[str, Any]] = []
        for item in body:
            assert isinstance(item, dict)
            try:
                order = self.place(item, batch=True)
            except GateError as err:
                results.append(
                    {
                        "text": item.get("text", ""),
                        "currency_pair": item.get("currency_pair", ""),
                        "account": item.get("account", "spot"),
                        "succeeded": False,
                        "label": err.label,
                        "message": err.message,
                    }
                )
            else:
                row = self.order_json(order)
                row = {"order_id": order.id, **row, "succeeded": True, "label": "", "message": ""}
                results.append(row)
        return results

    # ------------------------------------------------------------------ matching

    def _opposite(self, order: Order) -> list[_Liquidity]:
        book = self.books[order.pair]
        sources: list[_Liquidity] = []
        levels = book.asks if order.side == "buy" else book.bids
        for level in levels:
            sources.append(_Liquidity(price=level[0], rank=0, seq=0, level=level))
        for other in self._open(order.pair):
            if other is order or other.side == order.side:
                continue
            sources.append(_Liquidity(price=other.price, rank=1, seq=other.seq, order=other))
        sign = 1 if order.side == "buy" else -1
        sources.sort(key=lambda s: (sign * s.price, s.rank, s.seq))
        return sources

    def _within_limit(self, order: Order, price: Decimal) -> bool:
        if order.type == "market":
            return True
        return price <= order.price if order.side == "buy" else price >= order.price

    def _take_qty(
        self, order: Order, remaining: Decimal, source_size: Decimal, price: Decimal
    ) -> Decimal:
        """Base quantity the taker takes from one source; ``remaining`` is in quote for a
        market buy (whole lots only), else in base."""
        if order.type == "market" and order.side == "buy":
            lot = self.markets[order.pair].lot
            affordable = (remaining / price / lot).to_integral_value(ROUND_FLOOR) * lot
            return min(source_size, affordable)
        return min(source_size, remaining)

    def _fully_fillable(self, order: Order, sources: Sequence[_Liquidity]) -> bool:
        """Whether ``order`` would fill completely (fok); a market buy is complete once its
        remaining quote cannot buy another lot."""
        market_buy = order.type == "market" and order.side == "buy"
        remaining = order.left
        for source in sources:
            qty = self._take_qty(order, remaining, source.size, source.price)
            if qty <= 0 or (market_buy and qty < source.size):
                return market_buy
            remaining -= qty * source.price if market_buy else qty
            if remaining == 0:
                return True
        return False

    def _match_incoming(self, order: Order) -> None:
        sources = [s for s in self._opposite(order) if self._within_limit(order, s.price)]
        market_buy = order.type == "market" and order.side == "buy"
        if order.tif == "fok" and not self._fully_fillable(order, sources):
            self._finish(order, "cancelled", "fok")
            return
        unaffordable = False
        for source in sources:
            if not order.is_open:
                break
            qty = self._take_qty(order, order.left, source.size, source.price)
            if qty <= 0:
                unaffordable = True
                break
            if market_buy and qty < source.size:
                unaffordable = True  # limited by the quote left, not by the liquidity
            self._fill(order, qty, source.price, "taker")
            if source.order is not None:
                self._fill(source.order, qty, source.price, "maker")
            else:
                assert source.level is not None
                source.level[1] -= qty
        book = self.books[order.pair]
        book.bids = [lv for lv in book.bids if lv[1] > 0]
        book.asks = [lv for lv in book.asks if lv[1] > 0]
        if not order.is_open:
            return
        if market_buy and unaffordable:
            self._finish(order, "closed", "filled")  # the quote left cannot buy another lot
        elif order.type == "market":
            self._finish(order, "cancelled", "depth_not_enough")
        elif order.tif in ("ioc", "fok"):
            self._finish(order, "cancelled", order.tif)

    def _fill(self, order: Order, qty: Decimal, price: Decimal, role: str) -> Fill:
        market = self.markets[order.pair]
        rate = market.maker_fee_rate if role == "maker" else market.taker_fee_rate
        cost = qty * price
        base, quote = self._balance(market.base), self._balance(market.quote)
        if order.side == "buy":
            release = cost if order.type == "market" else qty * order.price
            quote.locked -= release
            quote.available += release - cost
            order.locked -= release
            fee, fee_currency = qty * rate, market.base
            base.available += qty - fee
        else:
            base.locked -= qty
            order.locked -= qty
            fee, fee_currency = cost * rate, market.quote
            quote.available += cost - fee
        if order.type == "market" and order.side == "buy":
            order.left -= cost
        else:
            order.left -= qty
        order.filled_amount += qty
        order.filled_total += cost
        order.fee += fee
        now = self.clock()
        order.update_ms = int(now * 1000)
        seq = self._sequence_ids.get(order.pair, 0) + 1
        self._sequence_ids[order.pair] = seq
        fill = Fill(
            id=str(self._next_trade_id),
            order_id=order.id,
            text=order.text,
            pair=order.pair,
            side=order.side,
            role=role,
            amount=qty,
            price=price,
            fee=fee,
            fee_currency=fee_currency,
            time_ms=round(now * 1000, 3),
            sequence_id=seq,
        )
        self._next_trade_id += 1
        self.fills.append(fill)
        self.last_price[order.pair] = price
        # a market buy's left is quote: _match_incoming decides when it is done
        for listener in self.fill_listeners:
            listener(fill)
        if order.left == 0 and not (order.type == "market" and order.side == "buy"):
            self._finish(order, "closed", "filled")
        else:
            self._notify_order("update", order)
        return fill

    def trade(self, side: str, price: object, size: object, pair: str | None = None) -> list[Fill]:
        """An outside taker ``side`` up to ``size`` base at limit ``price``: fills crossing API
        orders (maker role) by price-time priority. Returns the account's new fills."""
        if side not in ("buy", "sell"):
            raise ValueError("side must be 'buy' or 'sell'")
        market = self.market(self._pair_or_default(pair))
        limit, remaining = to_decimal(price), to_decimal(size)
        makers = [
            o
            for o in self._open(market.id)
            if o.side != side and (o.price >= limit if side == "sell" else o.price <= limit)
        ]
        # taker sells hit the highest bids first; taker buys lift the lowest asks first
        makers.sort(key=lambda o: ((-o.price if side == "sell" else o.price), o.seq))
        fills = []
        for maker in makers:
            if remaining <= 0:
                break
            qty = min(remaining, maker.left)
            fills.append(self._fill(maker, qty, maker.price, "maker"))
            remaining -= qty
        if fills:
            self._changed()
        return fills

    # ------------------------------------------------------------------ cancels

    def cancel(self, pair: str | None, ref: str) -> Order:
        """``DELETE /spot/orders/{order_id}``."""
        order = self.find(pair, ref)
        if order.status == "closed":
            raise GateError(400, "ORDER_CLOSED", "Order already closed")
        if order.status == "cancelled":
            raise GateError(400, "ORDER_CANCELLED", "Order already cancelled")
        self._finish(order, "cancelled", "cancelled")
        self._changed()
        return order

    def cancel_all(self, pair: str | None, side: str | None = None) -> list[Order]:
        """``DELETE /spot/orders``: every open order of ``pair`` (all pairs when empty)."""
        if pair:
            self.market(pair)
        if side not in (None, "buy", "sell"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: side")
        cancelled = []
        for order in sorted(self._open(pair or None), key=lambda o: o.seq):
            if side is None or order.side == side:
                self._finish(order, "cancelled", "cancelled")
                cancelled.append(order)
        if cancelled:
            self._changed()
        return cancelled

    def cancel_batch(self, body: object) -> list[dict[str, Any]]:
        """``POST /spot/cancel_batch_orders``: ``[{currency_pair, id, account?}]``."""
        if not isinstance(body, list):
            raise GateError(400, "INVALID_REQUEST_BODY", "request body must be an array")
        if len(body) > 20:
            raise GateError(400, "TOO_MANY_ORDERS", "At most 20 orders per batch cancel")
        out: list[dict[str, Any]] = []
        for item in body:
            item = item if isinstance(item, dict) else {}
            pair, ref = str(item.get("currency_pair", "")), str(item.get("id", ""))
            row: dict[str, Any] = {
                "currency_pair": pair,
                "id": ref,
                "text": "",
                "account": str(item.get("account", "")),
                "succeeded": True,
                "label": "",
                "message": "",
            }
            try:
                order = self.cancel(pair, ref)
            except GateError as err:
                row.update(succeeded=False, label=err.label, message=err.message)
            else:
                row.update(id=order.id, text=order.text)
            out.append(row)
        return out

    # ------------------------------------------------------------------ dead man's switch

    def set_countdown(self, body: object) -> int:
        """``POST /spot/countdown_cancel_all`` ``{timeout, currency_pair?}``: returns the trigger
        time in ms (0 when ``timeout`` is 0, which removes the countdown)."""
        if not isinstance(body, dict) or "timeout" not in body:
            raise GateError(400, "MISSING_REQUIRED_PARAM", "timeout is required")
        timeout = body["timeout"]
        if isinstance(timeout, bool) or not isinstance(timeout, int | str):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: timeout")
        try:
            seconds = int(timeout)
        except ValueError:
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: timeout") from None
        pair = _opt_str(body, "currency_pair") or ""
        if pair:
            self.market(pair)
        if seconds == 0:
            self.countdowns.pop(pair, None)
            self._changed()
            return 0
        if seconds < 5:
            raise GateError(400, "INVALID_PARAM_VALUE", "timeout must be at least 5 seconds, or 0")
        deadline = self.clock() + seconds
        self.countdowns[pair] = deadline
        self._changed()
        return int(deadline * 1000)

    def check_timers(self) -> int:
        """Fire every expired countdown: cancel the open orders of its pair (every pair for
        ``""``). Returns how many orders were cancelled."""
        now = self.clock()
        count = 0
        for pair, deadline in sorted(self.countdowns.items()):
            if deadline <= now:
                del self.countdowns[pair]
                count += len(self.cancel_all(pair or None))
        return count

    # ------------------------------------------------------------------ balances

    def set_balance(self, currency: str, available: object, locked: object | None = None) -> None:
        """Overwrite a balance (``locked`` kept unless given)."""
        bal = self._balance(currency)
        bal.available = to_decimal(available)
        if locked is not None:
            bal.locked = to_decimal(locked)
        self._changed()

    def accounts_json(self, currency: str | None = None) -> list[dict[str, Any]]:
        """``GET /spot/accounts``."""
        return [
            {
                "currency": cur,
                "available": fmt(bal.available),
                "locked": fmt(bal.locked),
                "update_id": 1,
            }
            for cur, bal in sorted(self.balances.items())
            if currency is None or cur == currency
        ]

    # ------------------------------------------------------------------ JSON shapes

    def order_json(self, order: Order) -> dict[str, Any]:
        """Gate's spot order (``FULL`` action mode)."""
        market = self.markets[order.pair]
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

    def fill_json(self, fill: Fill) -> dict[str, Any]:
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

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """JSON-able snapshot: orders, fills, balances, books, countdowns, counters."""
        return {
            "version": 1,
            "next_order_id": self._next_order_id,
            "next_trade_id": self._next_trade_id,
            "seq": self._seq,
            "sequence_ids": dict(self._sequence_ids),
            "balances": {
                cur: {"available": str(b.available), "locked": str(b.locked)}
                for cur, b in self.balances.items()
            },
            "orders": [_order_state(o) for o in self.orders_by_id.values()],
            "fills": [_fill_state(f) for f in self.fills],
            "books": {
                pair: {
                    "bids": [[str(p), str(s)] for p, s in b.bids],
                    "asks": [[str(p), str(s)] for p, s in b.asks],
                    "version": b.version,
                    "update_ms": b.update_ms,
                }
                for pair, b in self.books.items()
            },
            "countdowns": dict(self.countdowns),
            "last_price": {k: str(v) for k, v in self.last_price.items()},
            "book_ids": dict(self.book_ids),
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`to_state` output (markets stay those given to the constructor)."""
        self._next_order_id = int(state["next_order_id"])
        self._next_trade_id = int(state["next_trade_id"])
        self._seq = int(state["seq"])
        self._sequence_ids = {k: int(v) for k, v in state.get("sequence_ids", {}).items()}
        self.balances = {
            cur: Balance(D(b["available"]), D(b["locked"])) for cur, b in state["balances"].items()
        }
        self.orders_by_id = {}
        for raw in state["orders"]:
            order_fields: dict[str, Any] = {
                k: (D(v) if k in _ORDER_DECIMALS else v) for k, v in raw.items()
            }
            order = Order(**order_fields)
            self.orders_by_id[order.id] = order
        self.fills = []
        for raw in state["fills"]:
            fill_fields: dict[str, Any] = {
                k: (D(v) if k in _FILL_DECIMALS else v) for k, v in raw.items()
            }
            self.fills.append(Fill(**fill_fields))
        for pair, raw_book in state.get("books", {}).items():
            if pair in self.books:
                self.books[pair] = _Book(
                    bids=[[D(p), D(s)] for p, s in raw_book["bids"]],
                    asks=[[D(p), D(s)] for p, s in raw_book["asks"]],
                    version=int(raw_book.get("version", 0)),
                    update_ms=int(raw_book.get("update_ms", 0)),
                )
        self.countdowns = {k: float(v) for k, v in state.get("countdowns", {}).items()}
        self.last_price = {k: D(v) for k, v in state.get("last_price", {}).items()}
        for pair, book_id in state.get("book_ids", {}).items():
            if pair in self.book_ids:
                self.book_ids[pair] = int(book_id)
        # the restored book is what the restored id names (no update is published for it)
        self._book_at_id = {pair: self.merged_levels(pair) for pair in self.markets}


_ORDER_DECIMALS = frozenset(
    {"price", "amount", "left", "filled_amount", "filled_total", "fee", "locked"}
)
_FILL_DECIMALS = frozenset({"amount", "price", "fee"})


def _order_state(order: Order) -> dict[str, Any]:
    return {k: (str(v) if k in _ORDER_DECIMALS else v) for k, v in order.__dict__.items()}


def _fill_state(fill: Fill) -> dict[str, Any]:
    return {k: (str(v) if k in _FILL_DECIMALS else v) for k, v in fill.__dict__.items()}


def level_changes(old: Levels, new: Levels) -> tuple[tuple[Decimal, Decimal], ...]:
    """Levels of ``new`` that differ from ``old``, and ``(price, 0)`` for those gone."""
    changed = [(p, s) for p, s in new.items() if old.get(p) != s]
    changed += [(p, ZERO) for p in old if p not in new]
    return tuple(sorted(changed))


def _page(rows: list[Any], page: int, limit: int) -> list[Any]:
    if page < 1 or limit < 1:
        raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: page/limit")
    start = (page - 1) * limit
    return rows[start : start + limit]


def _opt_str(body: Mapping[str, Any], key: str) -> str | None:
    value = body.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {key}")
    return value


def _parse_positive(value: object, name: str) -> Decimal:
    if value is None or value == "":
        raise GateError(400, "MISSING_REQUIRED_PARAM", f"{name} is required")
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    try:
        number = D(str(value))
    except InvalidOperation:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}") from None
    if not number.is_finite() or number <= 0:
        raise GateError(400, "INVALID_PARAM_VALUE", f"invalid argument: {name}")
    return number
