"""MEXC's depth synchronisation as MEXC documents it, where ccxt 4.5.90 departs from it.

MEXC aggregates depth changes into pushes spanning ``fromVersion``..``toVersion`` (its 100 ms
windows). To keep a local book, MEXC says: take a REST snapshot (version ``N``), then apply the
first push whose range holds ``N + 1`` and every push after it. A push that *straddles* the
snapshot (``fromVersion <= N < toVersion``) carries the final quantity of every level it touches
as of ``toVersion``, so applying it whole is right. ccxt instead applies only pushes whose
``fromVersion`` is at or after ``N`` (``get_cache_index`` when it syncs, ``handle_book_delta``
live), so it drops the straddling one and, with it, every change the window made after the
snapshot: the book stays wrong at those levels until they change again. Found on the MEXC
emulator (``tests/unit/test_emulator_mexc_ws.py``, aggregated windows).

:func:`repair_mexc_book_sync` wraps the two methods on the instance (as the sequence check and
the throttle are installed): the straddling push is applied, nothing else changes.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def _versions(delta: Any) -> tuple[int | None, int | None]:
    if not isinstance(delta, Mapping):
        return None, None
    try:
        first = int(delta["fromVersion"])
        last = int(delta["toVersion"])
    except (KeyError, TypeError, ValueError):
        return None, None
    return first, last


def _nonce(orderbook: Any) -> int | None:
    try:
        value = orderbook["nonce"]
        return None if value is None else int(value)
    except (KeyError, TypeError, ValueError):
        return None


def straddles(delta: Any, nonce: int | None) -> bool:
    """``delta`` begins at or before the book's version ``nonce`` and ends after it."""
    first, last = _versions(delta)
    return nonce is not None and first is not None and last is not None and first <= nonce < last


def repair_mexc_book_sync(exchange: Any) -> None:
    """Apply a push that straddles the snapshot's version, on a ``ccxt.pro.mexc`` instance."""
    cls = type(exchange)
    cache_index = getattr(cls, "get_cache_index", None)
    book_delta = getattr(cls, "handle_book_delta", None)
    if cache_index is None or book_delta is None:
        return

    def get_cache_index(orderbook: Any, cache: Any) -> Any:
        index = cache_index(exchange, orderbook, cache)
        # ccxt's index is the first push starting at or after the snapshot: the one before it
        # may straddle the snapshot, and then it is the first to apply.
        if (
            isinstance(index, int)
            and 0 < index <= len(cache)
            and straddles(cache[index - 1], _nonce(orderbook))
        ):
            return index - 1
        return index

    def handle_book_delta(orderbook: Any, delta: Any) -> Any:
        nonce = _nonce(orderbook)
        if straddles(delta, nonce):
            # Its levels are quantities as of toVersion: apply it as if it began at the
            # snapshot (ccxt skips a push beginning before its book).
            delta = {**delta, "fromVersion": str(nonce)}
        return book_delta(exchange, orderbook, delta)

    exchange.get_cache_index = get_cache_index
    exchange.handle_book_delta = handle_book_delta
