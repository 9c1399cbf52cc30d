"""MEXC's wallet endpoints over :class:`~tests.emulators.wallet.Wallet` (withdraw, history,
deposit address), as ``ccxt.async_support.mexc`` 4.5.90 calls them:

=====================================  ========================================================
``withdraw(code, amount, address,      ``POST /api/v3/capital/withdraw`` ``coin``, ``address``,
{"network": "KAS"})``                  ``amount``, ``netWork`` (``memo`` from ``tag``;
                                       ``withdrawOrderId``, a client id, passes through) ->
                                       ``{"id": "<32 hex>"}``
``fetch_withdrawals(code, since)``     ``GET /api/v3/capital/withdraw/history`` ``coin``,
                                       ``startTime`` (default: 7 days ago), ``limit`` -> a
                                       list, newest first, ``withdrawOrderId`` included
``fetch_deposit_address(code,          ``GET /api/v3/capital/deposit/address`` ``coin``,
{"network": "KAS"})``                  ``network`` -> a list of ``{coin, network, address,
                                       memo, netWork}``
=====================================  ========================================================

ccxt has no ``fetch_withdrawal`` for MEXC: look a withdrawal up by ``id`` in the history.

Status numbers (MEXC's, as ccxt's ``parse_transaction_status_by_type`` lists them): 1 APPLY,
2 AUDITING, 3 WAIT, 4 PROCESSING, 5 WAIT_PACKAGING, 6 WAIT_CONFIRM, 7 SUCCESS, 8 FAILED,
9 CANCEL, 10 MANUAL; ccxt: 1-6 and 10 ``pending``, 7 ``ok``, 8 ``failed``, 9 ``canceled``.
The emulator uses 1, 2, 4, 6 (with ``txId``), 7, 8, 9.

The fee comes out of the amount (``amount`` is what is debited; ccxt reports ``amount -
transactionFee``, what arrives), as ccxt's parser implies. Refusals and what ccxt raises:

=========================  =====  ======================================================
refusal                    code   ccxt
=========================  =====  ======================================================
address not whitelisted    10212  BadRequest ("not on the commonly used address list")
insufficient balance       10101  InsufficientFunds
amount below the minimum   10097  InvalidOrder ("amount is error"; MEXC's code unverified)
withdrawals suspended      10265  ExchangeError ("withdrawal is unavailable"; unverified)
unknown coin / network     10232  BadRequest ("currency does not exist")
=========================  =====  ======================================================
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.emulators.mexc_shapes import JsonDict, MexcError, err_mandatory, fmt
from tests.emulators.wallet import Network, Refusal, Stage, Wallet, WalletRefused, Withdrawal

if TYPE_CHECKING:
    from tests.emulators.mexc import MexcEmulator, _Ctx

__all__ = ["ROUTES", "STATUS", "network_json", "new_wallet"]

_WEEK_MS = 7 * 86_400_000

STATUS: dict[Stage, int] = {
    Stage.REQUESTED: 1,
    Stage.REVIEWING: 2,
    Stage.PROCESSING: 4,
    Stage.SENT: 6,
    Stage.COMPLETED: 7,
    Stage.FAILED: 8,
    Stage.CANCELLED: 9,
}

REFUSALS: dict[Refusal, tuple[int, str]] = {
    Refusal.NOT_WHITELISTED: (
        10212,
        "This withdrawal address is not on the commonly used address list or has been invalidated",
    ),
    Refusal.INSUFFICIENT_BALANCE: (10101, "Insufficient balance"),
    Refusal.BELOW_MINIMUM: (10097, "amount is error"),
    Refusal.SUSPENDED: (10265, "Due to risk control, withdrawal is unavailable"),
    Refusal.UNKNOWN_COIN: (10232, "currency does not exist"),
}


def new_wallet(emu: MexcEmulator) -> Wallet:
    """The emulator's wallet: 32-hex ids, the fee taken out of the amount."""
    return Wallet(emu.engine.matching, lambda n: uuid.UUID(int=n).hex, fee_included=True)


def network_json(rules: Network) -> JsonDict:
    """One ``networkList`` entry of ``capital/config/getall`` (ccxt reads fee and limits here)."""
    return {
        "coin": rules.coin,
        "depositDesc": None,
        "depositEnable": rules.deposit_enabled,
        "minConfirm": rules.confirmations,
        "name": rules.coin,
        "network": rules.network,
        "withdrawEnable": rules.withdraw_enabled,
        "withdrawFee": fmt(rules.fee),
        "withdrawIntegerMultiple": None,
        "withdrawMax": fmt(rules.maximum),
        "withdrawMin": fmt(rules.minimum),
        "sameAddress": False,
        "contract": "",
        "netWork": rules.network,
    }


def _history_row(w: Withdrawal) -> JsonDict:
    return {
        "id": w.id,
        "withdrawOrderId": w.client_id,
        "txId": w.txid,
        "coin": w.coin,
        "network": w.network,
        "address": w.address,
        "amount": fmt(w.amount),
        "transferType": 0,
        "status": STATUS[w.stage],
        "transactionFee": fmt(w.fee),
        "confirmNo": None,
        "applyTime": w.created_ms,
        "remark": w.remark or "",
        "memo": w.memo,
        "transHash": w.txid,
        "updateTime": w.updated_ms,
        "coinId": w.coin,
        "vcoinId": w.coin,
    }


def _key(ctx: _Ctx) -> str:
    assert ctx.api_key is not None
    return ctx.api_key


def _refused(exc: WalletRefused) -> MexcError:
    code, msg = REFUSALS[exc.refusal]
    return MexcError(code, msg)


def _h_withdraw(emu: MexcEmulator, ctx: _Ctx) -> Any:
    for name in ("coin", "address", "amount"):
        if not ctx.params.get(name):
            raise err_mandatory(name)
    try:
        amount = Decimal(ctx.params["amount"])
    except InvalidOperation:
        raise MexcError(10097, "amount is error") from None
    try:
        withdrawal = emu.wallet.request(
            _key(ctx),
            ctx.params["coin"],
            ctx.params.get("netWork") or ctx.params.get("network"),
            ctx.params["address"],
            amount,
            memo=ctx.params.get("memo"),
            client_id=ctx.params.get("withdrawOrderId"),
            remark=ctx.params.get("remark"),
        )
    except WalletRefused as exc:
        raise _refused(exc) from None
    return {"id": withdrawal.id}


def _h_withdraw_history(emu: MexcEmulator, ctx: _Ctx) -> Any:
    rows = emu.wallet.of(_key(ctx), ctx.params.get("coin") or None)
    if ctx.params.get("status"):
        rows = [w for w in rows if str(STATUS[w.stage]) == ctx.params["status"]]
    start = ctx.params.get("startTime", "")
    # MEXC: "default return the records of the last 7 days", at most 90 days back.
    since = int(start) if start.isdigit() else emu._now_ms() - _WEEK_MS
    rows = [w for w in rows if w.created_ms >= since]
    if (end := ctx.params.get("endTime", "")).isdigit():
        rows = [w for w in rows if w.created_ms <= int(end)]
    limit = int(ctx.params["limit"]) if ctx.params.get("limit", "").isdigit() else 1000
    return [_history_row(w) for w in rows[:limit]]


def _h_deposit_address(emu: MexcEmulator, ctx: _Ctx) -> Any:
    coin = ctx.params.get("coin")
    if not coin:
        raise err_mandatory("coin")
    wanted = ctx.params.get("network")
    rows = []
    for rules in emu.wallet.coins():
        if rules.coin != coin or (wanted and wanted.upper() != rules.network.upper()):
            continue
        address = emu.wallet.deposit_address(_key(ctx), coin, rules.network)
        rows.append(
            {
                "coin": coin,
                "network": rules.network,
                "address": address,
                "memo": None,
                "netWork": rules.network,
            }
        )
    if not rows:
        raise MexcError(*REFUSALS[Refusal.UNKNOWN_COIN])
    return rows


#: (method, server path) -> (handler, SIGNED), merged into the emulator's routes.
ROUTES: dict[tuple[str, str], tuple[Callable[[MexcEmulator, _Ctx], Any], bool]] = {
    ("POST", "/api/v3/capital/withdraw"): (_h_withdraw, True),
    ("GET", "/api/v3/capital/withdraw/history"): (_h_withdraw_history, True),
    ("GET", "/api/v3/capital/deposit/address"): (_h_deposit_address, True),
}
