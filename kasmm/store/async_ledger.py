"""The ledger for async code: every call runs in a worker thread, one call at a time.

SQLite calls block (disk writes, a busy wait on another process's lock), so none of them may run
on the event loop. Each method here hands its :class:`~kasmm.store.ledger.Ledger` call to
``anyio.to_thread.run_sync`` through a ``CapacityLimiter(1)``: the connection (opened with
``check_same_thread=False``) is used by one thread at a time, and waiting callers queue in the
limiter instead of occupying worker threads.

Cancellation: a call that has started in its thread runs to completion (``run_sync`` does not
abandon it), so a cancelled ``record_fill`` may still have been stored; the ledger stays
consistent, and on restart :meth:`~kasmm.store.ledger.Ledger.pnl_state` includes it.

A lost ledger (:class:`~kasmm.errors.LedgerLost`) raises out of every call unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from decimal import Decimal
from functools import partial
from types import TracebackType
from typing import TypeVar

import anyio
import anyio.to_thread

from kasmm.core.pnl import PnlState
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId, VenueOrderId
from kasmm.store.group_transfers import GroupTransfer, count_group_transfers, group_transfers
from kasmm.store.hedges import HedgedFill, OpenExposure
from kasmm.store.kpis import KpiRecord
from kasmm.store.ledger import Ledger, OrderJournalEntry
from kasmm.store.records import EquitySnapshot, HaltRecord, ModeChange, OrderEvent, RiskEvent
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlement_view import SettlementOverview, read_overview
from kasmm.store.settlements import BookedTransfer, SweepRecord, TransferDirection

T = TypeVar("T")


class AsyncLedger:
    """Async wrappers of a :class:`Ledger`, with the same method names and arguments."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger
        self._limiter = anyio.CapacityLimiter(1)

    async def _run(self, call: Callable[[], T]) -> T:
        return await anyio.to_thread.run_sync(call, limiter=self._limiter)

    async def check(self) -> None:
        """See :meth:`Ledger.check`: raise :class:`~kasmm.errors.LedgerLost` if the ledger's
        files were deleted or replaced. Runs beside a call in progress (outside the limiter),
        so a write waiting for another process's lock does not delay it.
        """
        await anyio.to_thread.run_sync(self.ledger.check)

    async def close(self) -> None:
        """Close the underlying ledger (after any call in progress)."""
        await self._run(self.ledger.close)

    async def __aenter__(self) -> AsyncLedger:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # --- orders ---------------------------------------------------------------------------

    async def record_order(
        self,
        profile: str,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        ts: float,
        level: int = 0,
    ) -> None:
        """See :meth:`Ledger.record_order`."""
        await self._run(
            partial(self.ledger.record_order, profile, client_id, side, price, size, ts, level)
        )

    async def day_start_equity(self, profile: str, tz: str, now: float) -> Decimal | None:
        """See :meth:`Ledger.day_start_equity`."""
        return await self._run(partial(self.ledger.day_start_equity, profile, tz, now))

    async def day_start(self, profile: str, tz: str, now: float) -> tuple[float, Decimal] | None:
        """See :meth:`Ledger.day_start`."""
        return await self._run(partial(self.ledger.day_start, profile, tz, now))

    async def record_balance_drift(
        self, profile: str, ts: float, asset: str, local: Decimal, venue: Decimal
    ) -> None:
        """See :meth:`Ledger.record_balance_drift`."""
        await self._run(partial(self.ledger.record_balance_drift, profile, ts, asset, local, venue))

    async def journal_orders(self, profile: str, entries: Sequence[OrderJournalEntry]) -> int:
        """See :meth:`Ledger.journal_orders`."""
        return await self._run(partial(self.ledger.journal_orders, profile, list(entries)))

    async def record_order_status(
        self,
        profile: str,
        client_id: ClientOrderId,
        status: str,
        ts: float,
        venue_id: VenueOrderId | None = None,
        reason: str | None = None,
    ) -> None:
        """See :meth:`Ledger.record_order_status`."""
        await self._run(
            partial(
                self.ledger.record_order_status, profile, client_id, status, ts, venue_id, reason
            )
        )

    async def open_orders(self, profile: str) -> list[ClientOrderId]:
        """See :meth:`Ledger.open_orders`."""
        return await self._run(partial(self.ledger.open_orders, profile))

    async def order_history(self, profile: str, client_id: ClientOrderId) -> list[OrderEvent]:
        """See :meth:`Ledger.order_history`."""
        return await self._run(partial(self.ledger.order_history, profile, client_id))

    # --- fills and accounting -------------------------------------------------------------

    async def record_fill(self, profile: str, fill: Fill) -> bool:
        """See :meth:`Ledger.record_fill`: True once per trade id, committed when it returns."""
        return await self._run(partial(self.ledger.record_fill, profile, fill))

    async def fills(self, profile: str, since: float | None = None) -> list[Fill]:
        """See :meth:`Ledger.fills`."""
        return await self._run(partial(self.ledger.fills, profile, since))

    async def set_opening(self, profile: str, position: Decimal, mark: Decimal, ts: float) -> bool:
        """See :meth:`Ledger.set_opening`."""
        return await self._run(partial(self.ledger.set_opening, profile, position, mark, ts))

    async def opening(self, profile: str) -> tuple[Decimal, Decimal] | None:
        """See :meth:`Ledger.opening`."""
        return await self._run(partial(self.ledger.opening, profile))

    async def pnl_state(
        self, profile: str, quote_asset: str, opening: tuple[Decimal, Decimal] | None
    ) -> PnlState:
        """See :meth:`Ledger.pnl_state`."""
        return await self._run(partial(self.ledger.pnl_state, profile, quote_asset, opening))

    # --- equity ---------------------------------------------------------------------------

    async def record_equity(
        self,
        profile: str,
        ts: float,
        equity: Decimal,
        mid: Decimal,
        base: Decimal,
        quote: Decimal,
    ) -> None:
        """See :meth:`Ledger.record_equity`."""
        await self._run(partial(self.ledger.record_equity, profile, ts, equity, mid, base, quote))

    async def peak_equity(self, profile: str) -> Decimal | None:
        """See :meth:`Ledger.peak_equity`."""
        return await self._run(partial(self.ledger.peak_equity, profile))

    async def equity_series(self, profile: str, since: float | None = None) -> list[EquitySnapshot]:
        """See :meth:`Ledger.equity_series`."""
        return await self._run(partial(self.ledger.equity_series, profile, since))

    async def daily_pnl(self, profile: str, tz: str, now: float, mark: Decimal) -> Decimal:
        """See :meth:`Ledger.daily_pnl`."""
        return await self._run(partial(self.ledger.daily_pnl, profile, tz, now, mark))

    async def record_kpis(self, profile: str, record: KpiRecord) -> None:
        """See :meth:`Ledger.record_kpis`."""
        await self._run(partial(self.ledger.record_kpis, profile, record))

    # --- hedging --------------------------------------------------------------------------

    async def recover_hedges(
        self, profile: str, hedge_profile: str, ts: float
    ) -> list[OpenExposure]:
        """See :meth:`Ledger.recover_hedges`."""
        return await self._run(partial(self.ledger.recover_hedges, profile, hedge_profile, ts))

    async def register_exposure(
        self,
        profile: str,
        hedge_profile: str,
        trade_id: TradeId,
        side: Side,
        size: Decimal,
        ts: float,
    ) -> bool:
        """See :meth:`Ledger.register_exposure`."""
        return await self._run(
            partial(self.ledger.register_exposure, profile, hedge_profile, trade_id, side, size, ts)
        )

    async def record_hedge_order(
        self,
        hedge_profile: str,
        client_id: ClientOrderId,
        side: Side,
        price: Decimal,
        size: Decimal,
        ts: float,
        profile: str,
        covers: Sequence[tuple[TradeId, Decimal]],
        mid: Decimal | None = None,
    ) -> None:
        """See :meth:`Ledger.record_hedge_order`."""
        await self._run(
            partial(
                self.ledger.record_hedge_order,
                hedge_profile,
                client_id,
                side,
                price,
                size,
                ts,
                profile,
                list(covers),
                mid,
            )
        )

    async def settle_hedge_order(
        self,
        hedge_profile: str,
        client_id: ClientOrderId,
        profile: str,
        parts: Sequence[tuple[TradeId, Decimal]],
        residuals: Sequence[tuple[TradeId, Decimal]],
        ts: float,
    ) -> None:
        """See :meth:`Ledger.settle_hedge_order`."""
        await self._run(
            partial(
                self.ledger.settle_hedge_order,
                hedge_profile,
                client_id,
                profile,
                list(parts),
                list(residuals),
                ts,
            )
        )

    async def update_hedge_residuals(
        self, profile: str, residuals: Sequence[tuple[TradeId, Decimal]], ts: float
    ) -> None:
        """See :meth:`Ledger.update_hedge_residuals`."""
        await self._run(partial(self.ledger.update_hedge_residuals, profile, list(residuals), ts))

    async def hedged_fills(self, profile: str) -> list[HedgedFill]:
        """See :meth:`Ledger.hedged_fills`."""
        return await self._run(partial(self.ledger.hedged_fills, profile))

    # --- modes and risk -------------------------------------------------------------------

    async def record_mode(self, profile: str, ts: float, mode: str, source: str) -> None:
        """See :meth:`Ledger.record_mode`."""
        await self._run(partial(self.ledger.record_mode, profile, ts, mode, source))

    async def record_operator_action(
        self,
        ts: float,
        operator: str,
        action: str,
        profile: str | None,
        details: Mapping[str, object],
    ) -> None:
        """See :meth:`Ledger.record_operator_action`."""
        await self._run(
            partial(self.ledger.record_operator_action, ts, operator, action, profile, details)
        )

    async def mode_changes(self, profile: str) -> list[ModeChange]:
        """See :meth:`Ledger.mode_changes`."""
        return await self._run(partial(self.ledger.mode_changes, profile))

    async def record_risk_event(
        self,
        profile: str,
        ts: float,
        kind: str,
        rule: str,
        action: str,
        state: str,
        details: Mapping[str, object],
    ) -> None:
        """See :meth:`Ledger.record_risk_event`."""
        await self._run(
            partial(self.ledger.record_risk_event, profile, ts, kind, rule, action, state, details)
        )

    async def active_halt(self, profile: str) -> HaltRecord | None:
        """See :meth:`Ledger.active_halt`."""
        return await self._run(partial(self.ledger.active_halt, profile))

    async def reset(self, profile: str, ts: float, operator: str) -> bool:
        """See :meth:`Ledger.reset`."""
        return await self._run(partial(self.ledger.reset, profile, ts, operator))

    async def risk_events(self, profile: str) -> list[RiskEvent]:
        """See :meth:`Ledger.risk_events`."""
        return await self._run(partial(self.ledger.risk_events, profile))

    async def profiles(self) -> list[str]:
        """See :meth:`Ledger.profiles`."""
        return await self._run(self.ledger.profiles)

    async def portfolios(self) -> list[str]:
        """See :meth:`Ledger.portfolios`."""
        return await self._run(self.ledger.portfolios)

    # --- simulated accounts ---------------------------------------------------------------

    async def record_opening_balances(
        self, profile: str, balances: Mapping[str, Decimal], ts: float
    ) -> bool:
        """See :meth:`Ledger.record_opening_balances`."""
        return await self._run(
            partial(self.ledger.record_opening_balances, profile, dict(balances), ts)
        )

    async def implied_balances(
        self, profile: str, base: str, quote: str
    ) -> dict[str, Decimal] | None:
        """See :meth:`Ledger.implied_balances`."""
        return await self._run(partial(self.ledger.implied_balances, profile, base, quote))

    # --- settlements (kasmm.store.settlement_book) ------------------------------------------

    async def sweeps(self, account: str, since: float | None = None) -> list[SweepRecord]:
        """See :meth:`SettlementBook.sweeps`: ``account``'s sweeps requested since ``since``."""
        return await self._run(partial(SettlementBook(self.ledger).sweeps, account, since=since))

    async def book_transfer(
        self,
        profile: str,
        key: str,
        direction: TransferDirection,
        asset: str,
        amount: Decimal,
        mark: Decimal,
        ts: float,
        value: Decimal | None = None,
    ) -> bool:
        """See :meth:`SettlementBook.book_transfer`."""
        book = SettlementBook(self.ledger)
        return await self._run(
            partial(book.book_transfer, profile, key, direction, asset, amount, mark, ts, value)
        )

    async def booked_transfers(self, profile: str) -> list[BookedTransfer]:
        """See :meth:`SettlementBook.booked_transfers`."""
        return await self._run(partial(SettlementBook(self.ledger).booked_transfers, profile))

    async def count_group_transfers(
        self, portfolio: str, items: Sequence[GroupTransfer], *, after_peak_only: bool = False
    ) -> list[GroupTransfer]:
        """See :func:`kasmm.store.group_transfers.count_group_transfers`."""
        return await self._run(
            partial(
                count_group_transfers,
                self.ledger,
                portfolio,
                items,
                after_peak_only=after_peak_only,
            )
        )

    async def group_transfers(self, portfolio: str) -> list[GroupTransfer]:
        """See :func:`kasmm.store.group_transfers.group_transfers`."""
        return await self._run(partial(group_transfers, self.ledger, portfolio))

    async def opened_at(self, profile: str) -> float | None:
        """See :meth:`SettlementBook.opened_at`."""
        return await self._run(partial(SettlementBook(self.ledger).opened_at, profile))

    async def settlement_overview(self, since: float | None = None) -> SettlementOverview:
        """See :func:`kasmm.store.settlement_view.read_overview`."""
        return await self._run(partial(read_overview, self.ledger, since=since))
