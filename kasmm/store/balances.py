"""The balances a simulated account holds by the ledger: its opening balances plus its fills.

A simulated venue (sim, replay, paper) is rebuilt from its configured balances on every start,
but the ledger carries on. The balances an account held at its first start on this ledger are
stored once (``opening_balances``, one row per asset); a restart resumes from them plus every
stored fill, settled as the simulator settles it: a buy adds its size to the base asset and
takes its notional from the quote asset, a sell the reverse, and the fee is taken from whatever
asset it was charged in (a negative fee is a rebate).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Mapping
from decimal import Decimal

from kasmm.core.types import ZERO, Fill, Side
from kasmm.store.records import decode_decimal, encode_decimal


def settle_fills(
    opening: Mapping[str, Decimal], fills: Iterable[Fill], base: str, quote: str
) -> dict[str, Decimal]:
    """Balances after ``fills`` (in any order: the sum is exact) starting from ``opening``."""
    balances = dict(opening)
    for asset in (base, quote):
        balances.setdefault(asset, ZERO)
    for fill in fills:
        sign = 1 if fill.side is Side.BUY else -1
        balances[base] += sign * fill.size
        balances[quote] -= sign * fill.notional
        balances[fill.fee_asset] = balances.get(fill.fee_asset, ZERO) - fill.fee
    return balances


def insert_opening_balances(
    conn: sqlite3.Connection, profile: str, balances: Mapping[str, Decimal], ts: float
) -> bool:
    """Store ``balances`` as the profile's opening balances unless some are stored already.

    Call inside a write transaction (the check and the insert must be atomic).

    :return: True when stored now, False when the profile had opening balances (kept as is).
    """
    exists = conn.execute(
        "SELECT 1 FROM opening_balances WHERE profile = ? LIMIT 1", (profile,)
    ).fetchone()
    if exists is not None:
        return False
    conn.executemany(
        "INSERT INTO opening_balances (profile, asset, amount, ts) VALUES (?, ?, ?, ?)",
        [(profile, asset, encode_decimal(amount), ts) for asset, amount in balances.items()],
    )
    return True


def select_opening_balances(conn: sqlite3.Connection, profile: str) -> dict[str, Decimal] | None:
    """The profile's stored opening balances, or None when none were stored."""
    rows = conn.execute(
        "SELECT asset, amount FROM opening_balances WHERE profile = ? ORDER BY asset", (profile,)
    ).fetchall()
    return {asset: decode_decimal(amount) for asset, amount in rows} if rows else None
