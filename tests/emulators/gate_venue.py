"""Gate.io spot APIv4 over the shared matching engine (no I/O): the Gate emulator's adapter.

:class:`GateVenue` wires one :class:`~tests.emulators.matching.MatchingEngine` to Gate: its
markets (:class:`~tests.emulators.gate_shapes.GateMarket`), one account (``spot``), the engine's
orders and fills shown as Gate's (:mod:`tests.emulators.gate_shapes`), Gate's queries, the test
controls of the outside book, and the observers below. Orders, fills, balances, the outside book
and book numbering are the engine's. The HTTP layer (:mod:`tests.emulators.gate`) uses it, with
order entry and cancels in :mod:`tests.emulators.gate_orders`, amends in
:mod:`tests.emulators.gate_amend` (request checks: :mod:`tests.emulators.gate_requests`); the
websockets (:mod:`tests.emulators.gate_ws`) follow its observers.

Gate's rules kept here, on top of the engine's model (see :mod:`tests.emulators.matching`):

* ``text`` (client id): ``t-`` + up to 28 characters, or ``apiv4`` when none is sent; texts
  need not be unique; an order is found by its text only while it is open (the newest one).
* ``time_in_force`` ``poc`` is the engine's post-only: ``poc_cross="reject"`` answers
  ``POC_FILL_IMMEDIATELY``, ``"cancel"`` accepts it already cancelled (``finish_as="poc"``).
* A market buy's ``amount`` is quote (the engine's ``funds``); it ends ``closed`` / ``filled``
  when what is left cannot buy another lot, ``cancelled`` / ``depth_not_enough`` when it emptied
  the asks; other market orders that find too little end ``depth_not_enough`` too.
* Book update ids: one per operation that changed a pair's merged book (the engine's
  ``book_seq_per="change"``), from :data:`FIRST_BOOK_UPDATE_ID`: the ``id`` of ``GET
  /spot/order_book?with_id=true`` and the ``U``/``u`` of the websocket updates.
* Countdown cancel-all per pair (``""``: every pair) is the engine's dead man's switch.

Observers (the websocket layer; the REST layer needs none): ``order_listeners(event, order)``
with Gate's ``put`` / ``update`` / ``finish``, ``fill_listeners(fill)``, ``book_listeners(update)``
(:class:`BookUpdate`) and ``change_listeners()`` after every operation (balances).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any

from tests.emulators.gate_requests import page as page_of
from tests.emulators.gate_shapes import (
    DEFAULT_BALANCES,
    DEFAULT_MARKETS,
    DEFAULT_TEXT,
    FIRST_BOOK_UPDATE_ID,
    POC_MODES,
    ZERO,
    BookUpdate,
    GateError,
    GateFill,
    GateMarket,
    GateOrder,
    Levels,
    fill_json,
    fmt,
    order_json,
    to_decimal,
)
from tests.emulators.matching import MatchingEngine
from tests.emulators.matching_types import (
    BUY,
    CANCELED,
    FILLED,
    FOK,
    GTC,
    IOC,
    POST_ONLY,
    SELL,
    Balance,
    BookChange,
    Fill,
    Order,
    OrderEvent,
)

#: The one emulated account (Gate's ``account`` field).
ACCOUNT = "spot"
ORDER_ID_BASE = 100_000_000_000
TRADE_ID_BASE = 5_000_000_000
STATE_VERSION = 1  # of the ``gate`` part of the state
#: Gate's ``time_in_force`` as the engine's.
TIF_IN = {"gtc": GTC, "ioc": IOC, "poc": POST_ONLY, "fok": FOK}
_TIF_OUT = {engine: gate for gate, engine in TIF_IN.items()}
#: The engine's ``cancel_reason`` as Gate's ``finish_as``.
_FINISH_AS = {"ioc": "ioc", "fok": "fok", "post_only": "poc", "no_liquidity": "depth_not_enough"}


class GateVenue:
    """Markets, balances, orders, fills and countdowns of one emulated Gate spot account."""

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
        self.poc_cross = poc_cross
        self.on_change = on_change
        self.markets: dict[str, GateMarket] = {
            m.id: m for m in (markets if markets is not None else DEFAULT_MARKETS)
        }
        self.engine = MatchingEngine(
            [m.engine_market() for m in self.markets.values()],
            clock,
            post_only_cross=poc_cross,
            order_id=self._order_id,
            book_seq_per="change",
        )
        self.clock = self.engine.clock
        self.engine.add_account(ACCOUNT)
        for market in self.markets.values():
            self.engine.balance(ACCOUNT, market.base)
            self.engine.balance(ACCOUNT, market.quote)
        for currency, amount in (balances if balances is not None else DEFAULT_BALANCES).items():
            self.engine.set_balance(ACCOUNT, currency, amount)
        #: Gate's own per-order values the engine does not keep (by order id).
        self.texts: dict[str, str] = {}
        self.amend_texts: dict[str, str] = {}
        self.depth_not_enough: set[str] = set()
        #: When ``set_book`` last replaced a pair's outside book (``order_book``'s ``update``).
        self.book_update_ms: dict[str, int] = {}
        self._sequence_ids: dict[str, int] = {}  # engine fill id -> n-th fill of its pair
        self._fill_counts: dict[str, int] = {}
        #: The ``text`` of the order being placed (the engine's order id callback stores it).
        self.placing_text: str | None = None
        self.order_listeners: list[Callable[[str, GateOrder], None]] = []
        self.fill_listeners: list[Callable[[GateFill], None]] = []
        self.book_listeners: list[Callable[[BookUpdate], None]] = []
        self.change_listeners: list[Callable[[], None]] = []
        self.engine.observers.on_order.append(self._on_engine_order)
        self.engine.observers.on_book.append(self._on_engine_book)

    # ------------------------------------------------------------------ engine events

    def _order_id(self, n: int) -> str:
        order_id = str(ORDER_ID_BASE + n)
        if self.placing_text is not None:
            self.texts[order_id] = self.placing_text
        return order_id

    def _on_engine_order(self, event: OrderEvent) -> None:
        order = event.order
        if event.kind == "received":
            self._notify("put", order)
        elif event.kind == "match":
            assert event.fill is not None
            fill = event.fill
            self._fill_counts[fill.symbol] = self._fill_counts.get(fill.symbol, 0) + 1
            self._sequence_ids[fill.id] = self._fill_counts[fill.symbol]
            gate_fill = self.gate_fill(fill)
            for fill_listener in self.fill_listeners:
                fill_listener(gate_fill)
            if order.size is None or order.remaining != 0:  # a market buy's end comes later
                self._notify("update", order)
        elif event.kind in (FILLED, CANCELED):
            if event.kind == FILLED and order.size is None and not self._asks_left(order.symbol):
                self.depth_not_enough.add(order.id)
            self._notify("finish", order)

    def _asks_left(self, pair: str) -> bool:
        return bool(self.engine.outside[pair].asks) or any(
            o.is_open and o.resting and o.side == SELL and o.symbol == pair
            for o in self.engine.orders.values()
        )

    def _notify(self, event: str, order: Order) -> None:
        view = self.view(order)
        for listener in self.order_listeners:
            listener(event, view)

    def _on_engine_book(self, change: BookChange) -> None:
        update = BookUpdate(
            change.symbol,
            FIRST_BOOK_UPDATE_ID + change.seq_end,
            change.time_ms,
            tuple((c.price, c.size) for c in change.changes if c.side == BUY),
            tuple((c.price, c.size) for c in change.changes if c.side == SELL),
        )
        for listener in self.book_listeners:
            listener(update)

    def changed(self) -> None:
        """Tell the change listeners (balances) and ``on_change`` (the state file)."""
        for listener in self.change_listeners:
            listener()
        if self.on_change is not None:
            self.on_change()

    def order_updated(self, order: GateOrder) -> None:
        """Tell the order listeners an open order changed outside a fill (an amend)."""
        if order.is_open:
            self._notify("update", self.engine.orders[order.id])

    # ------------------------------------------------------------------ views

    def now_ms(self) -> int:
        """Engine time in milliseconds."""
        return self.engine.now_ms()

    def view(self, order: Order) -> GateOrder:
        """The engine's order as Gate shows it."""
        if order.is_open:
            status = finish_as = "open"
        elif order.status == FILLED and order.id not in self.depth_not_enough:
            status, finish_as = "closed", "filled"
        elif order.status == FILLED:
            status, finish_as = "cancelled", "depth_not_enough"
        else:
            status, finish_as = "cancelled", _FINISH_AS.get(order.cancel_reason or "", "cancelled")
        amount = order.size if order.size is not None else order.funds
        assert amount is not None
        return GateOrder(
            id=order.id,
            text=self.texts.get(order.id, DEFAULT_TEXT),
            pair=order.symbol,
            side=order.side,
            type=order.type,
            tif=_TIF_OUT[order.tif],
            price=order.price if order.price is not None else ZERO,
            amount=amount,
            left=order.remaining,
            seq=order.arrival,
            create_ms=order.created_ms,
            update_ms=order.updated_ms,
            account=ACCOUNT,
            filled_amount=order.filled,
            filled_total=order.filled_funds,
            fee=order.fee,
            locked=order.locked,
            status=status,
            finish_as=finish_as,
            finish_ms=order.done_ms,
            amend_text=self.amend_texts.get(order.id, "-"),
        )

    def gate_fill(self, fill: Fill) -> GateFill:
        """The engine's fill as Gate shows it (trade ids are per fill, as Gate's are)."""
        return GateFill(
            id=str(TRADE_ID_BASE + int(fill.id)),
            order_id=fill.order_id,
            text=self.texts.get(fill.order_id, DEFAULT_TEXT),
            pair=fill.symbol,
            side=fill.side,
            role=fill.role,
            amount=fill.size,
            price=fill.price,
            fee=fill.fee,
            fee_currency=fill.fee_asset,
            time_ms=fill.time_ms,
            sequence_id=self._sequence_ids.get(fill.id, 0),
        )

    def order_json(self, order: GateOrder) -> dict[str, Any]:
        """Gate's spot order (``FULL`` action mode)."""
        return order_json(order, self.markets[order.pair])

    def fill_json(self, fill: GateFill) -> dict[str, Any]:
        """Gate's ``GET /spot/my_trades`` entry."""
        return fill_json(fill)

    @property
    def balances(self) -> dict[str, Balance]:
        """The account's balances by currency (the engine's, live)."""
        return self.engine.accounts[ACCOUNT]

    @property
    def fills(self) -> list[GateFill]:
        """Every fill, oldest first."""
        return [self.gate_fill(f) for f in self.engine.fill_log]

    @property
    def last_price(self) -> dict[str, Decimal]:
        return self.engine.last_price

    @property
    def book_ids(self) -> dict[str, int]:
        """Current book update id per pair."""
        return {pair: FIRST_BOOK_UPDATE_ID + seq for pair, seq in self.engine.book_seq.items()}

    @property
    def countdowns(self) -> dict[str, float]:
        """Armed countdowns: ``{currency_pair or "": deadline on clock}``."""
        return {symbol: deadline for (_, symbol), deadline in self.engine.timers.items()}

    def market(self, pair: str | None) -> GateMarket:
        """The market ``pair`` or ``INVALID_CURRENCY_PAIR``."""
        if not pair:
            raise GateError(400, "MISSING_REQUIRED_PARAM", "currency_pair is required")
        market = self.markets.get(pair)
        if market is None:
            raise GateError(400, "INVALID_CURRENCY_PAIR", f"Invalid currency pair {pair}")
        return market

    def _pair_or_default(self, pair: str | None) -> str:
        return next(iter(self.markets)) if pair is None else self.market(pair).id

    # ------------------------------------------------------------------ books

    def set_book(
        self,
        bids: Iterable[tuple[object, object]],
        asks: Iterable[tuple[object, object]],
        pair: str | None = None,
        fill_crossed: bool = True,
    ) -> list[GateFill]:
        """Replace the outside book of ``pair`` (default: the first market); with
        ``fill_crossed`` it first trades resting orders it crosses (maker fills, returned)."""
        pair_id = self._pair_or_default(pair)
        self.book_update_ms[pair_id] = self.now_ms()
        fills = self.engine.set_book(bids, asks, pair_id, fill_crossed)
        self.changed()
        return [self.gate_fill(f) for f in fills]

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        pair: str | None = None,
        step_ticks: int = 1,
        fill_crossed: bool = True,
    ) -> list[GateFill]:
        """An outside book around ``mid`` (the engine's ``set_mid``); see :meth:`set_book`."""
        pair_id = self._pair_or_default(pair)
        self.book_update_ms[pair_id] = self.now_ms()
        fills = self.engine.set_mid(
            mid, spread_bps, levels, size, pair_id, step_ticks, fill_crossed
        )
        self.changed()
        return [self.gate_fill(f) for f in fills]

    def merged_levels(self, pair: str) -> tuple[Levels, Levels]:
        """Merged book of ``pair`` (outside + resting orders): bids and asks by price."""
        snapshot = self.engine.book(pair)
        return dict(snapshot.bids), dict(snapshot.asks)

    def book_snapshot(
        self, pair: str, limit: int | None = None
    ) -> tuple[list[list[str]], list[list[str]], int]:
        """Merged book as Gate's ``[[price, size], ...]``, best first, and its update time."""
        market = self.market(pair)
        snapshot = self.engine.book(market.id, limit)
        return (
            [[fmt(p), fmt(s)] for p, s in snapshot.bids],
            [[fmt(p), fmt(s)] for p, s in snapshot.asks],
            self.book_update_ms.get(market.id, 0),
        )

    def best_prices(self, pair: str) -> tuple[Decimal | None, Decimal | None]:
        """Best bid and ask of the merged book."""
        return self.engine.best(self.market(pair).id)

    def trade(
        self, side: str, price: object, size: object, pair: str | None = None
    ) -> list[GateFill]:
        """An outside taker ``side`` up to ``size`` base at limit ``price``: fills crossing API
        orders (maker role) by price-time priority. Returns the account's new fills."""
        if side not in (BUY, SELL):
            raise ValueError("side must be 'buy' or 'sell'")
        fills = self.engine.trade(self._pair_or_default(pair), side, price, size)
        if fills:
            self.changed()
        return [self.gate_fill(f) for f in fills]

    # ------------------------------------------------------------------ queries

    def _find(self, pair: str | None, ref: str) -> Order:
        market = self.market(pair)
        if ref.startswith("t-"):
            matches = [
                o
                for o in self.engine.orders_of(ACCOUNT, market.id, True)
                if self.texts.get(o.id) == ref
            ]
            if matches:
                return max(matches, key=lambda o: o.arrival)
        else:
            order = self.engine.orders.get(ref)
            if order is not None and order.symbol == market.id:
                return order
        raise GateError(404, "ORDER_NOT_FOUND", "Order not found")

    def find(self, pair: str | None, ref: str) -> GateOrder:
        """Order ``ref`` (an id, or for an open order its ``t-`` text) in ``pair``.

        Gate: "Operations based on custom IDs can only be checked in pending orders. Only order
        ID can be used after the order is finished".
        """
        return self.view(self._find(pair, ref))

    def orders(self) -> list[GateOrder]:
        """Every order, oldest first (an amend that lost the queue place counts as newer)."""
        return [self.view(o) for o in self.engine.orders_of(ACCOUNT)]

    def list_orders(
        self,
        pair: str | None,
        status: str | None,
        page: int = 1,
        limit: int = 100,
        start: int | None = None,
        end: int | None = None,
        side: str | None = None,
    ) -> list[GateOrder]:
        """``GET /spot/orders``: newest first."""
        market = self.market(pair)
        if status not in ("open", "finished"):
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: status")
        if status == "open" and limit > 100:
            raise GateError(400, "INVALID_PARAM_VALUE", "invalid argument: limit")
        rows = [
            o
            for o in map(self.view, self.engine.orders_of(ACCOUNT, market.id, status == "open"))
            if status == "open"
            or (
                (side is None or o.side == side)
                and (start is None or (o.finish_ms or 0) >= start * 1000)
                and (end is None or (o.finish_ms or 0) <= end * 1000)
            )
        ]
        rows.sort(key=lambda o: -o.seq)
        return page_of(rows, page, limit)

    def open_orders_grouped(self, page: int = 1, limit: int = 100) -> list[dict[str, Any]]:
        """``GET /spot/open_orders``: every pair with open orders, ``limit`` per pair."""
        out = []
        for pair in self.markets:
            rows = [self.view(o) for o in reversed(self.engine.orders_of(ACCOUNT, pair, True))]
            if not rows:
                continue
            shown = page_of(rows, page, limit)
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
    ) -> list[GateFill]:
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
        return page_of(rows, page, limit)

    # ------------------------------------------------------------------ countdowns and balances

    def check_timers(self) -> int:
        """Fire every expired countdown: cancel the open orders of its pair (every pair for
        ``""``). Returns how many orders were cancelled."""
        count = self.engine.check_timers()
        if count:
            self.changed()
        return count

    def set_balance(self, currency: str, available: object, locked: object | None = None) -> None:
        """Overwrite a balance (``locked`` kept unless given)."""
        balance = self.engine.balance(ACCOUNT, currency)
        balance.available = to_decimal(available)
        if locked is not None:
            balance.locked = to_decimal(locked)
        self.changed()

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

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """JSON-able state: the engine's (``orders``, ``fills``, balances, books, countdowns,
        counters), and under ``gate`` Gate's own per-order values."""
        return {
            **self.engine.to_state(),
            "gate": {
                "version": STATE_VERSION,
                "texts": dict(self.texts),
                "amend_texts": dict(self.amend_texts),
                "depth_not_enough": sorted(self.depth_not_enough),
                "book_update_ms": dict(self.book_update_ms),
            },
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`to_state` output (markets stay those given to the constructor); book
        update ids continue from it."""
        gate = state.get("gate") or {}
        if gate.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported Gate state version {gate.get('version')}")
        self.engine.load_state(state)
        self.texts = dict(gate["texts"])
        self.amend_texts = dict(gate["amend_texts"])
        self.depth_not_enough = set(gate["depth_not_enough"])
        self.book_update_ms = {k: int(v) for k, v in gate["book_update_ms"].items()}
        self._sequence_ids, self._fill_counts = {}, {}
        for fill in self.engine.fill_log:
            self._fill_counts[fill.symbol] = self._fill_counts.get(fill.symbol, 0) + 1
            self._sequence_ids[fill.id] = self._fill_counts[fill.symbol]
