"""What a fill changes in the next quotes (issue 19): the fill cooldown and ping-pong.

A fill here is any fill of this run's orders, partial ones too. :class:`FillMemory` remembers
what the two gates read, and :func:`remember` folds one fill in:

* the last fill time of each side, on the interval clock: the **cooldown** gate
  (:func:`apply_cooldown`) quotes a side empty for ``filled_order_delay_s`` after its last fill
  (Hummingbot's ``filled_order_delay``, per side: the side that just traded waits, the other
  keeps quoting);
* the **ping-pong** balance (Hummingbot's rule): each order's *first* fill counts once for its
  side, so a ladder order filled in ten pieces is one buy. While filled buys outnumber filled
  sells by ``n``, the best ``n`` bid levels are not quoted (``n`` at least the quoted levels:
  no bids), and the reverse for sells. When the two are level the balance is zero again
  (:func:`apply_ping_pong`).

Both gates return the decision unchanged (the same object) when they remove nothing, and give it
their reason (:data:`COOLDOWN`, :data:`PING_PONG`) when they empty a side.
"""

from __future__ import annotations

from collections.abc import Container
from dataclasses import dataclass
from typing import Final

from kasmm.core.band import with_quotes
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import ClientOrderId, Quotes, Side

#: The decision's reason when the cooldown empties a side.
COOLDOWN: Final = "cooldown"
#: The decision's reason when ping-pong empties a side.
PING_PONG: Final = "ping_pong"


@dataclass(frozen=True, slots=True)
class FillMemory:
    """What the after-fill gates remember of this run's fills."""

    #: interval-clock time of the last buy / sell fill (``None``: none yet)
    last_buy_at: float | None = None
    last_sell_at: float | None = None
    #: first fills of buy orders minus first fills of sell orders (ping-pong)
    balance: int = 0
    #: orders whose first fill was counted and that may fill again (partly filled, open): their
    #: next fills do not count
    counted: frozenset[ClientOrderId] = frozenset()

    def last_fill_at(self, side: Side) -> float | None:
        """When ``side`` last filled."""
        return self.last_buy_at if side is Side.BUY else self.last_sell_at


#: Nothing filled yet.
NO_FILLS: Final = FillMemory()


def remember(
    memory: FillMemory,
    side: Side,
    client_id: ClientOrderId,
    now: float,
    *,
    done: bool,
    still_open: Container[ClientOrderId] = frozenset(),
) -> FillMemory:
    """``memory`` after a fill of ``client_id`` (a ``side`` order) at ``now``.

    :param done: the fill left nothing of the order (its id is forgotten: no fill follows).
    :param still_open: the orders still open: counted ids of orders gone since (cancelled
        after a partial fill) are forgotten here, so the memory stays as small as the book.
    """
    counted = memory.counted
    first = client_id not in counted
    if counted:
        counted = frozenset(c for c in counted if c in still_open and c != client_id)
    if not done:
        counted = counted | {client_id}
    balance = memory.balance
    if first:
        balance += 1 if side is Side.BUY else -1
    if side is Side.BUY:
        return FillMemory(now, memory.last_sell_at, balance, counted)
    return FillMemory(memory.last_buy_at, now, balance, counted)


def cooldown_left(memory: FillMemory, side: Side, delay_s: float, now: float) -> float:
    """Seconds before ``side`` may be quoted again (0: now)."""
    at = memory.last_fill_at(side)
    if at is None or delay_s <= 0.0:
        return 0.0
    return max(0.0, at + delay_s - now)


def apply_cooldown(
    decision: QuoteDecision, memory: FillMemory, delay_s: float, now: float
) -> QuoteDecision:
    """``decision`` without the quotes of a side that filled less than ``delay_s`` ago."""
    quotes = decision.quotes
    bids, asks = quotes.bids, quotes.asks
    if bids and cooldown_left(memory, Side.BUY, delay_s, now) > 0.0:
        bids = ()
    if asks and cooldown_left(memory, Side.SELL, delay_s, now) > 0.0:
        asks = ()
    if bids is quotes.bids and asks is quotes.asks:
        return decision
    return with_quotes(decision, Quotes(bids, asks), COOLDOWN)


def apply_ping_pong(decision: QuoteDecision, balance: int) -> QuoteDecision:
    """``decision`` without the best ``balance`` bid levels (a positive balance: more buys
    filled) or the best ``-balance`` ask levels (more sells)."""
    if balance == 0:
        return decision
    quotes = decision.quotes
    bids, asks = quotes.bids, quotes.asks
    if balance > 0:
        if not bids:
            return decision
        bids = bids[balance:]
    else:
        if not asks:
            return decision
        asks = asks[-balance:]
    emptied = (quotes.bids and not bids) or (quotes.asks and not asks)
    reason = PING_PONG if emptied else decision.reason
    return with_quotes(decision, Quotes(bids, asks), reason)
