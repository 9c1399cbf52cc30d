"""Gate's wallet endpoints over :class:`~tests.emulators.wallet.Wallet`, as
``ccxt.async_support.gate`` 4.5.90 calls them (paths under ``/api/v4``):

=====================================  ========================================================
``withdraw(code, amount, address,      ``POST /withdrawals`` JSON ``currency``, ``address``,
{"network": "KAS"})``                  ``amount``, ``chain`` (``memo`` from ``tag``;
                                       ``withdraw_order_id`` passes through) -> 201 ``{id:
                                       "w<n>", currency, amount, address, memo, status:
                                       "REQUEST", chain, withdraw_order_id, fee_amount}``
``fetch_withdrawals(code)``            ``GET /wallet/withdrawals`` ``currency``, ``from`` /
                                       ``to`` (seconds), ``limit``, ``offset`` -> a list,
                                       newest first
``fetch_deposit_address(code,          ``GET /wallet/deposit_address`` ``currency`` -> ``{currency,
{"network": "KAS"})``                  address, multichain_addresses: [{chain, address,
                                       payment_id, payment_name, obtain_failed}]}``; ccxt picks
                                       the chain
``fetch_deposit_withdraw_fees()``     ``GET /wallet/withdraw_status`` ``currency`` -> a list of
(raw: ``privateWalletGet``             ``{currency, withdraw_fix, withdraw_amount_mini,
``WithdrawStatus``)                    withdraw_fix_on_chains: {chain: fee}, ...}``: Gate's
                                       only source of the withdrawal fee and minimum
=====================================  ========================================================

ccxt has no ``fetch_withdrawal`` for Gate (``GET /wallet/withdrawals?withdraw_id=`` filters the
list; the emulator honours it). ccxt tells a withdrawal from a deposit by the id's first letter
(``w``), so ids are ``w<n>``. Status strings: REQUEST, MANUAL (review), PROCES, EXTPEND (sent,
``txid`` set, waiting for confirmations), DONE, FAIL, CANCEL; ccxt maps the first four (and PEND,
VERIFY, DMOVE, SPLITPEND) to ``pending``, DONE to ``ok``, FAIL / INVALID to ``failed``, CANCEL to
``canceled``. The fee comes out of the amount (ccxt reports ``amount - fee``).

=========================  ====  =====================  =====================================
refusal                    HTTP  label                  ccxt
=========================  ====  =====================  =====================================
address not whitelisted    400   ADDRESS_NOT_USED       ExchangeError (ccxt knows the label;
                                                        its use here is unverified)
insufficient balance       400   BALANCE_NOT_ENOUGH     InsufficientFunds
amount below the minimum   400   INVALID_PARAM_VALUE    BadRequest (label unverified)
withdrawals suspended      400   API_WITHDRAW_DISABLED  ExchangeNotAvailable (a NetworkError:
                                                        a generic retry would retry it)
unknown currency / chain   400   INVALID_CURRENCY       BadSymbol
=========================  ====  =====================  =====================================
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from tests.emulators.gate_shapes import GateError, fmt
from tests.emulators.gate_venue import ACCOUNT
from tests.emulators.wallet import Refusal, Stage, Wallet, WalletRefused, Withdrawal

if TYPE_CHECKING:
    from tests.emulators.gate import GateEmulator, _Call

__all__ = ["STATUS", "new_wallet", "wallet_routes"]

STATUS: dict[Stage, str] = {
    Stage.REQUESTED: "REQUEST",
    Stage.REVIEWING: "MANUAL",
    Stage.PROCESSING: "PROCES",
    Stage.SENT: "EXTPEND",
    Stage.COMPLETED: "DONE",
    Stage.FAILED: "FAIL",
    Stage.CANCELLED: "CANCEL",
}

REFUSALS: dict[Refusal, tuple[str, str]] = {
    Refusal.NOT_WHITELISTED: ("ADDRESS_NOT_USED", "Address never being used in web console"),
    Refusal.INSUFFICIENT_BALANCE: ("BALANCE_NOT_ENOUGH", "Not enough balance"),
    Refusal.BELOW_MINIMUM: ("INVALID_PARAM_VALUE", "amount is less than the minimum withdrawal"),
    Refusal.SUSPENDED: ("API_WITHDRAW_DISABLED", "API withdrawal operation is disabled"),
    Refusal.UNKNOWN_COIN: ("INVALID_CURRENCY", "Invalid currency"),
}

Answer = tuple[int, Any]


def new_wallet(emu: GateEmulator) -> Wallet:
    """The emulator's wallet (one account): ``w<n>`` ids, the fee taken out of the amount."""
    return Wallet(emu.engine.engine, lambda n: f"w{n}", fee_included=True)


def _row(w: Withdrawal) -> dict[str, Any]:
    return {
        "id": w.id,
        "timestamp": str(w.created_ms // 1000),
        "withdraw_order_id": w.client_id or "",
        "currency": w.coin,
        "address": w.address,
        "txid": w.txid or "",
        "block_number": "1" if w.stage is Stage.COMPLETED else "0",
        "amount": fmt(w.amount),
        "fee": fmt(w.fee),
        "memo": w.memo or "",
        "status": STATUS[w.stage],
        "chain": w.network,
    }


def _refused(exc: WalletRefused) -> GateError:
    label, message = REFUSALS[exc.refusal]
    return GateError(400, label, message)


def wallet_routes(emu: GateEmulator) -> list[tuple[str, str, Callable[[_Call], Answer]]]:
    """``(method, path, handler)`` of the wallet endpoints, all private, for the route table."""

    def withdraw(call: _Call) -> Answer:
        body = call.body if isinstance(call.body, dict) else {}
        for name in ("currency", "address", "amount"):
            if not body.get(name):
                raise GateError(
                    400, "MISSING_REQUIRED_PARAM", f"Missing required parameter: {name}"
                )
        try:
            amount = Decimal(str(body["amount"]))
        except InvalidOperation:
            raise GateError(400, "INVALID_PARAM_VALUE", "Invalid amount") from None
        try:
            w = emu.wallet.request(
                ACCOUNT,
                str(body["currency"]),
                body.get("chain"),
                str(body["address"]),
                amount,
                memo=body.get("memo"),
                client_id=body.get("withdraw_order_id"),
            )
        except WalletRefused as exc:
            raise _refused(exc) from None
        return 201, {
            "id": w.id,
            "currency": w.coin,
            "amount": fmt(w.amount),
            "address": w.address,
            "memo": w.memo,
            "status": STATUS[w.stage],
            "chain": w.network,
            "withdraw_order_id": w.client_id or "",
            "fee_amount": fmt(w.fee),
        }

    def withdrawals(call: _Call) -> Answer:
        q = call.query
        rows = emu.wallet.of(ACCOUNT, q.get("currency") or None)
        if q.get("withdraw_id"):
            rows = [w for w in rows if w.id == q["withdraw_id"]]
        if q.get("from", "").isdigit():
            rows = [w for w in rows if w.created_ms // 1000 >= int(q["from"])]
        if q.get("to", "").isdigit():
            rows = [w for w in rows if w.created_ms // 1000 <= int(q["to"])]
        offset = int(q["offset"]) if q.get("offset", "").isdigit() else 0
        limit = int(q["limit"]) if q.get("limit", "").isdigit() else 100
        return 200, [_row(w) for w in rows[offset : offset + limit]]

    def deposit_address(call: _Call) -> Answer:
        currency = call.query.get("currency")
        if not currency:
            raise GateError(400, "MISSING_REQUIRED_PARAM", "Missing required parameter: currency")
        chains = [
            {
                "chain": rules.network,
                "address": emu.wallet.deposit_address(ACCOUNT, currency, rules.network),
                "payment_id": "",
                "payment_name": "",
                "obtain_failed": 0,
            }
            for rules in emu.wallet.coins()
            if rules.coin == currency
        ]
        if not chains:
            raise _refused(WalletRefused(Refusal.UNKNOWN_COIN, None))
        return 200, {
            "currency": currency,
            "address": chains[0]["address"],
            "multichain_addresses": chains,
        }

    def withdraw_status(call: _Call) -> Answer:
        wanted = call.query.get("currency")
        rows: dict[str, dict[str, Any]] = {}
        for rules in emu.wallet.coins():
            if wanted and rules.coin != wanted:
                continue
            row = rows.setdefault(
                rules.coin,
                {
                    "currency": rules.coin,
                    "name": rules.coin,
                    "name_cn": rules.coin,
                    "deposit": "0",
                    "withdraw_percent": "0%",
                    "withdraw_fix": fmt(rules.fee),
                    "withdraw_day_limit": "500000",
                    "withdraw_amount_mini": fmt(rules.minimum),
                    "withdraw_day_limit_remain": "500000",
                    "withdraw_eachtime_limit": fmt(rules.maximum),
                    "withdraw_fix_on_chains": {},
                },
            )
            row["withdraw_fix_on_chains"][rules.network] = fmt(rules.fee)
        return 200, list(rows.values())

    return [
        ("GET", "/wallet/withdraw_status", withdraw_status),
        ("POST", "/withdrawals", withdraw),
        ("GET", "/wallet/withdrawals", withdrawals),
        ("GET", "/wallet/deposit_address", deposit_address),
    ]
