"""How a sweep is named, and how its withdrawal is found again in the exchange's list.

The idempotency key is ``<account>:<asset>:<UTC request time, %Y%m%dT%H%M%SZ>:<16 random
hex>``: unique without coordination, and readable in the ledger. The client id sent with the
request is derived from it, ``km`` + the first 24 hex digits of the key's SHA-256 (26 ASCII
letters and digits: what MEXC's ``withdrawOrderId``, Gate's ``withdraw_order_id`` (32 at most)
and BingX's ``withdrawOrderId`` (letters and digits) all accept).

A sweep whose answer was lost is found by that client id; where the exchange keeps none
(KuCoin), by asset, exact amount, address and a request time close to the record's, and only
among withdrawals no other sweep claims. The caller takes a single candidate, never one of two.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

from kasmm.settle.desk import Withdrawal
from kasmm.store.settlements import SweepRecord

__all__ = ["LIST_BACK_S", "MATCH_WINDOW_S", "client_id_for", "match_withdrawal", "new_sweep_key"]

#: A withdrawal matched without a client id (KuCoin) must be listed at most this long after
#: the request was recorded (the request's own time out, and the clocks' skew), and at most
#: :data:`LIST_BACK_S` before it (the exchange's clock may be behind ours).
MATCH_WINDOW_S: Final = 120.0
#: The withdrawal list is read from this long before the oldest open request (clock skew).
LIST_BACK_S: Final = 300.0


def new_sweep_key(account: str, asset: str, now: float) -> str:
    """A fresh idempotency key (see the module docstring for its format)."""
    stamp = datetime.fromtimestamp(now, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{account}:{asset}:{stamp}:{secrets.token_hex(8)}"


def client_id_for(key: str) -> str:
    """The client id a sweep is requested with: ``km`` + 24 hex digits of SHA-256(key)."""
    return "km" + hashlib.sha256(key.encode()).hexdigest()[:24]


def match_withdrawal(
    record: SweepRecord, listed: Iterable[Withdrawal], claimed: frozenset[str]
) -> list[Withdrawal]:
    """The listed withdrawals that may be ``record``'s, unclaimed by any other sweep.

    By client id when the sweep has one; otherwise (or if no listed withdrawal carries it: an
    exchange that dropped the id) by asset, exact amount, address and a request time within
    [-:data:`LIST_BACK_S`, +:data:`MATCH_WINDOW_S`] of the record's, among withdrawals that
    carry no client id. The caller takes a single candidate only.
    """
    rows = [w for w in listed if w.id not in claimed or w.id == record.withdrawal_id]
    if record.client_id is not None:
        by_id = [w for w in rows if w.client_id == record.client_id]
        if by_id:
            return by_id
    start_ms = (record.requested_ts - LIST_BACK_S) * 1000
    end_ms = (record.requested_ts + MATCH_WINDOW_S) * 1000
    return [
        w
        for w in rows
        if w.client_id is None
        and w.asset == record.asset
        and w.amount == record.amount
        and w.address.lower() == record.address.lower()
        and w.ts_ms is not None
        and start_ms <= w.ts_ms <= end_ms
    ]
