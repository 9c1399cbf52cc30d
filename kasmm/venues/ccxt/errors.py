"""Translate ccxt exceptions into kasmm's error classes, once, at the venue boundary.

ccxt's classes are the first key; the exchange's own code (MEXC answers an unknown-order cancel
with ``-2011``, which ccxt raises as ``BadRequest``), where kasmm lists it, and for the generic
classes its label, are parsed from the message and take precedence, and a few messages of codes
an exchange uses for several things (BingX's 100400) decide before either. Messages are
scrubbed before anything sees them: ccxt puts the request URL (with its query string and
signature) and the response body in its messages, so query strings, ``signature=``/key
fragments and the account's own secrets are removed, also from the ccxt exception kept as
``__cause__`` (a logged traceback shows it).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from typing import Any, Final

import ccxt.async_support as ccxt
from pydantic import SecretStr

from kasmm.errors import (
    AuthenticationFailed,
    FatalVenueError,
    InsufficientFunds,
    OrderNotFound,
    OrderRejected,
    PostOnlyWouldCross,
    RateLimited,
    RequestTimedOut,
    TransientVenueError,
    VenueError,
)

#: ccxt class -> kasmm class, most specific first (the first ``isinstance`` match wins).
#: ``OrderNotFound`` and ``OrderImmediatelyFillable`` subclass ``InvalidOrder``, and
#: ``RateLimitExceeded`` / ``DDoSProtection`` / ``RequestTimeout`` subclass ``NetworkError``.
CLASS_MAP: Final[tuple[tuple[type[BaseException], type[VenueError]], ...]] = (
    (ccxt.OrderImmediatelyFillable, PostOnlyWouldCross),
    (ccxt.OrderNotFound, OrderNotFound),
    (ccxt.InsufficientFunds, InsufficientFunds),
    (ccxt.InvalidOrder, OrderRejected),
    (ccxt.AuthenticationError, AuthenticationFailed),  # incl. PermissionDenied, AccountSuspended
    (ccxt.RequestTimeout, RequestTimedOut),
    (ccxt.RateLimitExceeded, RateLimited),
    (ccxt.DDoSProtection, RateLimited),
    (ccxt.NetworkError, TransientVenueError),  # ExchangeNotAvailable, OnMaintenance, InvalidNonce
    (ccxt.OperationFailed, TransientVenueError),  # BadResponse, NullResponse: a garbled answer
    (ccxt.BaseError, FatalVenueError),  # BadSymbol, NotSupported, ExchangeError, ...
)

#: Exchange error codes (``"code"`` in the body) that override ccxt's class, per exchange.
CODE_MAP: Final[Mapping[str, Mapping[str, type[VenueError]]]] = {
    "mexc": {
        "-2011": OrderNotFound,  # cancel of an unknown or closed order (ccxt: BadRequest)
        "-2013": OrderNotFound,  # query of an unknown order (ccxt: ExchangeError)
        "-2010": OrderRejected,  # duplicate client order id (ccxt: ExchangeError)
        "30002": OrderRejected,  # below the minimum transaction volume
        "30004": InsufficientFunds,
        "30005": InsufficientFunds,  # oversold
        "700002": AuthenticationFailed,  # bad signature
        "429": RateLimited,
        "510": RateLimited,
    },
    "kucoin": {
        "200002": RateLimited,  # per-endpoint frequency limit
        "429000": RateLimited,
    },
    "bingx": {
        "100202": InsufficientFunds,
        # "Null timestamp or timestamp mismatch" (ccxt: BadSymbol); the same code also answers
        # a cancel of an order that does not exist, which MESSAGE_MAP catches first.
        "100421": TransientVenueError,
        "100503": TransientVenueError,
        "100410": RateLimited,  # ccxt: OperationFailed
    },
}

#: Exchange messages that decide the class whatever ccxt raised, per exchange: codes the
#: exchange uses for several things (BingX answers a cancel of a gone order with the generic
#: 100400, or with 100421), checked before :data:`CODE_MAP`.
MESSAGE_MAP: Final[Mapping[str, tuple[tuple[re.Pattern[str], type[VenueError]], ...]]] = {
    "bingx": (
        (
            re.compile(r"FILLED or CANCELLED already|not a valid order id|order not exist", re.I),
            OrderNotFound,
        ),
    ),
}

#: Gate answers with a ``"label"``: these make ccxt's class more precise.
LABEL_MAP: Final[Mapping[str, type[VenueError]]] = {
    "POC_FILL_IMMEDIATELY": PostOnlyWouldCross,
    "ORDER_POC_IMMEDIATE": PostOnlyWouldCross,
    "ORDER_NOT_FOUND": OrderNotFound,
    "CLIENT_ID_NOT_FOUND": OrderNotFound,
    "ORDER_CLOSED": OrderNotFound,  # cancel of a finished order (ccxt: InvalidOrder)
    "ORDER_CANCELLED": OrderNotFound,
    "ORDER_FINISHED": OrderNotFound,
    "TOO_FAST": RateLimited,
    "TOO_MANY_REQUESTS": RateLimited,
}

#: Message fragments that mark a post-only order refused for taking liquidity.
_POST_ONLY_HINTS: Final = re.compile(
    r"post[\s_-]?only|postonly|would (?:immediately )?(?:match|take|trade)|maker only", re.I
)
#: Order parameter errors that ccxt raises as a plain ``BadRequest`` (MEXC "price scale is
#: invalid"): the order is rejected, the request itself was fine.
_REJECT_HINTS: Final = re.compile(
    r"scale is invalid|precision|increment|decimal places|too many decimals", re.I
)
#: Balance errors known only by their text (KuCoin's batch ``failMsg``: "Balance insufficient!").
_FUNDS_HINTS: Final = re.compile(
    r"insufficient (?:account )?(?:balance|funds)|balance insufficient"
    r"|not enough (?:balance|funds)|balance not enough",
    re.I,
)
#: Fields a batch answer's failed entry carries its code / label and its message in.
_ENTRY_CODE_FIELDS: Final = ("code", "label", "errorCode")
_ENTRY_MESSAGE_FIELDS: Final = ("msg", "message", "failMsg", "errorMsg")
#: ccxt classes too generic to trust over the exchange's own code or label.
_GENERIC: Final[tuple[type[BaseException], ...]] = (
    ccxt.ExchangeError,
    ccxt.BadRequest,
    ccxt.InvalidOrder,
    ccxt.OperationRejected,
    ccxt.BaseError,
)
_CODE_RE: Final = re.compile(r'"code"\s*:\s*"?(-?\d+)"?')
_LABEL_RE: Final = re.compile(r'"label"\s*:\s*"([A-Z_]+)"')
_URL_QUERY_RE: Final = re.compile(r"(https?://[^\s?#\"']+)[?#][^\s\"']*")
_SECRET_FIELD_RE: Final = re.compile(
    r"(?i)((?:signature|sign|api[_-]?key|access[_-]?key|key|secret|passphrase|password|token)"
    r"\"?\s*[=:]\s*\"?)[^&\s\"',}]+"
)
_MAX_MESSAGE = 400


def scrub(message: str, secrets: Iterable[SecretStr] = ()) -> str:
    """``message`` without query strings, credential-looking fields and the given secrets."""
    text = _URL_QUERY_RE.sub(r"\1", message)
    text = _SECRET_FIELD_RE.sub(r"\1***", text)
    for secret in secrets:
        value = secret.get_secret_value()
        if len(value) >= 4:
            text = text.replace(value, "***")
    if len(text) > _MAX_MESSAGE:
        text = text[:_MAX_MESSAGE] + "..."
    return text


def exchange_code(message: str) -> str | None:
    """The exchange error code (``"code": -2011``) in a ccxt message, if any."""
    match = _CODE_RE.search(message)
    return match.group(1) if match else None


def exchange_label(message: str) -> str | None:
    """Gate's error ``"label"`` in a ccxt message, if any."""
    match = _LABEL_RE.search(message)
    return match.group(1) if match else None


def classify(exc: BaseException, exchange: str) -> type[VenueError]:
    """The kasmm class for ``exc`` raised by ccxt for ``exchange`` (pure: no scrubbing)."""
    message = str(exc)
    if isinstance(exc, ccxt.BaseError):
        for pattern, by_message in MESSAGE_MAP.get(exchange, ()):
            if pattern.search(message):
                return by_message
        # The exchange's own code, listed per exchange, is more precise than any ccxt class.
        code = exchange_code(message)
        by_code = CODE_MAP.get(exchange, {}).get(code) if code is not None else None
        if by_code is not None:
            return by_code
        if type(exc) in _GENERIC:
            label = exchange_label(message)
            if label is not None and label in LABEL_MAP:
                return LABEL_MAP[label]
            if type(exc) is ccxt.BadRequest and _REJECT_HINTS.search(message):
                return OrderRejected
            if _FUNDS_HINTS.search(message):
                return InsufficientFunds
        for ccxt_class, kasmm_class in CLASS_MAP:
            if isinstance(exc, ccxt_class):
                if kasmm_class is OrderRejected and _POST_ONLY_HINTS.search(message):
                    return PostOnlyWouldCross
                return kasmm_class
        return FatalVenueError  # pragma: no cover - BaseError is the last row
    if isinstance(exc, TimeoutError):
        return RequestTimedOut
    if isinstance(exc, OSError):
        return TransientVenueError
    return FatalVenueError


def translate(
    exc: BaseException, exchange: str, *, action: str = "", secrets: Iterable[SecretStr] = ()
) -> VenueError:
    """A kasmm error for ``exc`` with a scrubbed message; also scrubs ``exc.args`` in place.

    Use as ``raise translate(exc, ...) from exc``: the ccxt exception stays the ``__cause__`` but
    no longer carries the URL query, signature or secrets.

    :param action: what was being done (``place_order``), prefixed to the message.
    """
    secrets = tuple(secrets)
    kind = classify(exc, exchange)
    clean = scrub(str(exc), secrets)
    if isinstance(exc, ccxt.BaseError) or exc.args:
        exc.args = (clean,)
    prefix = f"{exchange} {action}: " if action else f"{exchange}: "
    return kind(f"{prefix}{type(exc).__name__}: {clean}")


def entry_error(
    exchange: Any,
    entry: Mapping[str, Any],
    *,
    action: str,
    secrets: Iterable[SecretStr] = (),
) -> VenueError:
    """The kasmm error of one failed order inside a batch answer (``entry`` is its raw JSON).

    The entry's code or label and its message go through the exchange's own ccxt error table
    (``exchange.exceptions``), exactly as a single request's error body would, then through
    :func:`translate`. The request itself was accepted, so an error only about this order can
    be no authentication or fatal error: what would translate to one becomes ``OrderRejected``.
    """
    name = str(getattr(exchange, "id", "") or "")
    feedback = f"{name} {json.dumps(dict(entry), default=str, separators=(',', ':'))}"
    code = next((entry[k] for k in _ENTRY_CODE_FIELDS if entry.get(k) not in (None, "")), None)
    message = next(
        (str(entry[k]) for k in _ENTRY_MESSAGE_FIELDS if entry.get(k) not in (None, "")), None
    )
    tables = getattr(exchange, "exceptions", None) or {}
    exact, broad = tables.get("exact") or {}, tables.get("broad") or {}
    exc: BaseException = ccxt.ExchangeError(feedback)
    try:
        if code is not None:
            exchange.throw_exactly_matched_exception(exact, str(code), feedback)
        if message is not None:
            exchange.throw_exactly_matched_exception(exact, message, feedback)
            exchange.throw_broadly_matched_exception(broad, message, feedback)
    except ccxt.BaseError as raised:
        exc = raised
    error = translate(exc, name, action=action, secrets=secrets)
    if isinstance(error, AuthenticationFailed | FatalVenueError):
        return OrderRejected(str(error))
    return error
