"""What differs between the exchanges kasmm trades through ccxt: one ``Flavour`` per exchange.

Everything exchange-specific the venue needs is data in :data:`FLAVOURS` plus the few functions
here (client ids, base-URL overrides, the dead man's switch call), so ``venue.py`` holds no
``if exchange == ...`` branches. Facts were checked against ccxt 4.5.90 (``ccxt/abstract/*.py``
for raw endpoint names, the exchange modules for parameters) and are pinned by
``tests/unit/test_ccxt_flavours.py``, which records the HTTP requests ccxt builds.
"""

from __future__ import annotations

import string
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from kasmm.core.ids import DELIMITER, MAX_CLIENT_ID_LEN
from kasmm.venues.base import BatchLimits

DeadManSwitchKind = Literal["none", "unified", "gate_countdown", "kucoin_dead_cancel_all"]
#: How a batch placement is sent: ccxt's unified ``create_orders``, or KuCoin's HF batch
#: endpoint called directly (ccxt 4.5.90's ``create_orders`` reads ``data.data`` from its
#: answer, which is a list under ``data``: every per-order result would be lost).
BatchPlaceKind = Literal["unified", "kucoin_hf"]

#: What kasmm puts in a client id: ASCII letters, digits and the prefix delimiter ``_``, which
#: every supported exchange accepts (BingX: letters, digits and ``_`` only).
_ID_CHARS = frozenset(string.ascii_letters + string.digits + DELIMITER)

#: Options every exchange gets: no blind retries (a retried create can duplicate an order).
COMMON_OPTIONS: Mapping[str, Any] = MappingProxyType(
    {"maxRetriesOnFailure": 0, "maxRetriesOnFailureDelay": 0, "defaultType": "spot"}
)


@dataclass(frozen=True, slots=True)
class RateBudget:
    """A default token bucket for an account, in ccxt cost units (1 unit ~ one light request).

    ccxt scales each endpoint's ``cost`` so that ``1000 / rateLimit`` units per second respects the
    exchange's published limit; the kasmm bucket draws exactly those costs.
    """

    capacity: float
    refill_per_s: float
    source: str


@dataclass(frozen=True, slots=True)
class Flavour:
    """Exchange-specific facts and switches of the ccxt venue."""

    exchange: str
    #: Extra ccxt constructor ``options`` (merged over :data:`COMMON_OPTIONS`).
    options: Mapping[str, Any]
    #: The exchange's own client-id field that ccxt's unified ``clientOrderId`` becomes.
    client_id_field: str
    #: Longest client id the exchange accepts (before any prefix ccxt adds).
    client_id_max_len: int
    #: Prefix the exchange (or ccxt) puts in front of client ids: Gate's ``t-``.
    client_id_prefix: str
    #: What ``postOnly: True`` becomes in the request (documentation; pinned by tests).
    post_only_as: str
    #: What ``timeInForce: 'IOC'`` becomes in the request (documentation; pinned by tests).
    ioc_as: str
    #: Orders per request of ``place_orders`` / ``cancel_orders`` (1: no safe spot batch
    #: endpoint, the orders go out as concurrent single requests). A batch is only used where
    #: the answer reports every order's own outcome (see ``README.md``, "Batches and amend").
    batch: BatchLimits
    #: How a batch placement is sent (unused where ``batch.place`` is 1).
    batch_place: BatchPlaceKind
    #: Batch placements per second the exchange allows on top of the weight budget (MEXC: 2),
    #: with as many at once; ``None``: only the budget counts.
    batch_place_per_s: float | None
    #: Orders per spot ``cancelOrders`` call of ``cancel_all`` (by exchange order id; the result
    #: is verified by listing again, so per-order answers are not needed there).
    batch_cancel: int
    dead_man_switch: DeadManSwitchKind
    budget: RateBudget
    #: ``fetch_order`` can look an order up by client id (BingX's ccxt code sends ``orderId=None``).
    fetch_by_client_id: bool
    #: ``cancel_order`` can cancel by client id without the exchange order id.
    cancel_by_client_id: bool
    #: A post-only order that would cross is accepted and then cancelled (not rejected), and
    #: the placement answer carries no status: the next open-orders listing tells.
    post_only_silently_cancelled: bool
    #: ``amend_order`` changes price and size in place, keeping the exchange order id (Gate's
    #: ``PATCH /spot/orders/{id}``). False where "amend" is cancel + new with a new id.
    supports_amend: bool
    #: Load spot markets with this method instead of ``load_markets`` (whose market types
    #: option ccxt does not read for this exchange), skipping currencies and other market types.
    spot_markets_method: str | None
    #: The exchange has a spot testnet that ccxt's ``set_sandbox_mode`` switches to.
    spot_sandbox: bool
    #: Sections of ``urls['api']`` that ``rest_url`` replaces (``*``: every key at that level),
    #: each with the path suffix the exchange's paths expect after the host.
    rest_sections: tuple[tuple[tuple[str, ...], str], ...] = field(default=())
    #: Keys of ``urls['api']`` holding the spot websocket URL that ``ws_url`` replaces, as
    #: ``ccxt.pro`` reads them (empty: the endpoint comes from a REST answer, KuCoin's bullet).
    ws_sections: tuple[tuple[str, ...], ...] = field(default=())
    #: Parameters of the market load (KuCoin: skip the margin symbol lists).
    markets_params: Mapping[str, Any] = field(default_factory=lambda: MappingProxyType({}))


FLAVOURS: Mapping[str, Flavour] = MappingProxyType(
    {
        "mexc": Flavour(
            exchange="mexc",
            options=MappingProxyType({}),
            client_id_field="newClientOrderId",
            client_id_max_len=32,
            client_id_prefix="",
            post_only_as="type=LIMIT_MAKER",
            ioc_as="type=IMMEDIATE_OR_CANCEL",
            # POST /api/v3/batchOrders: 20 orders of one symbol, weight 1, at most 2 r/s (ccxt
            # cost 10 = 2 r/s at rateLimit 50 ms); per-order code/msg in the answer. No spot
            # batch cancel: ccxt's cancel_orders is swap-only on MEXC (the contract API).
            batch=BatchLimits(place=20, cancel=1),
            batch_place="unified",
            batch_place_per_s=2.0,
            batch_cancel=1,
            dead_man_switch="none",
            # MEXC spot v3 "Limits": each UID-limited endpoint has an independent 500 per 10 s
            # (https://www.mexc.com/api-docs/spot-v3/general-info); ccxt's rateLimit 50 ms =
            # 20 units/s for all endpoints together stays below any single endpoint's limit.
            budget=RateBudget(40.0, 20.0, "mexc spot v3 general-info; ccxt rateLimit 50 ms"),
            fetch_by_client_id=True,
            cancel_by_client_id=True,
            post_only_silently_cancelled=True,
            supports_amend=False,  # no spot amend endpoint
            spot_markets_method="fetch_spot_markets",
            spot_sandbox=False,
            rest_sections=(
                (("spot", "public"), ""),
                (("spot", "private"), ""),
                (("contract", "public"), "/api/v1/contract"),
                (("contract", "private"), "/api/v1/private"),
            ),
            ws_sections=(("ws", "spot"),),  # ccxt/pro/mexc.py: urls['api']['ws']['spot']
        ),
        "gate": Flavour(
            exchange="gate",
            options=MappingProxyType(
                {"unifiedAccount": False, "fetchMarkets": {"types": ["spot"]}}
            ),
            client_id_field="text",
            client_id_max_len=28,
            client_id_prefix="t-",
            post_only_as="time_in_force=poc",
            ioc_as="time_in_force=ioc",
            # batch_orders: 10 orders per pair per request (ccxt 4.5.90 refuses more than 10 in
            # all), ccxt cost 0.4 = one order; cancel_batch_orders: 20 per request, cost 0.27 =
            # one cancel. Both answer per order (succeeded / label / message). Gate counts a
            # batch as one request of the "place orders" 10 r/s (UID + market) limit.
            batch=BatchLimits(place=10, cancel=20),
            batch_place="unified",
            batch_place_per_s=None,
            batch_cancel=20,
            dead_man_switch="gate_countdown",
            # Gate APIv4 limits (announcement 2024-01-14, "Gate.io Latest Announcement on API Rate
            # Limit Adjustments"): public and private endpoints 200 r/10 s each, spot order
            # placement 10 r/s per UID and market, cancellation 200 r/s. ccxt: rateLimit 50 ms.
            budget=RateBudget(40.0, 20.0, "gate APIv4 rate limits 2024-01; ccxt rateLimit 50 ms"),
            fetch_by_client_id=True,  # GET /spot/orders/t-<text>
            cancel_by_client_id=True,  # DELETE /spot/orders/t-<text>
            post_only_silently_cancelled=False,  # POC_FILL_IMMEDIATELY
            supports_amend=True,  # PATCH /spot/orders/{id}: same id, same text
            spot_markets_method=None,
            spot_sandbox=True,
            # Gate signs "/api/v4" + path whatever the host: every section lives under it.
            rest_sections=((("public", "*"), "/api/v4"), (("private", "*"), "/api/v4")),
            ws_sections=(("spot",),),  # ccxt/pro/gate.py: urls['api']['spot']
        ),
        "kucoin": Flavour(
            exchange="kucoin",
            options=MappingProxyType(
                {"hf": True, "uta": False, "fetchMarkets": {"types": ["spot"]}}
            ),
            client_id_field="clientOid",
            client_id_max_len=40,
            client_id_prefix="",
            post_only_as="postOnly=true",
            ioc_as="timeInForce=IOC",
            # POST /api/v1/hf/orders/multi: 5 limit orders of one symbol (KuCoin docs), ccxt
            # cost 1 = one order; per-order success / failMsg. No spot batch cancel outside
            # the unified account: ccxt's cancel_orders is futures/UTA-only on KuCoin.
            batch=BatchLimits(place=5, cancel=1),
            batch_place="kucoin_hf",
            batch_place_per_s=None,
            batch_cancel=1,
            dead_man_switch="kucoin_dead_cancel_all",
            # KuCoin rate limit (https://www.kucoin.com/docs-new/rate-limit): the spot resource
            # pool is 4000 weight / 30 s at VIP0; ccxt's costs are those weights (rateLimit 7.5 ms).
            budget=RateBudget(400.0, 4000.0 / 30.0, "kucoin docs-new/rate-limit VIP0 spot pool"),
            fetch_by_client_id=True,  # GET /api/v1/hf/orders/client-order/<clientOid>
            cancel_by_client_id=True,  # DELETE /api/v1/hf/orders/client-order/<clientOid>
            post_only_silently_cancelled=True,
            supports_amend=False,  # HF "alter" is cancel + new with a new order id
            spot_markets_method=None,
            spot_sandbox=False,
            rest_sections=((("public",), ""), (("private",), "")),
            markets_params=MappingProxyType({"marginables": False}),
        ),
        "bingx": Flavour(
            exchange="bingx",
            options=MappingProxyType({}),
            client_id_field="newClientOrderId",
            client_id_max_len=40,
            client_id_prefix="",
            post_only_as="timeInForce=PostOnly",
            ioc_as="timeInForce=IOC",
            # batchOrders (5) and cancelOrders exist but are not used for trading: BingX documents
            # their answer as the list of orders only (no per-order error for one that failed),
            # without ``sync`` every order must share side and type, and both are limited to
            # 2 r/s against 5 r/s for single requests. cancel_all uses cancelOrders (it re-lists).
            batch=BatchLimits(place=1, cancel=1),
            batch_place="unified",
            batch_place_per_s=None,
            batch_cancel=5,
            dead_man_switch="unified",
            # BingX API rate limit upgrade (support article 31103871611289): spot place/cancel
            # order 5 r/s, batch endpoints 2 r/s, market data 500 r/10 s per IP. ccxt: rateLimit
            # 100 ms = 10 units/s, an order costs 2 units (= 5 r/s).
            budget=RateBudget(20.0, 10.0, "bingx support article 31103871611289; ccxt 100 ms"),
            fetch_by_client_id=False,
            cancel_by_client_id=True,  # clientOrderID on /spot/v1/trade/cancel
            post_only_silently_cancelled=True,
            supports_amend=False,  # cancelReplace is cancel + new with a new order id
            spot_markets_method="fetch_spot_markets",
            spot_sandbox=False,  # ccxt: "sandbox is swap only"
            # user: the listen-key calls ccxt.pro makes before any private stream.
            rest_sections=((("spot",), "/openApi"), (("user",), "/openApi")),
            ws_sections=(("ws", "spot"),),  # ccxt/pro/bingx.py: urls['api']['ws']['spot']
        ),
    }
)


def flavour_for(exchange: str) -> Flavour:
    """The flavour of ``exchange``.

    :raises KeyError: kasmm does not support the exchange through ccxt.
    """
    return FLAVOURS[exchange]


def constructor_options(flavour: Flavour) -> dict[str, Any]:
    """ccxt ``options`` for ``flavour`` (deep-copied: ccxt mutates its options)."""
    merged: dict[str, Any] = dict(COMMON_OPTIONS)
    for key, value in flavour.options.items():
        merged[key] = _deep_copy(value)
    return merged


def valid_client_id(flavour: Flavour, client_id: str) -> bool:
    """True when ``client_id`` is a kasmm client id the exchange accepts as is.

    kasmm ids are ASCII letters, digits and ``_``, at most ``MAX_CLIENT_ID_LEN`` (24) characters,
    which fits every supported exchange; anything else is refused rather than rewritten, because
    the id must read back identically from ``fetch_open_orders``.
    """
    limit = min(MAX_CLIENT_ID_LEN, flavour.client_id_max_len)
    return 0 < len(client_id) <= limit and all(ch in _ID_CHARS for ch in client_id)


def native_client_id(flavour: Flavour, client_id: str) -> str:
    """The id as the exchange stores it (Gate: ``t-`` + id)."""
    return flavour.client_id_prefix + client_id


def client_id_from_native(flavour: Flavour, native: str | None) -> str | None:
    """kasmm's client id from the exchange's field (strips Gate's ``t-``), ``None`` if absent."""
    if not native:
        return None
    prefix = flavour.client_id_prefix
    if prefix and native.startswith(prefix):
        return native[len(prefix) :]
    return native


def rest_urls(flavour: Flavour, urls_api: Any, rest_url: str) -> Any:
    """A copy of ccxt's ``urls['api']`` with the spot sections pointing at ``rest_url``.

    Whole values are replaced (BingX's contain ``{hostname}``). A suffix the exchange needs
    (Gate's ``/api/v4``, BingX's ``/openApi``) is added unless ``rest_url`` already ends with it.
    """
    base = rest_url.rstrip("/")
    if isinstance(urls_api, str):
        return base
    out = _deep_copy(urls_api)
    for path, suffix in flavour.rest_sections:
        value = base if (not suffix or base.endswith(suffix)) else base + suffix
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        keys = list(node) if path[-1] == "*" else [path[-1]]
        for key in keys:
            node[key] = value
    return out


def ws_urls(flavour: Flavour, urls_api: Any, ws_url: str) -> Any:
    """A copy of ccxt's ``urls['api']`` with the spot websocket URL replaced by ``ws_url``.

    ``ccxt.pro`` connects to the value as given (MEXC and BingX append ``?listenKey=...`` for
    private streams), so it is not rewritten.

    :raises ValueError: the exchange's websocket endpoint is not a URL setting (KuCoin).
    """
    if not flavour.ws_sections:
        raise ValueError(
            f"{flavour.exchange}: the websocket endpoint comes from the REST API, not from ws_url"
        )
    out = _deep_copy(urls_api)
    for path in flavour.ws_sections:
        node = out
        for key in path[:-1]:
            node = node.setdefault(key, {})
        node[path[-1]] = ws_url
    return out


def _deep_copy(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _deep_copy(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_deep_copy(v) for v in value]
    return value


def default_rate_budget(exchange: str) -> RateBudget | None:
    """The default account budget for ``exchange`` (``None`` when not a ccxt exchange)."""
    flavour = FLAVOURS.get(exchange)
    return flavour.budget if flavour is not None else None


async def call_dead_man_switch(
    exchange: Any, flavour: Flavour, market_id: str, timeout_s: float | None
) -> bool:
    """Arm (``timeout_s`` > 0) or disarm (``None``) the exchange's cancel-all-after timer.

    Returns False when the exchange has none (MEXC spot). Each call restarts the countdown.

    * BingX: unified ``cancelAllOrdersAfter`` (ms in; ccxt sends ``timeOut`` in seconds, which
      BingX accepts from 10 to 120; ``type=CLOSE`` disarms). Account-wide for spot.
    * Gate: raw ``privateSpotPostCountdownCancelAll`` (``timeout`` s, >= 5; 0 disarms), for the
      one currency pair.
    * KuCoin HF: raw ``privatePostHfOrdersDeadCancelAll`` (``timeout`` s, 5-86400; -1 disarms),
      for the listed symbols.
    """
    kind = flavour.dead_man_switch
    armed = timeout_s is not None and timeout_s > 0
    seconds = int(timeout_s) if (armed and timeout_s is not None) else 0
    if kind == "unified":
        seconds = min(max(seconds, 10), 120)
        await exchange.cancel_all_orders_after(seconds * 1000 if armed else 0, {"type": "spot"})
    elif kind == "gate_countdown":
        await exchange.privateSpotPostCountdownCancelAll(
            {"timeout": max(seconds, 5) if armed else 0, "currency_pair": market_id}
        )
    elif kind == "kucoin_dead_cancel_all":
        await exchange.privatePostHfOrdersDeadCancelAll(
            {"timeout": max(seconds, 5) if armed else -1, "symbols": market_id}
        )
    else:
        return False
    return True
