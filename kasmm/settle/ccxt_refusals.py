"""What a ccxt error on a withdrawal means: refused (nothing went out), or unknown.

The one question that matters after a failed ``withdraw`` is whether money may have left. So
the translation is asymmetric on purpose:

* **Refused** only when the exchange answered with an error it is known to give for a refused
  request (its code, Gate's label, or KuCoin's message under its generic ``400100``), when
  ccxt's class itself says so (insufficient funds, a missing permission, a bad parameter), or
  when ccxt refused before sending anything (an argument missing, a currency unknown).
* **Unknown** for everything else: time outs, dropped connections, 5xx answers, unreadable
  answers, and exchange errors nobody has mapped. An unknown request is looked up by the
  executor, never resent, so calling a refusal unknown costs a delay; calling an accepted
  request refused could cost a second withdrawal. Hence no guessing toward "refused".

ccxt's classes alone would get one case backwards: Gate answers a withdrawal of a suspended
currency with the label ``API_WITHDRAW_DISABLED``, which ccxt raises as
``ExchangeNotAvailable``, a ``NetworkError`` a generic retry would retry. The label decides
first. Codes and texts are those of :mod:`tests.emulators` (``*_wallet.py``), where each
exchange's table says which are verified against its documentation.

Messages are scrubbed (:func:`kasmm.venues.ccxt.errors.scrub`): ccxt puts the request URL, its
signature and the response body in them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Final

import ccxt.async_support as ccxt
from pydantic import SecretStr

from kasmm.settle.desk import (
    DeskUnavailable,
    RefusalReason,
    WithdrawalRefused,
    WithdrawalUnknown,
)
from kasmm.venues.ccxt.errors import exchange_code, exchange_label, scrub

__all__ = [
    "REFUSAL_CODES",
    "REFUSAL_LABELS",
    "read_error",
    "refusal_reason",
    "withdraw_error",
]

#: Exchange error codes of a refused withdrawal, per exchange (``None``: decided by message).
REFUSAL_CODES: Final[Mapping[str, Mapping[str, RefusalReason | None]]] = {
    "mexc": {
        "10212": "address_not_whitelisted",  # not on the commonly used address list
        "10101": "insufficient_balance",
        "10097": "below_minimum",  # "amount is error": MEXC's answer to a too small amount
        "10265": "withdrawals_suspended",  # "Due to risk control, withdrawal is unavailable"
        "10232": "invalid_request",  # currency does not exist
        "10222": "invalid_request",  # currency cannot be null
        "10007": "invalid_request",  # bad symbol
        "700004": "invalid_request",  # a mandatory parameter is missing
    },
    "kucoin": {
        "200004": "insufficient_balance",
        "260100": "insufficient_balance",  # account.noBalance
        "400100": None,  # KuCoin's generic parameter error: the message says which
    },
    "bingx": {
        "100440": "address_not_whitelisted",
        "100202": "insufficient_balance",
        "100437": "below_minimum",
        "100503": "withdrawals_suspended",
        "100400": "invalid_request",
    },
}
#: Gate's error labels of a refused withdrawal.
REFUSAL_LABELS: Final[Mapping[str, RefusalReason | None]] = {
    "ADDRESS_NOT_USED": "address_not_whitelisted",
    "BALANCE_NOT_ENOUGH": "insufficient_balance",
    "API_WITHDRAW_DISABLED": "withdrawals_suspended",  # ccxt: ExchangeNotAvailable
    "WITHDRAWAL_OVER_LIMIT": "invalid_request",
    "INVALID_CURRENCY": "invalid_request",
    "FORBIDDEN": "permission_denied",
    "REQUEST_FORBIDDEN": "permission_denied",
    "INVALID_PARAM_VALUE": None,  # the message says which parameter
}
#: What an answered refusal's text says, in order (first match wins).
_HINTS: Final[tuple[tuple[re.Pattern[str], RefusalReason], ...]] = (
    (
        re.compile(r"whitelist|white list|address book|commonly used address", re.I),
        "address_not_whitelisted",
    ),
    (re.compile(r"minimum|too small|lower than the min", re.I), "below_minimum"),
    (
        re.compile(r"insufficient|not enough balance|balance not enough", re.I),
        "insufficient_balance",
    ),
    (re.compile(r"suspend|disabled|unavailable|not open", re.I), "withdrawals_suspended"),
    (re.compile(r"permission|forbidden|not allowed", re.I), "permission_denied"),
)
#: ccxt classes raised before any request is sent, or for an answer that refused a parameter.
_REFUSED_CLASSES: Final[tuple[type[BaseException], ...]] = (
    ccxt.ArgumentsRequired,
    ccxt.BadRequest,  # incl. BadSymbol
    ccxt.InvalidAddress,
    ccxt.InvalidOrder,
    ccxt.NotSupported,
)


def _hint(message: str) -> RefusalReason | None:
    for pattern, reason in _HINTS:
        if pattern.search(message):
            return reason
    return None


def refusal_reason(exc: BaseException, exchange: str) -> RefusalReason | None:
    """Why the withdrawal that raised ``exc`` was refused, or ``None``: it may have gone out."""
    if not isinstance(exc, ccxt.BaseError):
        return None  # asyncio/aiohttp time outs and socket errors: unknown
    message = str(exc)
    code = exchange_code(message)
    codes = REFUSAL_CODES.get(exchange, {})
    if code is not None and code in codes:
        return codes[code] or _hint(message) or "invalid_request"
    label = exchange_label(message) if exchange == "gate" else None
    if label is not None and label in REFUSAL_LABELS:
        return REFUSAL_LABELS[label] or _hint(message) or "invalid_request"
    if isinstance(exc, ccxt.OperationFailed):
        return None  # network errors, 5xx, rate limits, unreadable answers
    if isinstance(exc, ccxt.InsufficientFunds):
        return "insufficient_balance"
    if isinstance(exc, ccxt.AuthenticationError):  # PermissionDenied, AccountSuspended
        return "permission_denied"
    if isinstance(exc, _REFUSED_CLASSES):
        return _hint(message) or "invalid_request"
    return None  # a plain ExchangeError nobody mapped: it may have been processed


def _clean(exc: BaseException, secrets: Iterable[SecretStr]) -> str:
    """The scrubbed message, also put back into ``exc`` (a logged traceback shows it)."""
    clean = scrub(str(exc), secrets)
    if exc.args:
        exc.args = (clean,)
    return f"{type(exc).__name__}: {clean}"


def withdraw_error(
    exc: BaseException, exchange: str, secrets: Iterable[SecretStr] = ()
) -> WithdrawalRefused | WithdrawalUnknown:
    """The desk error for a failed ``withdraw`` (raise it ``from exc``)."""
    reason = refusal_reason(exc, exchange)
    message = f"{exchange} withdraw: {_clean(exc, secrets)}"
    if reason is None:
        return WithdrawalUnknown(message)
    return WithdrawalRefused(reason, message)


def read_error(
    exc: BaseException, exchange: str, action: str, secrets: Iterable[SecretStr] = ()
) -> DeskUnavailable:
    """The desk error for a failed read (balances, list, terms, book, address)."""
    return DeskUnavailable(f"{exchange} {action}: {_clean(exc, secrets)}")
