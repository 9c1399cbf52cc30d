"""KuCoin's wallet endpoints over :class:`~tests.emulators.wallet.Wallet`, as
``ccxt.async_support.kucoin`` 4.5.90 calls them (``options={'hf': True, 'uta': False}``):

=====================================  ========================================================
``withdraw(code, amount, address,      ``POST /api/v3/withdrawals`` JSON ``currency``,
{"network": "KAS"})``                  ``toAddress``, ``amount`` (a JSON number),
                                       ``withdrawType: "ADDRESS"``, ``chain: "kas"`` (ccxt
                                       lower-cases the chain id); ``memo`` from ``tag``;
                                       ``feeDeductType: "INTERNAL"`` with ``{"includeFee":
                                       True}`` -> ``{"withdrawalId": ...}``
``fetch_withdrawals(code)``            ``GET /api/v1/withdrawals`` ``currency``, ``startAt``
                                       (ms), ``pageSize`` (>= 10) -> a page ``{currentPage,
                                       pageSize, totalNum, totalPage, items}``, newest first
``fetch_deposit_address(code,          ``GET /api/v1/deposit-addresses`` ``currency``,
{"network": "KAS"})``                  ``chain: "kas"`` -> ``{address, memo, chain, chainId}``
=====================================  ========================================================

ccxt has no ``fetch_withdrawal`` for KuCoin; ``GET /api/v1/withdrawals/{withdrawalId}`` exists
on KuCoin and here, but only the list is reached through ccxt. The fee is on top of the amount
(``feeDeductType`` EXTERNAL, KuCoin's default) unless ``feeDeductType`` is INTERNAL.

Status strings: REVIEW, PROCESSING, WALLET_PROCESSING (sent: ``walletTxId`` set), SUCCESS,
FAILURE (also for a cancelled one). ccxt maps PROCESSING and WALLET_PROCESSING to ``pending``,
SUCCESS to ``ok``, FAILURE to ``failed`` and passes REVIEW through unmapped (``'REVIEW'``).

=========================  ======  =====================================================
refusal                    code    ccxt
=========================  ======  =====================================================
address not whitelisted    400100  BadRequest (message unverified)
insufficient balance       200004  InsufficientFunds
amount below the minimum   400100  ExchangeError (ccxt matches KuCoin's message before the
                                   code, and maps that message to ExchangeError)
withdrawals suspended      400100  BadRequest (message unverified)
unknown currency / chain   400100  BadRequest
=========================  ======  =====================================================

Errors are answered with HTTP 200, as KuCoin answers business errors; ccxt raises from the
message first, then from the code (``400100`` is BadRequest).
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.emulators.kucoin_engine import JsonDict, KucoinError, fmt
from tests.emulators.kucoin_routes import Handler, Route
from tests.emulators.wallet import Refusal, Stage, Wallet, WalletRefused, Withdrawal

if TYPE_CHECKING:
    from tests.emulators.kucoin import Ctx, KucoinEmulator

__all__ = ["STATUS", "find", "new_wallet"]

STATUS: dict[Stage, str] = {
    Stage.REQUESTED: "PROCESSING",
    Stage.REVIEWING: "REVIEW",
    Stage.PROCESSING: "PROCESSING",
    Stage.SENT: "WALLET_PROCESSING",
    Stage.COMPLETED: "SUCCESS",
    Stage.FAILED: "FAILURE",
    Stage.CANCELLED: "FAILURE",
}

REFUSALS: dict[Refusal, tuple[str, str]] = {
    Refusal.NOT_WHITELISTED: ("400100", "The withdrawal address is not in the whitelist."),
    Refusal.INSUFFICIENT_BALANCE: ("200004", "Balance insufficient!"),
    Refusal.BELOW_MINIMUM: ("400100", "The withdrawal amount is below the minimum requirement."),
    Refusal.SUSPENDED: ("400100", "Withdrawal of this currency is suspended."),
    Refusal.UNKNOWN_COIN: ("400100", "Unsupported currency or chain."),
}


def new_wallet(emu: KucoinEmulator) -> Wallet:
    """The emulator's wallet: 24-hex ids (KuCoin's), the fee on top of the amount."""
    return Wallet(emu.engine, lambda n: f"{0x6A1B2C3D00000000 + n:024x}", fee_included=False)


def _row(w: Withdrawal) -> JsonDict:
    return {
        "id": w.id,
        "currency": w.coin,
        "chain": w.network.lower(),
        "status": STATUS[w.stage],
        "address": w.address,
        "memo": w.memo or "",
        "isInner": False,
        "amount": fmt(w.amount),
        "fee": fmt(w.fee),
        "walletTxId": w.txid,
        "createdAt": w.created_ms,
        "updatedAt": w.updated_ms,
        "remark": w.remark or "",
    }


def _refused(refusal: Refusal) -> KucoinError:
    code, msg = REFUSALS[refusal]
    return KucoinError(code, msg, status=200)


def _key(ctx: Ctx) -> str:
    assert ctx.api_key is not None
    return ctx.api_key


def _withdraw(emu: KucoinEmulator, ctx: Ctx) -> Any:
    body = ctx.body if isinstance(ctx.body, dict) else {}
    for name in ("currency", "toAddress", "amount"):
        if body.get(name) in (None, ""):
            raise KucoinError("400100", f"{name} is required")
    try:
        amount = Decimal(str(body["amount"]))
    except InvalidOperation:
        raise KucoinError("400100", "amount is invalid") from None
    try:
        w = emu.wallet.request(
            _key(ctx),
            str(body["currency"]),
            body.get("chain"),
            str(body["toAddress"]),
            amount,
            memo=body.get("memo"),
            remark=body.get("remark"),
            fee_included=str(body.get("feeDeductType", "EXTERNAL")).upper() == "INTERNAL",
        )
    except WalletRefused as exc:
        raise _refused(exc.refusal) from None
    return {"withdrawalId": w.id}


def _withdrawals(emu: KucoinEmulator, ctx: Ctx) -> Any:
    q = ctx.query
    rows = emu.wallet.of(_key(ctx), q.get("currency") or None)
    if q.get("status"):
        rows = [w for w in rows if STATUS[w.stage] == q["status"]]
    if q.get("startAt", "").isdigit():
        rows = [w for w in rows if w.created_ms >= int(q["startAt"])]
    if q.get("endAt", "").isdigit():
        rows = [w for w in rows if w.created_ms <= int(q["endAt"])]
    size = min(max(int(q["pageSize"]) if q.get("pageSize", "").isdigit() else 50, 10), 500)
    page = max(int(q["currentPage"]) if q.get("currentPage", "").isdigit() else 1, 1)
    return {
        "currentPage": page,
        "pageSize": size,
        "totalNum": len(rows),
        "totalPage": (len(rows) + size - 1) // size,
        "items": [_row(w) for w in rows[(page - 1) * size : page * size]],
    }


def _withdrawal(emu: KucoinEmulator, ctx: Ctx) -> Any:
    w = emu.wallet.withdrawals.get(ctx.match["withdrawal_id"])
    if w is None or w.account != _key(ctx):
        raise KucoinError("400100", "withdrawal not found")
    return _row(w)


def _deposit_address(emu: KucoinEmulator, ctx: Ctx) -> Any:
    currency = ctx.query.get("currency")
    if not currency:
        raise KucoinError("400100", "currency is required")
    try:
        rules = emu.wallet.network(currency, ctx.query.get("chain"))
    except WalletRefused as exc:
        raise _refused(exc.refusal) from None
    return {
        "address": emu.wallet.deposit_address(_key(ctx), currency, rules.network),
        "memo": "",
        "chain": rules.network,
        "chainId": rules.network.lower(),
    }


def _currencies(emu: KucoinEmulator, ctx: Ctx) -> Any:
    """``GET /api/v3/currencies`` with the wallet's fee, minimum and open flags on each chain."""
    rows = emu.venue.currencies_json()
    rules = {r.coin: r for r in emu.wallet.coins()}
    for row in rows:
        known = rules.get(row["currency"])
        if known is None:
            continue
        for chain in row["chains"]:
            chain.update(
                withdrawalMinSize=fmt(known.minimum),
                withdrawalMinFee=fmt(known.fee),
                isWithdrawEnabled=known.withdraw_enabled,
                isDepositEnabled=known.deposit_enabled,
                confirms=known.confirmations,
            )
    return rows


def _r(method: str, path: str, handler: Handler, weight: int, signed: bool = True) -> Route:
    pattern = re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", path)
    return Route(method, re.compile(pattern), handler, signed, weight)


#: Weights from KuCoin's documentation (management pool).
ROUTES: tuple[Route, ...] = (
    _r("GET", "/api/v3/currencies", _currencies, 3, signed=False),
    _r("POST", "/api/v3/withdrawals", _withdraw, 5),
    _r("GET", "/api/v1/withdrawals", _withdrawals, 20),
    _r("GET", "/api/v1/withdrawals/{withdrawal_id}", _withdrawal, 20),
    _r("GET", "/api/v1/deposit-addresses", _deposit_address, 5),
)


def find(method: str, path: str) -> tuple[Handler, bool, int, dict[str, str]] | None:
    """The wallet route serving ``method path`` (checked before the trading routes)."""
    for route in ROUTES:
        if route.method == method and (match := route.pattern.fullmatch(path)) is not None:
            return route.handler, route.signed, route.weight, match.groupdict()
    return None
