"""The engine's inventory rebalance: sends the order :mod:`kasmm.core.rebalance` decides, keeps
one post-only order resting at a time, and reports what became of each.

Part of the engine (:class:`kasmm.bot.engine.Engine` owns one when the profile sets
``inventory.rebalance``, and calls :meth:`Rebalancer.act` at the end of each decision), and like
it synchronous and clock-free: ``now`` is the engine's interval clock, ``wall`` its calendar.

* Only while trading is ``active`` or ``reduce_only`` (a rebalance reduces the excess); a
  post-only order only while ``active``, the only state in which held orders rest (the engine
  hands them back to reconciliation otherwise).
* At most one order per ``min_interval_s``, whatever became of the last one.
* **Post-only**: a :class:`~kasmm.core.types.PlaceOrder` added to the round's actions, at
  :data:`REBALANCE_LEVEL`. :class:`~kasmm.bot.orders.OwnOrders` puts its client id in the
  engine's ``held`` (role :data:`~kasmm.core.held.REBALANCE`) as the venue accepts it, so
  reconciliation neither keeps nor cancels it and the quotes' budget leaves its balance alone.
  It is cancelled (``rebalance_stale``) once it is ``min_interval_s`` old or the share is back in
  its band, and repriced in the same round when the share is still out.
* **IOC**: a :class:`~kasmm.bot.commands.PlaceIoc` command both drivers send through the venue
  stack hedges use (the ledger row first, then the order; its answer comes back through
  :meth:`Rebalancer.answered`, its fills as any fill).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any, Final

from kasmm.bot.commands import Command, Log, PlaceIoc, RecordOrder
from kasmm.bot.orders import OwnOrders
from kasmm.core.held import REBALANCE
from kasmm.core.ids import ClientIdFactory
from kasmm.core.params import QuotingParams, RebalanceParams
from kasmm.core.quoting import MarketState, QuoteDecision
from kasmm.core.rebalance import Free, Rebalance, Touch, band_breach, rebalance_order
from kasmm.core.risk import TradingState
from kasmm.core.skew import inventory_at
from kasmm.core.types import (
    ZERO,
    CancelOrder,
    ClientOrderId,
    Fill,
    OpenOrder,
    OrderAction,
    OrderIntent,
    OrderRequest,
    PlaceOrder,
    Side,
)
from kasmm.errors import VenueError
from kasmm.store import OrderOpened
from kasmm.venues.base import IocOutcome

#: The level of a rebalance order (the intent, the open order, the ledger row). Quote levels
#: count from 0 up, so -1 is never one of them: a hanging-order rule pairing a filled quote
#: with the other side's order *at the same level* never pairs a rebalance order, and the
#: ledger tells rebalance orders from quotes.
REBALANCE_LEVEL: Final = -1
#: The cancel reason of a post-only rebalance order that is replaced or no longer needed.
STALE: Final = "rebalance_stale"
#: Order kinds, in the order the metric lists them.
KINDS: Final = ("post_only", "ioc")


@dataclass(frozen=True, slots=True)
class LastRebalance:
    """The latest rebalance order and what became of it."""

    #: wall time it was decided
    at: float
    side: Side
    price: Decimal
    size: Decimal
    order: str
    share: float
    reason: str
    #: ``sent`` (IOC in flight, post-only placement in flight), ``resting``, ``filled``,
    #: ``partial`` (IOC: part executed, the rest expired), ``expired`` (IOC: nothing executed),
    #: ``cancelled`` (post-only: taken off before it filled), ``rejected``, ``failed``
    status: str = "sent"
    #: base executed so far
    filled: Decimal = ZERO
    client_id: ClientOrderId | None = None


@dataclass(frozen=True, slots=True)
class RebalanceStatus:
    """What the view shows of the rebalance: orders sent by kind, and the latest."""

    orders: tuple[tuple[str, int], ...]
    last: LastRebalance | None


class Rebalancer:
    """One profile's rebalance orders (see the module docstring)."""

    def __init__(
        self,
        params: RebalanceParams,
        *,
        ids: ClientIdFactory,
        orders: OwnOrders,
        held: dict[ClientOrderId, str],
        outbox: list[Command],
        journaled: bool = True,
    ) -> None:
        """:param held: the engine's held orders (client id -> role), shared.
        :param outbox: the engine's outbox, shared (logs, the IOC's ledger row and command).
        :param journaled: order events go to the outbox for a ledger (a backtest: no)."""
        self.params = params
        self._ids = ids
        self._open = orders.open_orders
        self._held = held
        self._outbox = outbox
        self._journaled = journaled
        orders.hold_level(REBALANCE_LEVEL, REBALANCE, held)
        #: Interval-clock time of the last order sent (``None``: none yet).
        self.last_at: float | None = None
        #: Orders sent since this engine started, by kind.
        self.sent: dict[str, int] = dict.fromkeys(KINDS, 0)
        self.last: LastRebalance | None = None
        #: A post-only placement went out and its id is not known yet.
        self._pending = False
        #: The id of the post-only order adopted last (the one a new placement replaces may
        #: still be among the held ids until the engine forgets it).
        self._adopted: ClientOrderId | None = None
        #: Post-only orders accepted and not reported ended yet (a replaced one ends after its
        #: successor went out), by client id.
        self._tracked: dict[ClientOrderId, LastRebalance] = {}
        #: The IOC whose answer was lost: its fills, if any come, settle it.
        self._unanswered: ClientOrderId | None = None

    def _log(self, level: str, event: str, **fields: Any) -> None:
        self._outbox.append(Log(level, event, fields))

    def status(self) -> RebalanceStatus:
        """The view's part (a frozen copy)."""
        return RebalanceStatus(tuple((k, self.sent[k]) for k in KINDS), self.last)

    # --- events ---------------------------------------------------------------------------

    def on_fill(self, fill: Fill) -> None:
        """A stored fill: counted when it is a resting post-only rebalance order's (an IOC's
        total comes with its answer; its fills may come before or after it), or an IOC's whose
        answer was lost (then its fills are all there is to know of it)."""
        self._adopt()
        record = self._tracked.get(fill.client_id)
        if record is not None:
            self._update(replace(record, filled=record.filled + fill.size))
            return
        last = self.last
        if (
            last is not None
            and fill.client_id == self._unanswered
            and fill.client_id == last.client_id
        ):
            # An IOC whose answer was lost (a timeout) executed after all: its fills are the
            # venue's word on it, where no answer will come.
            filled = last.filled + fill.size
            self.last = replace(
                last, filled=filled, status="filled" if filled >= last.size else "partial"
            )

    def answered(
        self, request: OrderRequest, outcome: IocOutcome | None, error: VenueError | None
    ) -> None:
        """The venue's answer to a rebalance IOC (``error``: it failed; the engine's orders have
        recorded and counted either already)."""
        last = self.last
        if error is not None:
            self._log(
                "warning",
                "rebalance_failed",
                client_id=request.client_id,
                error=f"{type(error).__name__}: {error}",
            )
            if last is not None and last.client_id == request.client_id:
                self.last = replace(last, status="failed")
                self._unanswered = request.client_id
            return
        assert outcome is not None
        self._log(
            "info",
            "rebalance_done",
            client_id=request.client_id,
            order="ioc",
            status=outcome.status,
            filled=str(outcome.filled),
            average_price=None if outcome.average_price is None else str(outcome.average_price),
        )
        if last is not None and last.client_id == request.client_id:
            # The fills (events after the answer, or before it) are counted as they come; the
            # answer's total is the venue's word on the whole order.
            self.last = replace(last, status=outcome.status, filled=outcome.filled)

    # --- the decision ---------------------------------------------------------------------

    def act(
        self,
        now: float,
        wall: float,
        trading: TradingState,
        decision: QuoteDecision,
        quoting: QuotingParams,
        state: MarketState,
        actions: tuple[OrderAction, ...],
    ) -> tuple[OrderAction, ...]:
        """The round's ``actions`` with the rebalance's own: a stale post-only order's cancel,
        a new post-only placement; an IOC goes to the outbox instead.

        :param state: what the quotes were decided from (its book: the others' liquidity).
        """
        self._adopt()
        if self._pending:  # never accepted (a post-only cross, funds, an error)
            self._pending = False
            self._set_status("rejected")
        self._note_end()
        if trading is not TradingState.ACTIVE and trading is not TradingState.REDUCE_ONLY:
            return actions
        mid = decision.reference_mid if decision.reference_mid is not None else decision.mid
        if mid is None or not mid.is_finite() or mid <= ZERO:
            return actions
        rules = state.rules
        inv = inventory_at(quoting, state.balances, rules, mid)
        params = self.params
        extra: list[OrderAction] = []
        keep = False
        for resting in self._resting():
            fresh = now - resting.created_at < params.min_interval_s
            if fresh and not keep and band_breach(inv.share, quoting) is resting.side:
                keep = True  # one at a time: it works until it is stale
            else:
                extra.append(CancelOrder(resting.client_id, STALE))
        if keep:
            return actions + tuple(extra) if extra else actions
        post_only = params.order == "post_only"
        if post_only and trading is not TradingState.ACTIVE:
            return actions + tuple(extra) if extra else actions
        cancelling = {a.client_id for a in (*actions, *extra) if isinstance(a, CancelOrder)}
        placing = [a.intent for a in actions if isinstance(a, PlaceOrder)] if post_only else []
        # An IOC goes out before the round's actions: every open order still rests then.
        staying = [o for o in self._open.values() if o.client_id not in cancelling or not post_only]
        touch = Touch(state.book.best_bid, state.book.best_ask)
        own, free = _own_and_free(staying, placing, inv.base, inv.quote)
        decided = rebalance_order(
            params, quoting, inv, mid, touch, own, rules, free, now, self.last_at
        )
        order = decided.order
        if order is not None:
            self._send(order, now, wall, extra)
        return actions + tuple(extra) if extra else actions

    def _send(self, order: Rebalance, now: float, wall: float, extra: list[OrderAction]) -> None:
        self.last_at = now
        self.sent[order.order] += 1
        client_id: ClientOrderId | None = None
        if order.order == "post_only":
            extra.append(
                PlaceOrder(OrderIntent(order.side, order.price, order.size, REBALANCE_LEVEL))
            )
            self._pending = True
        else:
            request = OrderRequest.ioc(self._ids.next(), order.side, order.price, order.size)
            client_id = request.client_id
            if self._journaled:  # its row first: the driver stores it before the order goes out
                self._outbox.append(
                    RecordOrder(
                        OrderOpened(
                            client_id, order.side, order.price, order.size, wall, "new",
                            REBALANCE_LEVEL,
                        )
                    )
                )  # fmt: skip
            self._outbox.append(PlaceIoc(request))
        self.last = LastRebalance(
            wall,
            order.side,
            order.price,
            order.size,
            order.order,
            order.share,
            order.reason,
            client_id=client_id,
        )
        self._log(
            "info",
            "rebalance_order",
            side=order.side.value,
            size=str(order.size),
            price=str(order.price),
            order=order.order,
            share=round(order.share, 6),
            reason=order.reason,
            client_id=client_id,
        )

    # --- the post-only order's life -------------------------------------------------------

    def _resting(self) -> list[OpenOrder]:
        """The held post-only rebalance orders still open (one, but for a replaced order whose
        cancel failed)."""
        return [
            order
            for cid, role in self._held.items()
            if role == REBALANCE and (order := self._open.get(cid)) is not None
        ]

    def _adopt(self) -> None:
        """Learn the id of the post-only order placed last, once the venue accepted it."""
        if not self._pending:
            return
        for cid, role in self._held.items():
            if role == REBALANCE and cid != self._adopted:
                self._pending = False
                self._adopted = cid
                last = self.last
                if last is not None:
                    self.last = record = replace(last, client_id=cid, status="resting")
                    self._tracked[cid] = record
                return

    def _note_end(self) -> None:
        """Report each post-only order that is no longer open (filled, or taken off)."""
        if not self._tracked:
            return
        for cid, record in list(self._tracked.items()):
            if cid in self._open:
                continue
            del self._tracked[cid]
            status = "filled" if record.filled >= record.size else "cancelled"
            if self.last is not None and self.last.client_id == cid:
                self.last = replace(record, status=status)
            self._log(
                "info",
                "rebalance_done",
                client_id=cid,
                order="post_only",
                status=status,
                filled=str(record.filled),
                average_price=str(record.price) if record.filled > ZERO else None,
            )

    def _update(self, record: LastRebalance) -> None:
        """A tracked order's new record (also the latest's, when it is the latest)."""
        cid = record.client_id
        assert cid is not None
        self._tracked[cid] = record
        if self.last is not None and self.last.client_id == cid:
            self.last = record

    def _set_status(self, status: str) -> None:
        last = self.last
        if last is not None:
            self.last = replace(last, status=status)


def _own_and_free(
    staying: list[OpenOrder], placing: list[OrderIntent], base: Decimal, quote: Decimal
) -> tuple[Touch, Free]:
    """The own best bid and ask, and the balance left free, once ``staying`` rest and
    ``placing`` are placed."""
    bid: Decimal | None = None
    ask: Decimal | None = None
    free_base, free_quote = base, quote
    for side, price, size in [(o.side, o.price, o.remaining) for o in staying] + [
        (i.side, i.price, i.size) for i in placing
    ]:
        if side is Side.BUY:
            bid = price if bid is None or price > bid else bid
            free_quote -= price * size
        else:
            ask = price if ask is None or price < ask else ask
            free_base -= size
    return Touch(bid, ask), Free(max(free_base, ZERO), max(free_quote, ZERO))
