"""The limits checked once more at the last moment: a desk that refuses what the plan forbids.

:func:`kasmm.core.settlement.plan_settlement` never sizes a sweep beyond the band's limits, and
the service only hands the executor what the plan decided. This desk checks again, inside
``withdraw`` itself (after the sweep is recorded, right before the request goes out), against
the configured band and the ledger's sweeps of the day: a bug upstream, a second writer of the
ledger, or a plan made from stale numbers is refused here with :class:`WithdrawalRefused`
(nothing went out; the executor records the sweep as failed) instead of moving money. Defence
in depth: if this ever refuses, something before it is wrong, so it logs an error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from decimal import Decimal
from functools import partial

import anyio
import anyio.to_thread
import structlog

from kasmm.core.settlement import AssetBand, WithdrawTerms
from kasmm.core.types import Balances
from kasmm.settle.desk import Withdrawal, WithdrawalDesk, WithdrawalRefused
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord

log = structlog.get_logger("kasmm.settle")

__all__ = ["LimitGuardDesk", "limit_violation"]


def limit_violation(
    band: AssetBand | None,
    amount: Decimal,
    swept_before: Decimal,
) -> str | None:
    """Why a withdrawal of ``amount`` breaks the band's limits, or ``None``.

    :param swept_before: what the account's other sweeps of the asset (not failed) took since
        the day began.
    """
    if band is None:
        return "the asset has no band in the settlement file"
    if not band.sweepable:
        return "the destination cannot receive this asset"
    if not amount.is_finite() or amount <= 0:
        return "the amount is not positive"
    if band.keep_at_most is None:
        return "the asset has no keep_at_most: it is never swept"
    if amount < band.min_sweep:
        return f"the amount is below min_sweep {band.min_sweep}"
    if band.max_sweep is not None and amount > band.max_sweep:
        return f"the amount is above max_sweep {band.max_sweep}"
    if band.max_per_day is not None and swept_before + amount > band.max_per_day:
        return f"today's sweeps would exceed max_per_day {band.max_per_day}"
    return None


def _is_this_request(
    record: SweepRecord, amount: Decimal, address: str, client_id: str | None
) -> bool:
    """Whether ``record`` is the sweep being requested now (recorded just before)."""
    if record.state != "requested" or record.withdrawal_id is not None:
        return False
    if client_id is not None:
        return record.client_id == client_id
    return record.amount == amount and record.address == address


class LimitGuardDesk:
    """``desk`` with :func:`limit_violation` checked inside :meth:`withdraw`.

    :param bands: asset -> the account's configured band (the plan's own).
    :param day_start: wall time the day limits count from (local midnight of the schedule's
        time zone).
    """

    def __init__(
        self,
        desk: WithdrawalDesk,
        *,
        account: str,
        bands: Mapping[str, AssetBand],
        book: SettlementBook,
        day_start: float,
    ) -> None:
        self._desk = desk
        self._account = account
        self._bands = dict(bands)
        self._book = book
        self._day_start = day_start

    @property
    def exchange(self) -> str:
        """The wrapped desk's exchange."""
        return self._desk.exchange

    @property
    def takes_client_id(self) -> bool:
        """Whether the wrapped desk sends a client id."""
        return self._desk.takes_client_id

    async def balances(self) -> Balances:
        """The wrapped desk's balances."""
        return await self._desk.balances()

    async def mids(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        """The wrapped desk's mids."""
        return await self._desk.mids(symbols)

    async def terms(self, asset: str) -> WithdrawTerms | None:
        """The wrapped desk's withdrawal terms."""
        return await self._desk.terms(asset)

    async def withdraw(
        self, asset: str, amount: Decimal, address: str, client_id: str | None
    ) -> str:
        """Refuse a withdrawal beyond the limits; otherwise request it.

        :raises WithdrawalRefused: ``invalid_request`` when a limit is broken (nothing sent).
        """
        # In a worker thread: SQLite may wait for another process's lock.
        today = await anyio.to_thread.run_sync(
            partial(self._book.sweeps, self._account, since=self._day_start)
        )
        skipped = False
        before = Decimal(0)
        for record in today:
            if record.asset != asset or record.state == "failed":
                continue
            if not skipped and _is_this_request(record, amount, address, client_id):
                skipped = True
                continue
            before += record.amount
        problem = limit_violation(self._bands.get(asset), amount, before)
        if problem is not None:
            log.error(
                "settlement_limit_refused",
                account=self._account,
                asset=asset,
                amount=str(amount),
                swept_today=str(before),
                reason=problem,
            )
            raise WithdrawalRefused("invalid_request", f"kasmm refused the sweep: {problem}")
        return await self._desk.withdraw(asset, amount, address, client_id)

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Withdrawal]:
        """The wrapped desk's withdrawal list."""
        return await self._desk.withdrawals(asset, since_ms)

    async def deposit_address(self, asset: str) -> str:
        """The wrapped desk's deposit address."""
        return await self._desk.deposit_address(asset)

    async def close(self) -> None:
        """Close the wrapped desk."""
        await self._desk.close()
