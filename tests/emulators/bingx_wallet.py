"""BingX's wallet endpoints over :class:`~tests.emulators.wallet.Wallet`, as
``ccxt.async_support.bingx`` 4.5.90 calls them (signed, every parameter in the query string):

=====================================  ========================================================
``withdraw(code, amount, address,      ``POST /openApi/wallets/v1/capital/withdraw/apply``
{"network": "KAS"})``                  ``coin``, ``address``, ``amount``, ``walletType`` (15:
                                       spot, ccxt's default), ``network``; ``addressTag`` from
                                       ``tag``; ``withdrawOrderId`` passes through ->
                                       ``{"code": 0, "data": {"id": "<19 digits>"}}``
``fetch_withdrawals(code)``            ``GET /openApi/api/v3/capital/withdraw/history``
                                       ``coin``, ``startTime``, ``endTime``, ``limit`` -> a bare
                                       list (no envelope), newest first
``fetch_deposit_address(code,          ``GET /openApi/wallets/v1/capital/deposit/address``
{"network": "KAS"})``                  ``coin``, ``offset``, ``limit`` -> ``{"code": 0, "data":
                                       {"data": [{coinId, coin, network, address,
                                       addressWithPrefix, tag}], "total": n}}``
``load_markets`` (currencies)          ``GET /openApi/wallets/v1/capital/config/getall``: the
                                       wallet's coins with ``withdrawFee`` / ``withdrawMin``
=====================================  ========================================================

ccxt has no ``fetch_withdrawal`` for BingX. History rows carry ``transferType: 1`` (on-chain):
ccxt 4.5.90 reads ``transferType`` 0 as a *deposit*. Status numbers: 4 under review (every
stage before completion here, with ``txId`` once sent), 5 failed (also cancelled), 6 completed;
ccxt: 4 ``pending``, 5 ``failed``, 6 ``ok``. The fee is on top of the amount (unverified).

=========================  ======  =====================================================
refusal                    code    ccxt
=========================  ======  =====================================================
address not whitelisted    100440  ExchangeError (code unverified)
insufficient balance       100202  InsufficientFunds
amount below the minimum   100437  BadRequest (BingX's code and text, from ccxt)
withdrawals suspended      100503  ExchangeError (code unverified)
unknown coin / network     100400  BadRequest
=========================  ======  =====================================================

Errors are answered with HTTP 200 and ``{"code", "msg"}``, as BingX does.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.emulators.bingx_engine import BingxError, JsonDict, err_param
from tests.emulators.wallet import Network, Refusal, Stage, Wallet, WalletRefused, Withdrawal

if TYPE_CHECKING:
    from tests.emulators.bingx import BingxEmulator, _Ctx

__all__ = ["ROUTES", "STATUS", "new_wallet"]

STATUS: dict[Stage, int] = {
    Stage.REQUESTED: 4,
    Stage.REVIEWING: 4,
    Stage.PROCESSING: 4,
    Stage.SENT: 4,
    Stage.COMPLETED: 6,
    Stage.FAILED: 5,
    Stage.CANCELLED: 5,
}

REFUSALS: dict[Refusal, tuple[int, str]] = {
    Refusal.NOT_WHITELISTED: (100440, "withdrawal address is not in the address book"),
    Refusal.INSUFFICIENT_BALANCE: (100202, "Insufficient balance"),
    Refusal.BELOW_MINIMUM: (
        100437,
        "The withdrawal amount is lower than the minimum limit, please re-enter.",
    ),
    Refusal.SUSPENDED: (100503, "withdrawal of this coin is suspended"),
    Refusal.UNKNOWN_COIN: (100400, "coin or network not supported"),
}


def new_wallet(emu: BingxEmulator) -> Wallet:
    """The emulator's wallet: 19-digit ids, the fee on top of the amount."""
    return Wallet(emu.engine, lambda n: str(1197073063359000000 + n), fee_included=False)


def _fmt(value: Decimal) -> str:
    text = format(value, "f")
    return text.rstrip("0").rstrip(".") if "." in text else text


def _row(w: Withdrawal) -> JsonDict:
    return {
        "address": w.address,
        "amount": _fmt(w.amount),
        "applyTime": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(w.created_ms / 1000)),
        "coin": w.coin,
        "id": w.id,
        "withdrawOrderId": w.client_id or "",
        "network": w.network,
        "transferType": 1,
        "status": STATUS[w.stage],
        "transactionFee": _fmt(w.fee),
        "confirmNo": 0,
        "info": "",
        "txId": w.txid or "",
    }


def _refused(refusal: Refusal) -> BingxError:
    return BingxError(*REFUSALS[refusal])


def _ok(emu: BingxEmulator, data: Any) -> JsonDict:
    return {"code": 0, "timestamp": emu.engine.now_ms(), "data": data}


def _h_withdraw(emu: BingxEmulator, ctx: _Ctx) -> Any:
    p = ctx.params
    for name in ("coin", "address", "amount"):
        if not p.get(name):
            raise err_param(f"{name} is required")
    try:
        amount = Decimal(p["amount"])
    except InvalidOperation:
        raise err_param("amount is invalid") from None
    try:
        w = emu.wallet.request(
            ctx.api_key,
            p["coin"],
            p.get("network"),
            p["address"],
            amount,
            memo=p.get("addressTag"),
            client_id=p.get("withdrawOrderId"),
        )
    except WalletRefused as exc:
        raise _refused(exc.refusal) from None
    return _ok(emu, {"id": w.id})


def _h_withdraw_history(emu: BingxEmulator, ctx: _Ctx) -> Any:
    p = ctx.params
    rows = emu.wallet.of(ctx.api_key, p.get("coin") or None)
    if p.get("id"):
        rows = [w for w in rows if w.id == p["id"]]
    if p.get("startTime", "").isdigit():
        rows = [w for w in rows if w.created_ms >= int(p["startTime"])]
    if p.get("endTime", "").isdigit():
        rows = [w for w in rows if w.created_ms <= int(p["endTime"])]
    limit = min(int(p["limit"]) if p.get("limit", "").isdigit() else 1000, 1000)
    return [_row(w) for w in rows[:limit]]


def _h_deposit_address(emu: BingxEmulator, ctx: _Ctx) -> Any:
    coin = ctx.params.get("coin")
    if not coin:
        raise err_param("coin is required")
    rows = [
        {
            "coinId": "799",
            "coin": coin,
            "network": rules.network,
            "address": (address := emu.wallet.deposit_address(ctx.api_key, coin, rules.network)),
            "addressWithPrefix": address,
            "tag": "",
        }
        for rules in emu.wallet.coins()
        if rules.coin == coin
    ]
    if not rows:
        raise _refused(Refusal.UNKNOWN_COIN)
    return _ok(emu, {"data": rows, "total": len(rows)})


def _h_config(emu: BingxEmulator, ctx: _Ctx) -> Any:
    """``capital/config/getall``: the wallet's coins and their network rules (other assets of
    the markets with default rules)."""
    coins: dict[str, list[JsonDict]] = {}
    known = {rules.coin for rules in emu.wallet.coins()}
    assets = {a for m in emu.engine.markets.values() for a in (m.base, m.quote)} - known
    for rules in [*emu.wallet.coins(), *(Network(a, a) for a in sorted(assets))]:
        coins.setdefault(rules.coin, []).append(
            {
                "name": rules.coin,
                "network": rules.network,
                "isDefault": True,
                "minConfirm": rules.confirmations,
                "withdrawEnable": rules.withdraw_enabled,
                "depositEnable": rules.deposit_enabled,
                "withdrawFee": _fmt(rules.fee),
                "withdrawMax": _fmt(rules.maximum),
                "withdrawMin": _fmt(rules.minimum),
                "depositMin": "0",
                "withdrawPrecision": 8,
            }
        )
    return _ok(emu, [{"coin": c, "name": c, "networkList": n} for c, n in coins.items()])


_API = "/openApi"

#: (method, server path) -> (handler, signed), merged into the emulator's routes.
ROUTES: dict[tuple[str, str], tuple[Callable[[BingxEmulator, _Ctx], Any], bool]] = {
    ("POST", _API + "/wallets/v1/capital/withdraw/apply"): (_h_withdraw, True),
    ("GET", _API + "/api/v3/capital/withdraw/history"): (_h_withdraw_history, True),
    ("GET", _API + "/wallets/v1/capital/deposit/address"): (_h_deposit_address, True),
    ("GET", _API + "/wallets/v1/capital/config/getall"): (_h_config, True),
}
