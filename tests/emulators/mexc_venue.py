"""MEXC spot rules over the shared matching engine (no I/O): the emulator's trading core.

:class:`MexcVenue` takes MEXC's request parameters (strings), checks them in MEXC's order with
MEXC's answers (:class:`~tests.emulators.mexc_shapes.MexcError`), and has
:class:`~tests.emulators.matching.MatchingEngine` match orders, hold balances and number the
book. It renders the engine's values as MEXC's views
(:mod:`tests.emulators.mexc_shapes`) for the REST layer (:mod:`tests.emulators.mexc`) and tells
its observers (the websocket layer, :mod:`tests.emulators.mexc_ws`) what happened.

MEXC's rules kept here, on top of the engine's model:

* ``LIMIT_MAKER`` that would cross is *accepted* (normal acknowledgement) and immediately
  ``CANCELED`` with nothing locked or filled (the engine's ``post_only_cross="cancel"``): the
  caller only learns it by querying the order, and the order stream shows only the cancel.
* A ``MARKET`` order with nothing to take is refused (30025); its minimum and maximum value are
  checked on the fills it would get. A reused ``newClientOrderId`` is refused even when that
  order is done.
* The synthetic book never trades by itself: moving it (``set_book``, ``set_mid``) leaves
  crossed API orders resting; :meth:`MexcVenue.outside_trade` is what fills them.
* Statuses ``NEW``, ``PARTIALLY_FILLED``, ``FILLED``, ``CANCELED``, ``PARTIALLY_CANCELED``
  (see :func:`~tests.emulators.mexc_shapes.mexc_status`).
* Depth versions: one per operation that changes a symbol's visible book (the engine's
  ``book_seq_per="change"``), the REST snapshot's ``lastUpdateId`` and the pushes' versions
  being the same counter. MEXC's version is the engine's sequence + 1, so a fresh book is
  version 1.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Any

from tests.emulators.matching import MatchingEngine
from tests.emulators.matching_types import (
    BUY,
    SELL,
    Balance,
    BookChange,
    Fill,
    Market,
    MatchingError,
    Order,
    OrderEvent,
    Reason,
)
from tests.emulators.mexc_shapes import (
    ORDER_ID_BASE,
    ORDER_TYPES,
    Deal,
    DepthChange,
    JsonDict,
    Levels,
    MarketSpec,
    MexcError,
    MexcOrder,
    MexcTrade,
    VenueObserver,
    dec,
    err_bad_symbol,
    err_duplicate_client_id,
    err_illegal,
    err_insufficient,
    err_mandatory,
    err_max_volume,
    err_min_volume,
    err_no_such_order,
    err_unknown_order,
    fmt,
    int_param,
)

STATE_VERSION = 2


def _engine_market(spec: MarketSpec) -> Market:
    """The engine's market of a MEXC one (fees on the asset received, as MEXC charges them)."""
    return Market(
        symbol=spec.symbol,
        base=spec.base,
        quote=spec.quote,
        tick=spec.tick,
        lot=spec.lot,
        min_size=spec.min_quantity,
        min_notional=spec.min_notional,
        maker_fee=spec.maker_fee,
        taker_fee=spec.taker_fee,
        funds_step=spec.tick,
    )


def _positive(params: Mapping[str, str], name: str) -> Decimal | None:
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    try:
        value = dec(raw)
    except ValueError:
        raise err_illegal(name) from None
    if value <= 0:
        raise MexcError(400, f"{name} is invalid")  # unverified text
    return value


def _makers_first(fills: list[Fill]) -> list[Fill]:
    """``fills`` with the maker's side of each match before the taker's (the engine logs the
    taker's first), as MEXC's trade ids number them."""
    out = list(fills)
    for i in range(len(out) - 1):
        if out[i].trade_id == out[i + 1].trade_id and out[i].role == "taker":
            out[i], out[i + 1] = out[i + 1], out[i]
    return out


def _id_params(params: Mapping[str, str]) -> tuple[str | None, str | None]:
    order_id = params.get("orderId") or None
    client_id = params.get("origClientOrderId") or None
    if order_id is None and client_id is None:
        raise MexcError(
            700004,
            "Param 'origClientOrderId' or 'orderId' must be sent, but both were empty/null!",
        )
    return order_id, client_id


class MexcVenue:
    """Accounts (API key and secret), orders, fills and books of the emulated MEXC spot venue."""

    def __init__(
        self, markets: Iterable[MarketSpec], clock: Callable[[], float] | None = None
    ) -> None:
        self.markets: dict[str, MarketSpec] = {m.symbol: m for m in markets}
        if not self.markets:
            raise ValueError("at least one market is needed")
        self.matching = MatchingEngine(
            [_engine_market(m) for m in self.markets.values()],
            clock,
            post_only_cross="cancel",
            order_id=lambda n: f"C02__{ORDER_ID_BASE + n}",
            book_seq_per="change",
        )
        #: Called after every operation that changed something (the emulator persists then).
        self.on_change: Callable[[], None] | None = None
        #: Told of order, trade and book changes (additive: REST does not depend on them).
        self.observers: list[VenueObserver] = []
        self._secrets: dict[str, str] = {}
        #: A taker's match update, told after its maker's (the engine emits the taker's first).
        self._held_taker: tuple[MexcOrder, MexcTrade | None] | None = None
        self.matching.observers.on_order.append(self._on_order)
        self.matching.observers.on_fill.append(self._on_fill)
        self.matching.observers.on_book.append(self._on_book)

    # ------------------------------------------------------------------ accounts
    def clock_ms(self) -> int:
        return self.matching.now_ms()

    def add_account(self, api_key: str, secret: str, balances: Mapping[str, object]) -> None:
        """A new API key (an existing one is replaced) with ``free`` balances."""
        self._secrets[api_key] = secret
        self.matching.accounts.pop(api_key, None)
        self.matching.add_account(api_key, {a: dec(v) for a, v in balances.items()})

    def secret_of(self, api_key: str) -> str | None:
        """The key's secret, or None for a key the venue does not know."""
        return self._secrets.get(api_key)

    def balances(self, api_key: str) -> dict[str, Balance]:
        """The account's balances by asset (``available`` is MEXC's ``free``)."""
        if api_key not in self._secrets:
            raise KeyError(api_key)
        return self.matching.accounts[api_key]

    def set_balance(
        self, api_key: str, asset: str, free: object, locked: object | None = None
    ) -> None:
        balance = self.balances(api_key).setdefault(asset, Balance())
        balance.available = dec(free)
        if locked is not None:
            balance.locked = dec(locked)

    def market(self, symbol: str | None) -> MarketSpec:
        if not symbol:
            raise err_mandatory("symbol")
        spec = self.markets.get(symbol)
        if spec is None:
            raise err_bad_symbol()
        return spec

    # ------------------------------------------------------------------ books
    def set_book(self, symbol: str, bids: Levels, asks: Levels) -> None:
        """Replace the synthetic liquidity of ``symbol`` with ``(price, qty)`` levels. It never
        trades against API orders, even where it crosses them."""
        spec = self.market(symbol)
        sides = [[(dec(p), dec(q)) for p, q in bids], [(dec(p), dec(q)) for p, q in asks]]
        for price, qty in sides[0] + sides[1]:
            if price <= 0 or qty <= 0:
                raise ValueError(f"bad level {price} x {qty}")
            if price % spec.tick:
                raise ValueError(f"level price {price} is off the tick {spec.tick}")
        self.matching.set_book(sides[0], sides[1], symbol, fill_crossed=False)
        self._changed()

    def set_mid(
        self,
        symbol: str,
        mid: object,
        spread_bps: object = 20,
        levels: int = 5,
        size: object = 1000,
        step_bps: object | None = None,
    ) -> None:
        """A symmetric synthetic book: best bid/ask ``spread_bps / 2`` away from ``mid``, then one
        level every ``step_bps`` (default: ``spread_bps / 2``), ``size`` base on each level."""
        spec = self.market(symbol)
        mid_d, half = dec(mid), dec(spread_bps) / 2
        step = half if step_bps is None else dec(step_bps)
        if step <= 0:
            step = Decimal(1)
        bids: dict[Decimal, Decimal] = {}
        asks: dict[Decimal, Decimal] = {}
        for i in range(levels):
            off = (half + step * i) / Decimal(10000)
            bid = (mid_d * (1 - off) / spec.tick).to_integral_value(ROUND_FLOOR) * spec.tick
            ask = (mid_d * (1 + off) / spec.tick).to_integral_value(ROUND_CEILING) * spec.tick
            if bid > 0:
                bids[bid] = bids.get(bid, Decimal(0)) + dec(size)
            asks[ask] = asks.get(ask, Decimal(0)) + dec(size)
        self.set_book(symbol, bids.items(), asks.items())

    @property
    def depth_versions(self) -> dict[str, int]:
        """Each symbol's current depth version (``lastUpdateId``)."""
        return {s: seq + 1 for s, seq in self.matching.book_seq.items()}

    def depth(self, symbol: str, limit: int) -> JsonDict:
        """``GET depth``: the visible book (synthetic levels plus resting API orders)."""
        self.market(symbol)
        book = self.matching.book(symbol, limit)
        return {
            "lastUpdateId": book.seq + 1,
            "bids": [[fmt(p), fmt(q)] for p, q in book.bids],
            "asks": [[fmt(p), fmt(q)] for p, q in book.asks],
            "timestamp": self.clock_ms(),
        }

    def best(self, symbol: str) -> tuple[Decimal | None, Decimal | None]:
        self.market(symbol)
        return self.matching.best(symbol)

    # ------------------------------------------------------------------ orders
    def check(self, api_key: str, params: Mapping[str, str]) -> dict[str, Any]:
        """Validate ``POST /api/v3/order`` parameters as MEXC does (``order/test`` stops here);
        returns the engine's :meth:`~MatchingEngine.place` arguments. Raises MexcError."""
        spec = self.market(params.get("symbol"))
        side = (params.get("side") or "").upper()
        if side not in ("BUY", "SELL"):
            raise err_mandatory("side")
        otype = (params.get("type") or "").upper()
        if not otype:
            raise err_mandatory("type")
        if otype not in ORDER_TYPES:
            raise MexcError(30041, "current order type can not place order")
        qty = _positive(params, "quantity")
        price = _positive(params, "price")
        quote_qty = _positive(params, "quoteOrderQty")
        client_id = params.get("newClientOrderId") or None
        if otype == "MARKET":
            if qty is None and quote_qty is None:
                raise err_mandatory("quantity")
            price = None
            if qty is not None:
                quote_qty = None
        else:
            if qty is None:
                raise err_mandatory("quantity")
            if price is None:
                raise err_mandatory("price")
            quote_qty = None
        orders = self.matching.orders_of(api_key) if api_key in self._secrets else []
        if client_id is not None and any(o.client_id == client_id for o in orders):
            raise err_duplicate_client_id()
        # Scale: the text is MEXC's ("quantity scale is invalid" seen live, HTTP 400 code 400).
        if price is not None and price % spec.tick:
            raise MexcError(400, "price scale is invalid")
        if qty is not None and qty % spec.lot:
            raise MexcError(400, "quantity scale is invalid")
        if quote_qty is not None and quote_qty % spec.tick:
            raise MexcError(400, "amount scale is invalid")
        if qty is not None and qty < spec.min_quantity:
            raise err_min_volume(f"{fmt(spec.min_quantity)}{spec.base}")
        if otype == "MARKET":
            planned = self._market_plan(spec, side, qty, quote_qty)
            if not planned:
                raise MexcError(30025, "no exist opponent order")
            cost = sum((p * q for p, q in planned), Decimal(0))
            notional = quote_qty if quote_qty is not None else cost
        else:
            assert price is not None and qty is not None
            notional = cost = price * qty
        if notional < spec.min_notional:
            raise err_min_volume(f"{fmt(spec.min_notional)}{spec.quote}")
        if notional > spec.max_notional:
            raise err_max_volume(f"{fmt(spec.max_notional)}{spec.quote}")
        # What the engine locks: the value of a buy (its quote amount for a market buy by
        # quote), the quantity of a sell (what a market sell by quote amount would sell).
        if side == "BUY":
            need, asset = (quote_qty if quote_qty is not None else cost), spec.quote
        else:
            sold = sum((q for _, q in planned), Decimal(0)) if qty is None else qty
            need, asset = sold, spec.base
        if need > self.balances(api_key).get(asset, Balance()).available:
            raise err_insufficient()
        order_type, tif = ORDER_TYPES[otype]
        return {
            "symbol": spec.symbol,
            "side": side.lower(),
            "type": order_type,
            "tif": tif,
            "price": price,
            "size": qty,
            "funds": quote_qty,
            "client_id": client_id,
        }

    def _market_plan(
        self, spec: MarketSpec, side: str, qty: Decimal | None, quote_qty: Decimal | None
    ) -> list[tuple[Decimal, Decimal]]:
        """The ``(price, qty)`` a market order would take from the visible book, best first,
        up to ``qty`` or ``quote_qty`` (whole lots)."""
        book = self.matching.book(spec.symbol)
        plan: list[tuple[Decimal, Decimal]] = []
        left_qty, left_quote = qty, quote_qty
        for price, size in book.asks if side == "BUY" else book.bids:
            take = size if left_qty is None else min(size, left_qty)
            if left_quote is not None:
                whole = (left_quote / price / spec.lot).to_integral_value(ROUND_FLOOR) * spec.lot
                take = min(take, whole)
            if take <= 0:
                break
            plan.append((price, take))
            if left_qty is not None:
                left_qty -= take
            if left_quote is not None:
                left_quote -= take * price
        return plan

    def place(self, api_key: str, params: Mapping[str, str]) -> MexcOrder:
        """``POST /api/v3/order`` with MEXC's parameters (strings). Raises :class:`MexcError`."""
        kwargs = self.check(api_key, params)
        try:
            order = self.matching.place(api_key, kwargs.pop("symbol"), kwargs.pop("side"), **kwargs)
        except MatchingError as exc:  # what check() lets through the engine also accepts
            if exc.reason is Reason.INSUFFICIENT_BALANCE:
                raise err_insufficient() from None
            raise MexcError(400, exc.message) from None
        self._changed()
        return MexcOrder.of(order)

    def _find(
        self, api_key: str, symbol: str, order_id: str | None, client_id: str | None
    ) -> Order | None:
        try:
            order = self.matching.find(api_key, order_id, None if order_id else client_id)
        except MatchingError:
            return None
        return order if order.symbol == symbol else None

    def cancel(self, api_key: str, params: Mapping[str, str]) -> MexcOrder:
        spec = self.market(params.get("symbol"))
        order = self._find(api_key, spec.symbol, *_id_params(params))
        if order is None or not order.is_open:
            raise err_unknown_order()
        self.matching.cancel(api_key, order.id)
        self._changed()
        return MexcOrder.of(order)

    def cancel_all(self, api_key: str, symbol: str | None) -> list[MexcOrder]:
        cancelled = self.matching.cancel_all(api_key, symbol)
        if cancelled:
            self._changed()
        return [MexcOrder.of(o) for o in cancelled]

    def get_order(self, api_key: str, params: Mapping[str, str]) -> MexcOrder:
        spec = self.market(params.get("symbol"))
        order = self._find(api_key, spec.symbol, *_id_params(params))
        if order is None:
            raise err_no_such_order()
        return MexcOrder.of(order)

    def order_views(self) -> list[MexcOrder]:
        """Every order of every account, oldest first."""
        return [MexcOrder.of(o) for o in self.matching.orders.values()]

    def open_orders(self, api_key: str | None, symbol: str | None) -> list[MexcOrder]:
        return [
            MexcOrder.of(o)
            for o in self.matching.orders.values()
            if (api_key is None or o.account == api_key)
            and o.is_open
            and (symbol is None or o.symbol == symbol)
        ]

    def all_orders(self, api_key: str, params: Mapping[str, str]) -> list[MexcOrder]:
        spec = self.market(params.get("symbol"))
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        limit = min(int_param(params, "limit") or 500, 1000)
        rows = [
            MexcOrder.of(o)
            for o in self.matching.orders_of(api_key, spec.symbol)
            if (start is None or o.created_ms >= start) and (end is None or o.created_ms <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    @property
    def trades(self) -> list[MexcTrade]:
        """Every account's side of every match, oldest first."""
        return [MexcTrade.of(f) for f in _makers_first(self.matching.fill_log)]

    def my_trades(self, api_key: str, params: Mapping[str, str]) -> list[MexcTrade]:
        """Oldest first; with ``startTime`` the first ``limit`` from it, else the last ``limit``."""
        spec = self.market(params.get("symbol"))
        start, end = int_param(params, "startTime"), int_param(params, "endTime")
        order_id = params.get("orderId") or None
        limit = min(int_param(params, "limit") or 100, 100)
        rows = [
            MexcTrade.of(f)
            for f in _makers_first(self.matching.fills(api_key, spec.symbol, order_id))
            if (start is None or f.time_ms >= start) and (end is None or f.time_ms <= end)
        ]
        return rows[:limit] if start is not None else rows[-limit:]

    def outside_trade(self, symbol: str, side: str, price: object, qty: object) -> list[MexcTrade]:
        """An outside taker ``side`` ('buy' takes asks, 'sell' hits bids) of ``qty`` limited at
        ``price``: fills resting API orders it crosses, price-time priority, at their prices.
        Returns the makers' trades; what no API order takes vanishes (the outside world took it)."""
        spec = self.market(symbol)
        if side.upper() not in ("BUY", "SELL"):
            raise ValueError(f"side must be buy or sell: {side!r}")
        fills = self.matching.trade(spec.symbol, side.lower(), dec(price), dec(qty))
        if fills:
            self._changed()
        return [MexcTrade.of(f) for f in fills]

    # ------------------------------------------------------------------ engine events
    def _changed(self) -> None:
        if self.on_change is not None:
            self.on_change()

    def _on_order(self, event: OrderEvent) -> None:
        """MEXC's order stream: acceptance, each match (``FILLED`` on the last; the maker's
        update before the taker's), the close."""
        order, fill = event.order, event.fill
        if event.kind == "received":
            if self.matching.orders[order.id].cancel_reason == "post_only":
                return  # a crossing LIMIT_MAKER shows only its cancel
        elif event.kind == "filled":
            if order.size is not None:
                return  # the match that filled it said so already
        elif event.kind not in ("match", "canceled"):
            return
        update = (MexcOrder.of(order), MexcTrade.of(fill) if fill is not None else None)
        if fill is not None and self._other_side_follows(fill):
            self._held_taker = update
            return
        self._tell_order(*update)
        if self._held_taker is not None:
            held, self._held_taker = self._held_taker, None
            self._tell_order(*held)

    def _tell_order(self, order: MexcOrder, trade: MexcTrade | None) -> None:
        for observer in self.observers:
            observer.on_order_changed(order, trade)

    def _log_index(self, fill: Fill) -> int:
        """Where ``fill`` is in the engine's fill log (near its end: it is being told)."""
        log = self.matching.fill_log
        i = len(log) - 1
        while i >= 0 and log[i] is not fill:
            i -= 1
        return i

    def _other_side_follows(self, fill: Fill) -> bool:
        """Whether the engine logged the other (maker's) side of ``fill``'s match after it."""
        log, i = self.matching.fill_log, self._log_index(fill)
        return i + 1 < len(log) and log[i + 1].trade_id == fill.trade_id

    def _on_fill(self, fill: Fill) -> None:
        """A public deal per match, told once both its sides' order updates are out."""
        if self._other_side_follows(fill):
            return
        i = self._log_index(fill)
        log = self.matching.fill_log
        sides = [f for f in log[max(i - 1, 0) : i + 1] if f.trade_id == fill.trade_id]
        taker = next((f for f in sides if f.role == "taker"), None)
        taker_side = taker.side if taker is not None else (SELL if fill.side == BUY else BUY)
        deal = Deal(
            symbol=fill.symbol,
            price=fill.price,
            qty=fill.size,
            taker_side=taker_side.upper(),
            time=fill.time_ms,
            trades=tuple(MexcTrade.of(f) for f in _makers_first(sides)),
        )
        for observer in self.observers:
            observer.on_trade(deal)

    def _on_book(self, change: BookChange) -> None:
        bids = [(c.price, c.size) for c in change.changes if c.side == BUY]
        asks = [(c.price, c.size) for c in change.changes if c.side == SELL]
        depth = DepthChange(
            symbol=change.symbol,
            version=change.seq_end + 1,
            bids=tuple(sorted(bids, key=lambda level: -level[0])),
            asks=tuple(sorted(asks)),
            time=change.time_ms,
        )
        for observer in self.observers:
            observer.on_book_changed(depth)

    # ------------------------------------------------------------------ state
    def to_json(self) -> JsonDict:
        """The emulator's state: the engine's (what :meth:`load_json` restores), the API
        secrets, and the orders and trades in MEXC's terms (for readers such as the
        crash-restart tests; not read back)."""
        return {
            "version": STATE_VERSION,
            "engine": self.matching.to_state(),
            "secrets": dict(self._secrets),
            "orders": [o.to_json() for o in self.order_views()],
            "trades": [t.to_json() for t in self.trades],
        }

    def load_json(self, data: Mapping[str, Any]) -> None:
        """Restore a :meth:`to_json` snapshot (accounts in it replace same-key accounts)."""
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"unsupported state version {data.get('version')!r}")
        kept = dict(self.matching.accounts)
        self.matching.load_state(data["engine"])
        for key, assets in kept.items():
            self.matching.accounts.setdefault(key, assets)
        self._secrets.update(data["secrets"])
