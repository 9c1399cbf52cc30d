"""The engine's after-quoting stages (issue 19): the price band, the fill cooldown, ping-pong and
hanging orders, with the state they keep between decisions.

:func:`~kasmm.core.quoting.compute_quotes` prices a decision from the market alone. These stages
also read what this run did (its fills) and what the market did over time (the slow average mid
of a moving band), so the engine owns one :class:`Shaping` and calls it at four points:

* :meth:`on_mid`, on each usable book: the moving band's average;
* :meth:`on_fill`, on each of this run's fills, with the order as it was *before* the fill (a
  full fill removes it from the open orders): the cooldown's and ping-pong's memory, and the
  filled pair's other order marked hanging in the engine's ``held``;
* :meth:`shape`, on each decision after ``compute_quotes`` and before the risk gate: the band,
  then the cooldown, then ping-pong (the last gate that empties a side names the reason);
* :meth:`cancel_moved`, after reconciliation while orders are held: a cancel for each hanging
  order the mid moved ``cancel_pct`` away from (reconciliation never touches held orders, so
  nothing else would).

The pure rules are in :mod:`kasmm.core.band`, :mod:`kasmm.core.after_fill` and
:mod:`kasmm.core.hanging`. Only this run's orders are remembered or hung: a restart cancels the
previous run's orders at start-up (:meth:`kasmm.bot.driver.Bot._startup_reconcile`), hanging
ones included.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from kasmm.core import after_fill, band, hanging
from kasmm.core.after_fill import NO_FILLS, FillMemory
from kasmm.core.band import Band, SlowMid
from kasmm.core.held import HANGING, REBALANCE
from kasmm.core.params import AfterFillParams, PriceBandParams
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import CancelOrder, ClientOrderId, Fill, OpenOrder, Side

#: The reason of a hanging order's cancel.
HANGING_MOVED = "hanging_moved"


@dataclass(frozen=True, slots=True)
class ShapingStatus:
    """What an operator sees of the after-quoting stages (:attr:`BotView.shaping`)."""

    #: hanging orders resting now
    hanging: int
    #: seconds before each side may be quoted again after its last fill (0: now)
    bid_cooldown_s: float
    ask_cooldown_s: float
    #: first fills of buy orders minus those of sell orders (ping-pong; 0 when off)
    ping_pong_balance: int
    #: the price band in force (``None``: none, or a moving band without an average yet)
    band_floor: Decimal | None
    band_ceiling: Decimal | None


class Shaping:
    """The band, cooldown, ping-pong and hanging state of one engine (see the module)."""

    def __init__(
        self,
        band_params: PriceBandParams | None,
        after: AfterFillParams,
        held: dict[ClientOrderId, str],
        open_orders: dict[ClientOrderId, OpenOrder],
        log: Callable[..., None],
    ) -> None:
        """:param held: the engine's held orders (hanging ones are added here).
        :param open_orders: the engine's open orders (read only).
        :param log: the engine's ``_log(level, event, **fields)``."""
        self.band_params = band_params
        self.after = after
        self._held = held
        self._open = open_orders
        self._log = log
        self._delay_s = after.filled_order_delay_s
        #: whether fills are remembered (a cooldown or ping-pong is on)
        self._remembers = self._delay_s > 0.0 or after.ping_pong
        #: the moving band's average is fed (:meth:`on_mid`)
        self.averaging = band_params is not None and band_params.band_pct is not None
        #: any stage changes decisions (the engine skips :meth:`shape` otherwise)
        self.active = band_params is not None or self._remembers
        self.slow_mid: SlowMid | None = None
        self.fills: FillMemory = NO_FILLS

    @property
    def enabled(self) -> bool:
        """Any of the settings is on (what the view and the metrics show)."""
        return self.active or self.after.hanging

    def on_mid(self, mid: float, now: float) -> None:
        """A usable book's mid at interval time ``now`` (only called while :attr:`averaging`)."""
        params = self.band_params
        assert params is not None
        self.slow_mid = band.update(self.slow_mid, mid, now, params.halflife_s)

    def band(self) -> Band | None:
        """The band in force now."""
        params = self.band_params
        return None if params is None else band.band_of(params, self.slow_mid)

    def on_fill(self, fill: Fill, order: OpenOrder | None, now: float) -> None:
        """One of this run's fills; ``order``: its open order before the fill (``None``: not
        open, as an immediate-or-cancel order's: it neither counts nor pairs).

        A rebalance order's fill is an inventory move, not a quote's: it neither counts nor
        pairs either.
        """
        if order is None:
            return
        role = self._held.get(fill.client_id)
        if role == REBALANCE:
            return
        if self._remembers:
            self.fills = after_fill.remember(
                self.fills,
                fill.side,
                fill.client_id,
                now,
                done=fill.remaining <= 0,
                still_open=self._open,
            )
        if self.after.hanging:
            pair = hanging.pair_of(order, self._open.values(), self._held)
            if pair is not None:
                self._held[pair.client_id] = HANGING
                self._log(
                    "info",
                    "order_hanging",
                    client_id=pair.client_id,
                    side=pair.side.value,
                    price=str(pair.price),
                    quote_level=pair.level,
                    filled=fill.client_id,
                )

    def shape(self, decision: QuoteDecision, now: float) -> QuoteDecision:
        """``decision`` through the band, the cooldown and ping-pong (only called while
        :attr:`active`)."""
        if self.band_params is not None:
            decision = band.apply_band(decision, self.band())
        if self._delay_s > 0.0:
            decision = after_fill.apply_cooldown(decision, self.fills, self._delay_s, now)
        if self.after.ping_pong:
            decision = after_fill.apply_ping_pong(decision, self.fills.balance)
        return decision

    def cancel_moved(self, decision: QuoteDecision) -> tuple[CancelOrder, ...]:
        """Cancels for the hanging orders the pricing mid moved ``cancel_pct`` away from.

        Re-issued on each decision while the order stays open (as reconciliation re-issues a
        cancel that failed); the ids leave ``held`` once the orders close.
        """
        if not self.after.hanging:
            return ()
        open_orders = self._open
        orders = [
            open_orders[cid]
            for cid, role in self._held.items()
            if role == HANGING and cid in open_orders
        ]
        if not orders:
            return ()
        mid = band.pricing_mid(decision)
        cancels = hanging.to_cancel(orders, mid, self.after.hanging_cancel_pct)
        for cid in cancels:
            order = open_orders[cid]
            self._log(
                "info",
                "hanging_cancelled",
                client_id=cid,
                side=order.side.value,
                price=str(order.price),
                mid=str(mid),
                cancel_pct=self.after.hanging_cancel_pct,
            )
        return tuple(CancelOrder(cid, HANGING_MOVED) for cid in cancels)

    def status(self, now: float) -> ShapingStatus | None:
        """What the view shows (``None``: every setting is off)."""
        if not self.enabled:
            return None
        current = self.band()
        return ShapingStatus(
            hanging=sum(
                1 for cid, role in self._held.items() if role == HANGING and cid in self._open
            ),
            bid_cooldown_s=after_fill.cooldown_left(self.fills, Side.BUY, self._delay_s, now),
            ask_cooldown_s=after_fill.cooldown_left(self.fills, Side.SELL, self._delay_s, now),
            ping_pong_balance=self.fills.balance if self.after.ping_pong else 0,
            band_floor=None if current is None else current.floor,
            band_ceiling=None if current is None else current.ceiling,
        )
