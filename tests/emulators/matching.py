"""Exchange-neutral matching engine behind the exchange emulators (no wire format, no I/O).

Each emulator (KuCoin, BingX, later Gate and MEXC) is an adapter: it parses its exchange's
requests, calls :class:`MatchingEngine`, maps :class:`MatchingError` reasons to its exchange's
codes and renders :class:`Order` / :class:`Fill` / :class:`BookChange` in its exchange's shapes.
Everything is synchronous (an operation is atomic with respect to other requests on the event
loop) and :class:`~decimal.Decimal`; time comes from the injected ``clock`` (seconds). The value
types (``Market``, ``Order``, ``Fill``, the events, ``MatchingError`` and ``Reason``) live in
:mod:`tests.emulators.matching_types`: adapters import them from there.

API
---
=====================================  ======================================================
``MatchingEngine(markets, clock)``     ``markets``: :class:`Market` (symbol, base, quote, tick,
                                       lot, min size / notional, maker / taker fee rates)
``add_account(key, balances)``         an account (API key) with ``available`` balances
``set_balance``, ``balance(key, a)``   :class:`Balance` (``available``, ``locked``)
``set_book`` / ``set_mid``             the synthetic outside book of a market (everybody else)
``place(key, symbol, side, ...)``      a limit or market order: :data:`GTC` / :data:`IOC` /
                                       :data:`FOK` / :data:`POST_ONLY` (``post_only_cross``
                                       ``"reject"`` raises, ``"cancel"`` accepts then cancels);
                                       market orders by ``size`` (base) or ``funds`` (quote)
``amend(key, order_id, price, size)``  an open limit order in place (same id)
``cancel(key, order_id|client_id)``    one order; ``cancel_all(key, symbol?, side?)``
``arm_cancel_all`` / ``check_timers``  a dead man's switch per (account, symbol)
``trade(symbol, side, price, size)``   an outside taker: fills resting API orders as maker
``find`` / ``orders_of`` / ``fills``   queries (by exchange id or client id, open or done)
``book(symbol, depth)``                the merged book (:class:`BookSnapshot` with ``seq``)
``observers``                          ``on_book(BookChange)``, ``on_order(OrderEvent)``,
                                       ``on_fill(Fill)``: called after each operation
``to_state()`` / ``load_state()``      JSON-able state (crash-restart tests)
=====================================  ======================================================

Model
-----
* The synthetic outside book is merged with resting API orders (of every account). An incoming
  order matches in price-time priority: at one price the outside level goes first (it was there
  before), then resting API orders by arrival. The outside size it takes is consumed. Self-trades
  happen (two fills, taker and maker), as on the exchanges without self-trade prevention.
* :meth:`MatchingEngine.set_book` with ``fill_crossed`` (default) first trades outside levels that
  cross resting API orders against them (maker fills at the order's price), so the merged book is
  never left crossed. :meth:`MatchingEngine.trade` fills resting API orders only.
* Placing locks ``size * price`` quote (limit buy), ``funds`` or the planned cost (market buy) or
  ``size`` base (sell); fills move locked funds, cancels and completion release the rest. The fee is
  charged, unrounded, in the asset received (base for a buy, quote for a sell), or with
  ``Market.fee_in="quote"`` always in the quote asset (KuCoin): a buy then locks its notional
  plus the higher fee rate, and a market buy by funds spends fee and cost from its funds.
* Every change of the merged book's aggregated levels bumps the market's sequence number by one per
  changed level; :class:`BookChange` carries ``seq_start..seq_end`` and each level's own ``seq``.
  With ``book_seq_per="change"`` a whole :class:`BookChange` (one operation) takes one number.
* Order events, in order: ``received`` (accepted), ``open`` (rests), ``match`` (with its fill),
  ``filled`` / ``canceled`` (done; ``cancel_reason`` says why); ``amended`` after an amend.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tests.emulators.matching_types import (
    BUY,
    CANCELED,
    FILLED,
    FOK,
    GTC,
    IOC,
    LIMIT,
    MARKET,
    POST_ONLY,
    POST_ONLY_CROSS,
    SELL,
    STATE_VERSION,
    TIME_IN_FORCE,
    ZERO,
    Balance,
    BookChange,
    BookSnapshot,
    D,
    Fill,
    LevelChange,
    Market,
    MatchingError,
    Observers,
    Order,
    OrderEvent,
    Reason,
    dec,
    from_json,
    to_json,
)


@dataclass
class _Source:
    """Opposite liquidity during matching: an outside level or a resting order."""

    price: Decimal
    rank: int  # 0 outside, 1 API order
    arrival: int
    level: list[Decimal] | None = None
    order: Order | None = None

    @property
    def size(self) -> Decimal:
        if self.order is not None:
            return self.order.remaining
        assert self.level is not None
        return self.level[1]


@dataclass
class _Outside:
    bids: list[list[Decimal]] = field(default_factory=list)  # [price, size], best first
    asks: list[list[Decimal]] = field(default_factory=list)


Levels = Iterable[tuple[object, object]]


class MatchingEngine:
    """Markets, accounts, orders, fills and books of one emulated exchange."""

    def __init__(
        self,
        markets: Sequence[Market] = (Market(),),
        clock: Callable[[], float] | None = None,
        *,
        post_only_cross: str = "reject",
        order_id: Callable[[int], str] = str,
        trade_id: Callable[[int], str] = str,
        book_seq_per: str = "level",
    ) -> None:
        if post_only_cross not in POST_ONLY_CROSS:
            raise ValueError(f"post_only_cross must be one of {POST_ONLY_CROSS}")
        if book_seq_per not in ("level", "change"):
            raise ValueError("book_seq_per must be 'level' or 'change'")
        #: ``"level"``: one sequence number per changed level; ``"change"``: one per
        #: :class:`BookChange` (Gate: one update id per order book update).
        self.book_seq_per = book_seq_per
        self.clock: Callable[[], float] = clock if clock is not None else time.time
        self.post_only_cross = post_only_cross
        self.markets = {m.symbol: m for m in markets}
        self.accounts: dict[str, dict[str, Balance]] = {}
        self.orders: dict[str, Order] = {}
        self.fill_log: list[Fill] = []
        self.outside = {s: _Outside() for s in self.markets}
        self.book_seq = dict.fromkeys(self.markets, 0)
        self.last_price: dict[str, Decimal] = {}
        #: (account, symbol or "") -> deadline on ``clock``.
        self.timers: dict[tuple[str, str], float] = {}
        self.observers = Observers()
        self._order_id, self._trade_id = order_id, trade_id
        self._counter = itertools.count(1)
        self._published = {s: self._merged(s) for s in self.markets}
        self._events: list[OrderEvent | Fill] = []
        self._depth = 0

    # ------------------------------------------------------------------ basics

    def now_ms(self) -> int:
        return int(self.clock() * 1000)

    def market(self, symbol: str | None) -> Market:
        market = self.markets.get(symbol or "")
        if market is None:
            raise MatchingError(Reason.UNKNOWN_MARKET, f"unknown market {symbol}")
        return market

    def add_account(self, key: str, balances: Mapping[str, object] | None = None) -> None:
        assets = self.accounts.setdefault(key, {})
        for asset, amount in (balances or {}).items():
            assets[asset] = Balance(available=dec(amount))

    def balance(self, key: str, asset: str) -> Balance:
        return self._assets(key).setdefault(asset, Balance())

    def set_balance(self, key: str, asset: str, available: object) -> None:
        self.balance(key, asset).available = dec(available)

    def _assets(self, key: str) -> dict[str, Balance]:
        assets = self.accounts.get(key)
        if assets is None:
            raise MatchingError(Reason.UNKNOWN_ACCOUNT, f"unknown account {key}")
        return assets

    def _next(self) -> int:
        return next(self._counter)

    @contextmanager
    def _operation(self) -> Iterator[None]:
        """Batch observer calls until the outermost operation is done (state is final)."""
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._flush()

    def _flush(self) -> None:
        events, self._events = self._events, []
        for event in events:
            if isinstance(event, Fill):
                for fill_cb in self.observers.on_fill:
                    fill_cb(event)
            else:
                for order_cb in self.observers.on_order:
                    order_cb(event)
        for symbol in self.markets:
            change = self._diff_book(symbol)
            if change is not None:
                for book_cb in self.observers.on_book:
                    book_cb(change)

    def _emit(self, kind: str, order: Order, fill: Fill | None = None) -> None:
        self._events.append(OrderEvent(kind, replace(order), fill))

    # ------------------------------------------------------------------ books

    def set_book(
        self, bids: Levels, asks: Levels, symbol: str | None = None, fill_crossed: bool = True
    ) -> list[Fill]:
        """Replace the outside book of ``symbol`` (default: the first market); see the module
        docstring for ``fill_crossed``. Returns the fills it caused."""
        sym = symbol or next(iter(self.markets))
        self.market(sym)
        out = self.outside[sym]
        out.bids = sorted(([dec(p), dec(s)] for p, s in bids if dec(s) > 0), key=lambda lv: -lv[0])
        out.asks = sorted(([dec(p), dec(s)] for p, s in asks if dec(s) > 0), key=lambda lv: lv[0])
        with self._operation():
            return self._cross_resting(sym) if fill_crossed else []

    def set_mid(
        self,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        symbol: str | None = None,
        step_ticks: int = 1,
        fill_crossed: bool = True,
    ) -> list[Fill]:
        """An outside book around ``mid``: best bid/ask ``spread_bps`` apart (rounded outwards
        to the tick), ``levels`` per side ``step_ticks`` apart, ``size`` each."""
        market = self.market(symbol or next(iter(self.markets)))
        mid_d, half, tick = dec(mid), dec(spread_bps) / D(20000), market.tick
        best_bid = (mid_d * (1 - half) / tick).to_integral_value(ROUND_FLOOR) * tick
        best_ask = (mid_d * (1 + half) / tick).to_integral_value(ROUND_CEILING) * tick
        if best_ask <= best_bid:
            best_ask = best_bid + tick
        size_d, step = dec(size), tick * step_ticks
        bids = [(best_bid - i * step, size_d) for i in range(levels) if best_bid - i * step > 0]
        asks = [(best_ask + i * step, size_d) for i in range(levels)]
        return self.set_book(bids, asks, market.symbol, fill_crossed)

    def _merged(self, symbol: str) -> tuple[dict[Decimal, Decimal], dict[Decimal, Decimal]]:
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        out = self.outside[symbol]
        for price, size in out.bids:
            bids[price] = bids.get(price, ZERO) + size
        for price, size in out.asks:
            asks[price] = asks.get(price, ZERO) + size
        for order in self._resting(symbol):
            side = bids if order.side == BUY else asks
            assert order.price is not None
            side[order.price] = side.get(order.price, ZERO) + order.remaining
        return bids, asks

    def _diff_book(self, symbol: str) -> BookChange | None:
        old, new = self._published[symbol], self._merged(symbol)
        changes: list[LevelChange] = []
        start = self.book_seq[symbol] + 1
        for side, before, after in ((BUY, old[0], new[0]), (SELL, old[1], new[1])):
            for price in sorted(set(before) | set(after)):
                size = after.get(price, ZERO)
                if before.get(price, ZERO) != size:
                    if self.book_seq_per == "level" or not changes:
                        self.book_seq[symbol] += 1
                    changes.append(LevelChange(side, price, size, self.book_seq[symbol]))
        self._published[symbol] = new
        if not changes:
            return None
        return BookChange(symbol, start, self.book_seq[symbol], tuple(changes), self.now_ms())

    def book(self, symbol: str, depth: int | None = None) -> BookSnapshot:
        """The merged book (outside + resting API orders), as last published."""
        self.market(symbol)
        bids, asks = self._published[symbol]
        bid_rows = tuple(sorted(bids.items(), key=lambda kv: -kv[0])[:depth])
        ask_rows = tuple(sorted(asks.items(), key=lambda kv: kv[0])[:depth])
        return BookSnapshot(symbol, self.book_seq[symbol], bid_rows, ask_rows, self.now_ms())

    def best(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        snap = self.book(symbol, 1)
        return (
            snap.bids[0][0] if snap.bids else None,
            snap.asks[0][0] if snap.asks else None,
        )

    # ------------------------------------------------------------------ queries

    def _resting(self, symbol: str | None = None) -> list[Order]:
        return [
            o
            for o in self.orders.values()
            if o.is_open and o.resting and (symbol is None or o.symbol == symbol)
        ]

    def find(self, key: str, order_id: str | None = None, client_id: str | None = None) -> Order:
        """The account's order by exchange id, or by client id (the open one, else the most
        recent done one)."""
        self._assets(key)
        if order_id is not None:
            order = self.orders.get(order_id)
            if order is not None and order.account == key:
                return order
        elif client_id is not None:
            matches = [
                o for o in self.orders.values() if o.account == key and o.client_id == client_id
            ]
            if matches:
                return max(matches, key=lambda o: (o.is_open, o.arrival))
        raise MatchingError(Reason.UNKNOWN_ORDER, "order not found")

    def orders_of(
        self, key: str, symbol: str | None = None, is_open: bool | None = None
    ) -> list[Order]:
        """The account's orders, oldest first."""
        self._assets(key)
        return sorted(
            (
                o
                for o in self.orders.values()
                if o.account == key
                and (symbol is None or o.symbol == symbol)
                and (is_open is None or o.is_open == is_open)
            ),
            key=lambda o: o.arrival,
        )

    def fills(self, key: str, symbol: str | None = None, order_id: str | None = None) -> list[Fill]:
        """The account's fills, oldest first."""
        return [
            f
            for f in self.fill_log
            if f.account == key
            and (symbol is None or f.symbol == symbol)
            and (order_id is None or f.order_id == order_id)
        ]

    # ------------------------------------------------------------------ order entry

    def place(
        self,
        key: str,
        symbol: str,
        side: str,
        *,
        type: str = LIMIT,
        price: object = None,
        size: object = None,
        funds: object = None,
        tif: str = GTC,
        client_id: str | None = None,
        post_only_cross: str | None = None,
    ) -> Order:
        """Place an order; returns it (possibly already done). Raises :class:`MatchingError`."""
        assets = self._assets(key)
        market = self.market(symbol)
        order = self._validated(key, market, side, type, price, size, funds, tif, client_id)
        crosses = False
        if tif == POST_ONLY:
            best_bid, best_ask = self.best(symbol)
            assert order.price is not None
            crosses = (side == BUY and best_ask is not None and order.price >= best_ask) or (
                side == SELL and best_bid is not None and order.price <= best_bid
            )
            if crosses and (post_only_cross or self.post_only_cross) == "reject":
                raise MatchingError(Reason.WOULD_CROSS, "post-only order would take liquidity")
        plan = self._plan(order)
        asset = market.quote if side == BUY else market.base
        need = self._lock_needed(order, plan)
        if assets.setdefault(asset, Balance()).available < need:
            raise MatchingError(Reason.INSUFFICIENT_BALANCE, f"insufficient {asset} balance")
        with self._operation():
            self.orders[order.id] = order
            self._emit("received", order)
            if crosses:
                self._finish(order, CANCELED, "post_only")
                return order
            bal = assets[asset]
            bal.available -= need
            bal.locked += need
            order.locked = need
            self._match(order, plan)
        return order

    def _validated(
        self,
        key: str,
        market: Market,
        side: str,
        order_type: str,
        price: object,
        size: object,
        funds: object,
        tif: str,
        client_id: str | None,
    ) -> Order:
        def bad(text: str) -> MatchingError:
            return MatchingError(Reason.INVALID_PARAMETER, text)

        if side not in (BUY, SELL):
            raise bad(f"side {side!r}")
        if order_type not in (LIMIT, MARKET) or tif not in TIME_IN_FORCE:
            raise bad(f"type {order_type!r} / time in force {tif!r}")
        if order_type == MARKET and tif in (GTC, POST_ONLY):
            tif = IOC
        if (size is None) == (funds is None) or (order_type == LIMIT and funds is not None):
            raise bad("give size, or funds for a market order")
        size_d = dec(size) if size is not None else None
        funds_d = dec(funds) if funds is not None else None
        price_d = dec(price) if order_type == LIMIT and price is not None else None
        if order_type == LIMIT and price_d is None:
            raise bad("price is required for a limit order")
        for value in (size_d, funds_d, price_d):
            if value is not None and (not value.is_finite() or value <= 0):
                raise bad("price, size and funds must be positive")
        if price_d is not None and price_d % market.tick:
            raise MatchingError(Reason.BAD_PRICE_STEP, f"price is not a multiple of {market.tick}")
        if size_d is not None and size_d % market.lot:
            raise MatchingError(Reason.BAD_SIZE_STEP, f"size is not a multiple of {market.lot}")
        if funds_d is not None and funds_d % market.funds_step:
            raise MatchingError(
                Reason.BAD_SIZE_STEP, f"funds not a multiple of {market.funds_step}"
            )
        if size_d is not None and size_d < market.min_size:
            raise MatchingError(Reason.BELOW_MIN_SIZE, f"size below {market.min_size}")
        notional = (
            funds_d if funds_d is not None else (size_d * price_d if price_d and size_d else None)
        )
        if notional is not None and notional < market.min_notional:
            raise MatchingError(Reason.BELOW_MIN_NOTIONAL, f"value below {market.min_notional}")
        if client_id is not None and any(
            o.client_id == client_id and o.is_open and o.account == key
            for o in self.orders.values()
        ):
            raise MatchingError(Reason.DUPLICATE_CLIENT_ID, f"client id {client_id} is in use")
        now, n = self.now_ms(), self._next()
        return Order(
            id=self._order_id(n),
            client_id=client_id,
            account=key,
            symbol=market.symbol,
            side=side,
            type=order_type,
            tif=tif,
            price=price_d,
            size=size_d,
            funds=funds_d,
            arrival=n,
            created_ms=now,
            updated_ms=now,
            fee_asset=_fee_asset(market, side),
        )

    def _lock_needed(self, order: Order, plan: list[tuple[_Source, Decimal]]) -> Decimal:
        if order.side == SELL:
            if order.size is not None:
                return order.size
            return sum((qty for _, qty in plan), ZERO)  # market sell by funds: what it sells
        if order.type == LIMIT:
            assert order.price is not None and order.size is not None
            return order.size * order.price * self._buy_markup(order)
        if order.funds is not None:
            return order.funds
        markup = self._buy_markup(order)  # market buy by size: the planned cost (and fee)
        return sum((qty * src.price * markup for src, qty in plan), ZERO)

    def _buy_markup(self, order: Order) -> Decimal:
        """1, or 1 + the fee rate a buy paying its fee in quote locks on top of its notional."""
        market = self.markets[order.symbol]
        if market.fee_in != "quote" or order.side != BUY:
            return D(1)
        rate = market.taker_fee if order.type == MARKET else max(market.maker_fee, market.taker_fee)
        return 1 + rate

    # ------------------------------------------------------------------ matching

    def _sources(self, order: Order) -> list[_Source]:
        out = self.outside[order.symbol]
        levels = out.asks if order.side == BUY else out.bids
        sources = [_Source(lv[0], 0, 0, level=lv) for lv in levels]
        sources += [
            _Source(o.price, 1, o.arrival, order=o)
            for o in self._resting(order.symbol)
            if o.side != order.side and o.price is not None
        ]
        sign = 1 if order.side == BUY else -1
        sources.sort(key=lambda s: (sign * s.price, s.rank, s.arrival))
        if order.price is None:
            return sources
        limit = order.price
        return [s for s in sources if (s.price <= limit if order.side == BUY else s.price >= limit)]

    def _plan(self, order: Order) -> list[tuple[_Source, Decimal]]:
        """The (source, base size) the order would take, in priority order (not applied)."""
        if order.tif == POST_ONLY:
            return []
        lot = self.markets[order.symbol].lot
        remaining = order.remaining
        plan: list[tuple[_Source, Decimal]] = []
        sources = self._sources(order)
        for src in sources:
            if remaining <= 0:
                break
            if order.size is None:  # funds: whole lots only
                unit = src.price * self._buy_markup(order)
                qty = min(src.size, (remaining / unit / lot).to_integral_value(ROUND_FLOOR) * lot)
                if qty <= 0:
                    break
                remaining -= qty * unit
            else:
                qty = min(src.size, remaining)
                remaining -= qty
            plan.append((src, qty))
        if order.tif == FOK and remaining > 0:
            # by funds, "all" is until what is left cannot buy another lot at the next price
            swept = len(plan) == len(sources) and all(qty == src.size for src, qty in plan)
            if order.size is not None or swept:
                return []
        return plan

    def _match(self, order: Order, plan: list[tuple[_Source, Decimal]]) -> None:
        if order.tif == FOK and not plan:
            self._finish(order, CANCELED, "fok")
            return
        for src, qty in plan:
            trade_id = self._trade_id(self._next())
            self._fill(order, qty, src.price, "taker", trade_id)
            if src.order is not None:
                self._fill(src.order, qty, src.price, "maker", trade_id)
            else:
                assert src.level is not None
                src.level[1] -= qty
        self._prune(order.symbol)
        if not order.is_open:
            return
        if order.type == MARKET:
            if order.filled > 0 and (order.size is None or order.remaining == 0):
                self._finish(order, FILLED, None)  # funds left cannot buy another lot
            else:
                self._finish(order, CANCELED, "no_liquidity")
        elif order.tif in (IOC, FOK):
            self._finish(order, CANCELED, order.tif)
        else:
            order.resting = True
            self._emit("open", order)

    def _prune(self, symbol: str) -> None:
        out = self.outside[symbol]
        out.bids = [lv for lv in out.bids if lv[1] > 0]
        out.asks = [lv for lv in out.asks if lv[1] > 0]

    def _fill(self, order: Order, qty: Decimal, price: Decimal, role: str, trade_id: str) -> Fill:
        market = self.markets[order.symbol]
        rate = market.maker_fee if role == "maker" else market.taker_fee
        cost = qty * price
        base, quote = (
            self.balance(order.account, market.base),
            self.balance(order.account, market.quote),
        )
        fee_in_quote = market.fee_in == "quote"
        if order.side == BUY:
            fee = cost * rate if fee_in_quote else qty * rate
            spent = cost + fee if fee_in_quote else cost
            if order.type == LIMIT and order.price is not None:
                release = qty * order.price * self._buy_markup(order)
            else:
                release = spent
            release = min(release, order.locked)
            quote.locked -= release
            quote.available += release - spent
            order.locked -= release
            base.available += qty if fee_in_quote else qty - fee
        else:
            base.locked -= qty
            order.locked -= qty
            fee = cost * rate
            quote.available += cost - fee
        order.filled += qty
        order.filled_funds += cost
        order.fee += fee
        now = self.now_ms()
        order.updated_ms = now
        fill = Fill(
            id=str(self._next()),
            trade_id=trade_id,
            order_id=order.id,
            client_id=order.client_id,
            account=order.account,
            symbol=order.symbol,
            side=order.side,
            role=role,
            price=price,
            size=qty,
            fee=fee,
            fee_asset=order.fee_asset,
            time_ms=now,
        )
        self.fill_log.append(fill)
        self.last_price[order.symbol] = price
        self._emit("match", order, fill)
        self._events.append(fill)
        if order.size is not None and order.remaining == 0:
            self._finish(order, FILLED, None)
        return fill

    def _finish(self, order: Order, status: str, reason: str | None) -> None:
        if order.locked:
            market = self.markets[order.symbol]
            bal = self.balance(order.account, market.quote if order.side == BUY else market.base)
            bal.locked -= order.locked
            bal.available += order.locked
            order.locked = ZERO
        order.status, order.cancel_reason = status, reason
        order.resting = False
        order.updated_ms = order.done_ms = self.now_ms()
        self._emit(status, order)

    def _cross_resting(self, symbol: str) -> list[Fill]:
        out, fills = self.outside[symbol], []
        resting = sorted(
            self._resting(symbol),
            key=lambda o: ((-(o.price or ZERO) if o.side == BUY else o.price), o.arrival),
        )
        for order in resting:
            assert order.price is not None
            for level in out.asks if order.side == BUY else out.bids:
                crosses = level[0] <= order.price if order.side == BUY else level[0] >= order.price
                if not crosses or not order.is_open:
                    break
                qty = min(level[1], order.remaining)
                if qty <= 0:
                    continue  # an earlier resting order took this level
                fills.append(
                    self._fill(order, qty, order.price, "maker", self._trade_id(self._next()))
                )
                level[1] -= qty
        self._prune(symbol)
        return fills

    def trade(self, symbol: str | None, side: str, price: object, size: object) -> list[Fill]:
        """An outside taker ``side`` of up to ``size`` at limit ``price``: fills crossing
        resting API orders as maker, price-time priority. Returns the fills."""
        if side not in (BUY, SELL):
            raise ValueError("side must be 'buy' or 'sell'")
        sym = symbol or next(iter(self.markets))
        self.market(sym)
        limit, remaining = dec(price), dec(size)
        makers = [
            o
            for o in self._resting(sym)
            if o.side != side
            and o.price is not None
            and (o.price >= limit if side == SELL else o.price <= limit)
        ]
        makers.sort(key=lambda o: ((-(o.price or ZERO) if side == SELL else o.price), o.arrival))
        fills = []
        with self._operation():
            for maker in makers:
                if remaining <= 0:
                    break
                qty = min(remaining, maker.remaining)
                assert maker.price is not None
                fills.append(
                    self._fill(maker, qty, maker.price, "maker", self._trade_id(self._next()))
                )
                remaining -= qty
        return fills

    def amend(
        self,
        key: str,
        order_id: str,
        *,
        price: object = None,
        size: object = None,
        post_only_cross: str | None = None,
    ) -> Order:
        """Change an open limit order in place (it keeps its id): a new ``price`` and/or total
        ``size`` (the filled part included). A size at the filled size finishes it ``filled``,
        below it ``canceled`` (otherwise unchanged). A new price or a larger size sends it to
        the back of the queue; moved across the book it trades as a taker, or if post-only is
        refused or canceled as :meth:`place` does. Emits ``amended``. Raises
        :class:`MatchingError` (the order is then unchanged)."""
        order = self.find(key, order_id)
        if not order.is_open:
            raise MatchingError(Reason.ORDER_NOT_OPEN, f"order is {order.status}")
        if order.type != LIMIT or order.price is None or order.size is None:
            raise MatchingError(Reason.INVALID_PARAMETER, "only limit orders can be amended")
        market = self.markets[order.symbol]
        new_price = order.price if price is None else dec(price)
        new_size = order.size if size is None else dec(size)
        self._validated(key, market, order.side, LIMIT, new_price, new_size, None, GTC, None)
        if new_size <= order.filled:
            with self._operation():
                done = new_size == order.filled
                self._finish(order, FILLED if done else CANCELED, None if done else "user")
            return order
        left = new_size - order.filled
        need = left if order.side == SELL else left * new_price * self._buy_markup(order)
        bal = self.balance(key, market.quote if order.side == BUY else market.base)
        if need - order.locked > bal.available:
            raise MatchingError(Reason.INSUFFICIENT_BALANCE, "insufficient balance")
        moved = new_price != order.price
        if order.tif == POST_ONLY and moved:
            best_bid, best_ask = self.best(order.symbol)
            crosses = (order.side == BUY and best_ask is not None and new_price >= best_ask) or (
                order.side == SELL and best_bid is not None and new_price <= best_bid
            )
            if crosses and (post_only_cross or self.post_only_cross) == "reject":
                raise MatchingError(Reason.WOULD_CROSS, "post-only order would take liquidity")
            if crosses:
                with self._operation():
                    self._finish(order, CANCELED, "post_only")
                return order
        with self._operation():
            bal.available -= need - order.locked
            bal.locked += need - order.locked
            order.locked = need
            if moved or new_size > order.size:
                order.arrival = self._next()  # the back of the queue
            order.price, order.size, order.updated_ms = new_price, new_size, self.now_ms()
            self._emit("amended", order)
            plan = self._plan(order) if moved else []
            if plan:
                self._match(order, plan)
        return order

    # ------------------------------------------------------------------ cancels and timers

    def cancel(self, key: str, order_id: str | None = None, client_id: str | None = None) -> Order:
        order = self.find(key, order_id, client_id)
        if not order.is_open:
            raise MatchingError(Reason.ORDER_NOT_OPEN, f"order is {order.status}")
        with self._operation():
            self._finish(order, CANCELED, "user")
        return order

    def cancel_all(
        self, key: str, symbol: str | None = None, side: str | None = None, reason: str = "user"
    ) -> list[Order]:
        """Cancel the account's open orders (of ``symbol`` / ``side`` when given), oldest first."""
        if symbol is not None:
            self.market(symbol)
        done = [o for o in self.orders_of(key, symbol, True) if side is None or o.side == side]
        with self._operation():
            for order in done:
                self._finish(order, CANCELED, reason)
        return done

    def arm_cancel_all(self, key: str, symbol: str | None, timeout_s: float | None) -> float | None:
        """(Re)arm a dead man's switch: cancel the account's orders of ``symbol`` (every one for
        ``None``) ``timeout_s`` from now; ``None`` disarms. Returns the deadline."""
        slot = (key, symbol or "")
        if timeout_s is None:
            self.timers.pop(slot, None)
            return None
        self.timers[slot] = deadline = self.clock() + timeout_s
        return deadline

    def check_timers(self) -> int:
        """Fire expired switches; returns how many orders they cancelled."""
        now, count = self.clock(), 0
        for slot, deadline in sorted(self.timers.items()):
            if deadline <= now:
                del self.timers[slot]
                count += len(self.cancel_all(slot[0], slot[1] or None, reason="timer"))
        return count

    # ------------------------------------------------------------------ persistence

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (markets stay those given to the constructor)."""
        return {
            "version": STATE_VERSION,
            "counter": next(self._counter),
            "accounts": {
                k: {a: [str(b.available), str(b.locked)] for a, b in assets.items()}
                for k, assets in self.accounts.items()
            },
            "orders": [to_json(asdict(o)) for o in self.orders.values()],
            "fills": [to_json(asdict(f)) for f in self.fill_log],
            "outside": {
                s: {"bids": to_json(o.bids), "asks": to_json(o.asks)}
                for s, o in self.outside.items()
            },
            "book_seq": dict(self.book_seq),
            "last_price": {s: str(p) for s, p in self.last_price.items()},
            "timers": [[k, s, d] for (k, s), d in self.timers.items()],
        }

    def load_state(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`to_state` output; sequence numbers continue from it."""
        if state.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {state.get('version')}")
        self._counter = itertools.count(int(state["counter"]))
        self.accounts = {
            k: {a: Balance(D(v[0]), D(v[1])) for a, v in assets.items()}
            for k, assets in state["accounts"].items()
        }
        self.orders = {}
        for raw in state["orders"]:
            order = Order(**from_json(raw, Order))
            self.orders[order.id] = order
        self.fill_log = [Fill(**from_json(raw, Fill)) for raw in state["fills"]]
        for sym, raw_out in state["outside"].items():
            if sym in self.outside:
                self.outside[sym] = _Outside(
                    [[D(p), D(s)] for p, s in raw_out["bids"]],
                    [[D(p), D(s)] for p, s in raw_out["asks"]],
                )
        self.book_seq.update({s: int(v) for s, v in state["book_seq"].items() if s in self.markets})
        self.last_price = {s: D(p) for s, p in state["last_price"].items()}
        self.timers = {(k, s): float(d) for k, s, d in state["timers"]}
        self._published = {s: self._merged(s) for s in self.markets}


def _fee_asset(market: Market, side: str) -> str:
    """The asset fees are charged in: the quote (``fee_in="quote"``) or the asset received."""
    if market.fee_in == "quote" or side == SELL:
        return market.quote
    return market.base
