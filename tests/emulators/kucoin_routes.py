"""The KuCoin REST routes of :mod:`tests.emulators.kucoin`: one handler per endpoint.

Each handler takes the emulator and the parsed request (:class:`~tests.emulators.kucoin.Ctx`)
and returns the ``data`` of KuCoin's ``{"code": "200000", "data": ...}`` envelope, or raises
:class:`~tests.emulators.kucoin_engine.KucoinError`. :data:`ROUTES` gives each endpoint its
access (public or signed) and its rate-limit weight, from KuCoin's per-endpoint documentation
(https://www.kucoin.com/docs-new, "Rate limit weight" of each endpoint; the resource pool is the
spot pool for signed calls, the public pool otherwise).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tests.emulators.kucoin_engine import JsonDict, KucoinError, bad_parameter, fmt
from tests.emulators.matching_types import Fill, Order

if TYPE_CHECKING:
    from tests.emulators.kucoin import Ctx, KucoinEmulator

Handler = Callable[["KucoinEmulator", "Ctx"], Any]

#: Page sizes of the HF order and fill lists (KuCoin: default 20, at most 100).
PAGE_DEFAULT, PAGE_MAX = 20, 100
#: ``dead-cancel-all``: ``timeout`` -1 (disarm) or 5..86400 s, at most 50 symbols.
DEAD_MIN_S, DEAD_MAX_S, DEAD_MAX_SYMBOLS = 5, 86_400, 50


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    signed: bool
    weight: int


def find(method: str, path: str) -> tuple[Handler, bool, int, dict[str, str]] | None:
    """The route serving ``method path``: handler, signed, weight and path parameters."""
    for route in ROUTES:
        if route.method != method:
            continue
        match = route.pattern.fullmatch(path)
        if match is not None:
            return route.handler, route.signed, route.weight, match.groupdict()
    return None


# ---------------------------------------------------------------------- public


def _timestamp(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return int(emu.clock() * 1000)


def _status(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return {"status": "open", "msg": ""}


def _symbols(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return [emu.venue.symbol_json(m) for m in emu.engine.markets.values()]


def _currencies(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return emu.venue.currencies_json()


def _all_tickers(emu: KucoinEmulator, ctx: Ctx) -> Any:
    tickers = [emu.venue.ticker_json(m) for m in emu.engine.markets.values()]
    return {"time": int(emu.clock() * 1000), "ticker": tickers}


def _book(emu: KucoinEmulator, symbol: object, depth: int | None) -> JsonDict:
    market = emu.venue.market(symbol)
    snap = emu.engine.book(market.symbol, depth)
    return {
        "time": snap.time_ms,
        "sequence": str(snap.seq),
        "bids": [[fmt(p), fmt(s)] for p, s in snap.bids],
        "asks": [[fmt(p), fmt(s)] for p, s in snap.asks],
    }


def _book_part(emu: KucoinEmulator, ctx: Ctx) -> Any:
    depth = ctx.match["depth"]
    if depth not in ("20", "100"):  # KuCoin serves level2_20 and level2_100 only
        raise KucoinError("404000", "Url Not Found", 404)
    return _book(emu, ctx.query.get("symbol"), int(depth))


def _book_full(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return _book(emu, ctx.query.get("symbol"), None)


def _margin_symbols(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return {"timestamp": int(emu.clock() * 1000), "items": []}  # no margin on this venue


def _isolated_symbols(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return []


def _bullet_public(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return emu.ws_protocol.issue_token(None)


def _bullet_private(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return emu.ws_protocol.issue_token(ctx.api_key)


# ---------------------------------------------------------------------- account


def _key(ctx: Ctx) -> str:
    assert ctx.api_key is not None  # signed routes only
    return ctx.api_key


def _accounts(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return emu.venue.accounts_json(_key(ctx), ctx.query.get("currency"), ctx.query.get("type"))


# ---------------------------------------------------------------------- orders


def _place(emu: KucoinEmulator, ctx: Ctx) -> Any:
    order = emu.venue.place(_key(ctx), ctx.body)
    return {"orderId": order.id, "clientOid": order.client_id}


def _place_batch(emu: KucoinEmulator, ctx: Ctx) -> Any:
    return emu.venue.place_batch(_key(ctx), ctx.body)


def _cancel_by_id(emu: KucoinEmulator, ctx: Ctx) -> Any:
    order = emu.venue.cancel(_key(ctx), ctx.query.get("symbol"), order_id=ctx.match["order_id"])
    return {"orderId": order.id}


def _cancel_by_client_oid(emu: KucoinEmulator, ctx: Ctx) -> Any:
    cid = ctx.match["client_oid"]
    emu.venue.cancel(_key(ctx), ctx.query.get("symbol"), client_oid=cid)
    return {"clientOid": cid}


def _cancel_symbol(emu: KucoinEmulator, ctx: Ctx) -> Any:
    market = emu.venue.market(ctx.query.get("symbol"))
    emu.engine.cancel_all(_key(ctx), market.symbol)
    return "success"


def _cancel_everything(emu: KucoinEmulator, ctx: Ctx) -> Any:
    symbols = sorted({o.symbol for o in emu.engine.orders_of(_key(ctx), is_open=True)})
    emu.engine.cancel_all(_key(ctx))
    return {"succeedSymbols": symbols, "failedSymbols": []}


def _order_by_id(emu: KucoinEmulator, ctx: Ctx) -> Any:
    order = emu.venue.find(_key(ctx), ctx.query.get("symbol"), order_id=ctx.match["order_id"])
    return emu.venue.order_json(order)


def _order_by_client_oid(emu: KucoinEmulator, ctx: Ctx) -> Any:
    cid = ctx.match["client_oid"]
    order = emu.venue.find(_key(ctx), ctx.query.get("symbol"), client_oid=cid)
    return emu.venue.order_json(order)


def _newest_first(orders: list[Order]) -> list[Order]:
    return sorted(orders, key=lambda o: -o.arrival)


def _active(emu: KucoinEmulator, ctx: Ctx) -> Any:
    market = emu.venue.market(ctx.query.get("symbol"))
    orders = _newest_first(emu.engine.orders_of(_key(ctx), market.symbol, is_open=True))
    return [emu.venue.order_json(o) for o in orders]


def _done(emu: KucoinEmulator, ctx: Ctx) -> Any:
    market = emu.venue.market(ctx.query.get("symbol"))
    start, end = _int(ctx, "startAt"), _int(ctx, "endAt")
    side, kind = ctx.query.get("side"), ctx.query.get("type")
    rows = [
        o
        for o in _newest_first(emu.engine.orders_of(_key(ctx), market.symbol, is_open=False))
        if (start is None or (o.done_ms or 0) >= start)
        and (end is None or (o.done_ms or 0) <= end)
        and (side is None or o.side == side)
        and (kind is None or o.type == kind)
    ]
    page = _page(rows, ctx, lambda o: o.arrival)
    return {
        "lastId": page[-1].arrival if page else 0,
        "items": [emu.venue.order_json(o) for o in page],
    }


def _fills(emu: KucoinEmulator, ctx: Ctx) -> Any:
    market = emu.venue.market(ctx.query.get("symbol"))
    start, end = _int(ctx, "startAt"), _int(ctx, "endAt")
    order_id, side = ctx.query.get("orderId"), ctx.query.get("side")
    rows = [
        f
        for f in reversed(emu.engine.fills(_key(ctx), market.symbol))
        if (order_id is None or f.order_id == order_id)
        and (side is None or f.side == side)
        and (start is None or f.time_ms >= start)
        and (end is None or f.time_ms <= end)
    ]
    page: list[Fill] = _page(rows, ctx, lambda f: int(f.id))
    return {
        "items": [emu.venue.fill_json(f) for f in page],
        "lastId": int(page[-1].id) if page else 0,
    }


def _page(rows: list[Any], ctx: Ctx, ident: Callable[[Any], int]) -> list[Any]:
    """Newest-first ``rows`` older than ``lastId``, at most ``limit`` (or ccxt's ``pageSize``)."""
    limit = _int(ctx, "limit") or _int(ctx, "pageSize") or PAGE_DEFAULT
    if not 1 <= limit <= PAGE_MAX:
        raise bad_parameter(f"limit should be between 1 and {PAGE_MAX}")
    last_id = _int(ctx, "lastId")
    if last_id is not None:
        rows = [r for r in rows if ident(r) < last_id]
    return rows[:limit]


def _int(ctx: Ctx, name: str) -> int | None:
    raw = ctx.query.get(name)
    if raw is None or raw == "":
        return None
    try:
        return int(raw)
    except ValueError:
        raise bad_parameter(f"{name} is invalid") from None


# ---------------------------------------------------------------------- dead man's switch


def _dead_cancel_all(emu: KucoinEmulator, ctx: Ctx) -> Any:
    """Arm (or with ``timeout`` -1 disarm) the account's cancel-all timer: one setting per key,
    replaced by each call, for the listed ``symbols`` (every symbol when empty)."""
    body = ctx.body if isinstance(ctx.body, dict) else {}
    timeout = body.get("timeout")
    if isinstance(timeout, bool) or not isinstance(timeout, int | str):
        raise bad_parameter("timeout is required")
    try:
        seconds = int(timeout)
    except ValueError:
        raise bad_parameter("timeout is invalid") from None
    if seconds != -1 and not DEAD_MIN_S <= seconds <= DEAD_MAX_S:
        raise bad_parameter(f"timeout must be -1 or between {DEAD_MIN_S} and {DEAD_MAX_S}")
    raw = body.get("symbols") or ""
    symbols = [s for s in str(raw).split(",") if s]
    if len(symbols) > DEAD_MAX_SYMBOLS:
        raise bad_parameter(f"at most {DEAD_MAX_SYMBOLS} symbols")
    for symbol in symbols:
        emu.venue.market(symbol)
    key = _key(ctx)
    for slot in [s for s in emu.engine.timers if s[0] == key]:
        del emu.engine.timers[slot]
    now = int(emu.clock())
    if seconds == -1:
        return None
    targets: list[str | None] = list(symbols) or [None]  # none listed: every symbol
    for target in targets:
        emu.engine.arm_cancel_all(key, target, seconds)
    return {"currentTime": now, "triggerTime": now + seconds}


def _dead_cancel_all_query(emu: KucoinEmulator, ctx: Ctx) -> Any:
    key = _key(ctx)
    slots = {s: d for s, d in emu.engine.timers.items() if s[0] == key}
    if not slots:
        return None
    deadline = max(slots.values())
    return {
        "symbols": ",".join(sorted(s[1] for s in slots if s[1])),
        "currentTime": int(emu.clock()),
        "triggerTime": int(deadline),
    }


def _r(method: str, path: str, handler: Handler, signed: bool, weight: int) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(pattern), handler, signed, weight)


#: Order matters: literal paths before ``{order_id}``.
ROUTES: tuple[Route, ...] = (
    _r("GET", "/api/v1/timestamp", _timestamp, False, 3),
    _r("GET", "/api/v1/status", _status, False, 3),
    _r("GET", "/api/v2/symbols", _symbols, False, 4),
    _r("GET", "/api/v3/currencies", _currencies, False, 3),
    _r("GET", "/api/v1/market/allTickers", _all_tickers, False, 15),
    _r("GET", r"/api/v1/market/orderbook/level2_{depth}", _book_part, False, 2),
    _r("POST", "/api/v1/bullet-public", _bullet_public, False, 10),
    _r("GET", "/api/v3/market/orderbook/level2", _book_full, True, 3),
    _r("GET", "/api/v1/accounts", _accounts, True, 5),
    _r("GET", "/api/v3/margin/symbols", _margin_symbols, True, 3),
    _r("GET", "/api/v1/isolated/symbols", _isolated_symbols, True, 20),
    _r("POST", "/api/v1/bullet-private", _bullet_private, True, 10),
    _r("POST", "/api/v1/hf/orders", _place, True, 1),
    _r("POST", "/api/v1/hf/orders/multi", _place_batch, True, 1),
    _r("POST", "/api/v1/hf/orders/dead-cancel-all", _dead_cancel_all, True, 2),
    _r("GET", "/api/v1/hf/orders/dead-cancel-all/query", _dead_cancel_all_query, True, 2),
    _r("GET", "/api/v1/hf/orders/active", _active, True, 2),
    _r("GET", "/api/v1/hf/orders/done", _done, True, 2),
    _r("GET", "/api/v1/hf/orders/client-order/{client_oid}", _order_by_client_oid, True, 2),
    _r("GET", "/api/v1/hf/orders/{order_id}", _order_by_id, True, 2),
    _r("GET", "/api/v1/hf/fills", _fills, True, 2),
    _r("DELETE", "/api/v1/hf/orders/cancelAll", _cancel_everything, True, 30),
    _r("DELETE", "/api/v1/hf/orders/client-order/{client_oid}", _cancel_by_client_oid, True, 1),
    _r("DELETE", "/api/v1/hf/orders/{order_id}", _cancel_by_id, True, 1),
    _r("DELETE", "/api/v1/hf/orders", _cancel_symbol, True, 2),
)
