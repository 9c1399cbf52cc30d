"""The one order a profile's stored accounting is replayed in: its fills and its transfers.

A bot folds each fill into its PnL as it arrives and books each settlement sweep of its account
as a transfer (:func:`kasmm.core.pnl.transfer`) at its next decision. The ledger keeps the fills
in insertion order and the transfers with their booking time. Everything that rebuilds the
bot's PnL from the ledger replays them here, so a restored bot (:meth:`Ledger.pnl_state
<kasmm.store.ledger.Ledger.pnl_state>`), ``kasmm pnl`` and the report's days
(:mod:`kasmm.report.daily`) and the report's PnL track (:mod:`kasmm.report.analysis`) cannot
disagree on the order, nor with each other:

* fills in stored order (the order the bot folded them in; venue time jitter kept);
* booked transfers of base merged in by booking time, a transfer before a fill of the same
  time (a fill's time is the venue's and reaches the bot after it happened);
* transfers of the quote asset are left out: they move no position.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal

from kasmm.core.pnl import PnlState, apply_fill, transfer
from kasmm.core.types import Fill
from kasmm.store.settlements import BookedTransfer

__all__ = ["accounting_events", "apply_event", "replay", "transfer_out", "transfer_value"]


def accounting_events(
    fills: Iterable[Fill], transfers: Sequence[BookedTransfer], quote_asset: str
) -> Iterator[Fill | BookedTransfer]:
    """``fills`` (stored order) with the transfers of base in ``transfers`` merged in by time.

    :param transfers: the profile's booked transfers, any order (sorted here by time; equal
        times keep their given order, the ledger's ``ts, sweep key, direction``).
    :param quote_asset: transfers of this asset are left out.
    """
    moves = sorted((t for t in transfers if t.asset != quote_asset), key=lambda t: t.ts)
    i = 0
    for fill in fills:
        while i < len(moves) and moves[i].ts <= fill.ts:
            yield moves[i]
            i += 1
        yield fill
    yield from moves[i:]


def transfer_out(booked: BookedTransfer) -> Decimal:
    """The amount a booked transfer took out of the account (negative: brought back)."""
    return booked.amount if booked.direction == "out" else -booked.amount


def transfer_value(booked: BookedTransfer, quote_asset: str) -> Decimal:
    """The value a booked transfer took out of the account, in quote at its mark (negative:
    brought back): what a bot's equity peak and day start forget."""
    value = booked.amount if booked.asset == quote_asset else booked.amount * booked.mark
    return value if booked.direction == "out" else -value


def apply_event(state: PnlState, event: Fill | BookedTransfer, quote_asset: str) -> PnlState:
    """``state`` after one event of :func:`accounting_events`."""
    if isinstance(event, BookedTransfer):
        return transfer(state, transfer_out(event), event.mark)
    return apply_fill(state, event, quote_asset)


def replay(
    opening: tuple[Decimal, Decimal] | None,
    fills: Iterable[Fill],
    transfers: Sequence[BookedTransfer],
    quote_asset: str,
) -> PnlState:
    """The PnL state after every fill and transfer, folded from ``opening`` (None: flat)."""
    state = PnlState() if opening is None else PnlState.opening(*opening)
    for event in accounting_events(fills, transfers, quote_asset):
        state = apply_event(state, event, quote_asset)
    return state
