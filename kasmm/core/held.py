"""Orders resting outside the quotes: what they take from the quoting budget.

A hanging order (the other side of a filled pair, left on the book) or a post-only rebalance
order is not reconciled against the quotes, but it still occupies one of its side's levels and
locks balance: the quotes of that side get fewer levels and a smaller budget.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core.skew import Budget
from kasmm.core.types import ZERO, ClientOrderId, OpenOrder, Side


@dataclass(frozen=True, slots=True)
class Held:
    """What the held orders of each side take: levels, and the balance they lock."""

    bid_levels: int = 0
    ask_levels: int = 0
    #: quote locked by held bids (price times remaining size)
    bid_quote: Decimal = ZERO
    #: base locked by held asks (remaining size)
    ask_base: Decimal = ZERO


#: Nothing held (most decisions).
NOTHING_HELD = Held()


#: The role of a held order that takes one of its side's levels (a rebalance order does not:
#: it is an extra order, only its balance counts).
HANGING = "hanging"
#: The role of a post-only rebalance order.
REBALANCE = "rebalance"


def held_of(orders: Iterable[OpenOrder], roles: Mapping[ClientOrderId, str]) -> Held:
    """What ``orders`` (the open orders held outside the quotes, by client id in ``roles``)
    take: every one its locked balance, a hanging one also a level of its side."""
    bid_levels = ask_levels = 0
    bid_quote = ask_base = ZERO
    for order in orders:
        hanging = roles.get(order.client_id) == HANGING
        if order.side is Side.BUY:
            bid_quote += order.price * order.remaining
            bid_levels += hanging
        else:
            ask_base += order.remaining
            ask_levels += hanging
    return Held(bid_levels, ask_levels, bid_quote, ask_base)


def held_budget(side: Side, budget: Budget, held: Held) -> Budget:
    """``budget`` less what ``held`` orders of ``side`` lock: held bids' quote from a bid
    budget, held asks' base from an ask budget (never below zero; unlimited stays unlimited).

    The budgets come from balance totals (:func:`kasmm.core.skew.side_budget`), which include
    what the held orders lock, so that much is not the quotes' to spend.
    """
    if side is Side.BUY:
        if budget.quote is None or held.bid_quote == ZERO:
            return budget
        return Budget(base=budget.base, quote=max(budget.quote - held.bid_quote, ZERO))
    if budget.base is None or held.ask_base == ZERO:
        return budget
    return Budget(base=max(budget.base - held.ask_base, ZERO), quote=budget.quote)


def held_levels(side: Side, levels: int, held: Held | None) -> int:
    """The levels ``side`` still quotes: ``levels`` less its held orders (0 or less: none)."""
    if held is None:
        return levels
    return levels - (held.bid_levels if side is Side.BUY else held.ask_levels)
