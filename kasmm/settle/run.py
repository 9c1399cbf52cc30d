"""What one settlement run of an account found and did, and the small pieces the service uses.

Values only (and one adapter): :class:`AccountRun` is what ``kasmm settle`` prints and the
supervisor's scheduled settlement reports; :func:`day_start` is where "today" begins for the day
limits; :class:`LazyNode` connects to the Kaspa node only when a sweep needs confirming.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from zoneinfo import ZoneInfo

from kasmm.core.settlement import SettlementPlan
from kasmm.settle.node import KaspaNode, NodeStatus, Receipt
from kasmm.store.settlements import SweepRecord

__all__ = [
    "AccountRun",
    "LazyNode",
    "TopUpNotice",
    "day_start",
    "settle_lock_path",
]


@dataclass(frozen=True, slots=True)
class TopUpNotice:
    """An operator should send ``amount`` of ``asset`` to ``address`` (``None``: it could not
    be read; ``error`` says why)."""

    asset: str
    amount: Decimal
    reason: str
    address: str | None
    error: str | None = None


@dataclass(frozen=True, slots=True)
class AccountRun:
    """What one run found and did for one account."""

    account: str
    exchange: str
    executed: bool
    #: ``None`` when the exchange could not be read (nothing was decided)
    plan: SettlementPlan | None
    #: one :func:`~kasmm.core.settlement.describe` line per banded asset
    lines: tuple[str, ...]
    #: sweeps this run requested, as the executor left them
    requested: tuple[SweepRecord, ...]
    #: open sweeps of earlier runs, after this run's pass over them
    advanced: tuple[SweepRecord, ...]
    top_ups: tuple[TopUpNotice, ...]
    #: why something could not be done (one line each, no secrets)
    problems: tuple[str, ...]
    #: another process is settling the account (nothing was done)
    busy: bool = False

    @property
    def failed(self) -> tuple[SweepRecord, ...]:
        """The sweeps of this run that ended failed (refused, or found failed)."""
        return tuple(r for r in (*self.advanced, *self.requested) if r.state == "failed")

    @property
    def open(self) -> tuple[SweepRecord, ...]:
        """The sweeps of this run still on their way."""
        return tuple(r for r in (*self.advanced, *self.requested) if r.is_open)


def day_start(wall: float, timezone: str) -> float:
    """Wall time of the last local midnight in ``timezone``: where "today's" sweeps begin."""
    zone = ZoneInfo(timezone)
    local = datetime.fromtimestamp(wall, zone)
    return local.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()


def settle_lock_path(locks: Path, account: str) -> Path:
    """The lock file of settling ``account`` (account names are safe file names)."""
    return locks / f"settle-{account}.lock"


class LazyNode:
    """A :class:`KaspaNode` connected on the first question, so a run that confirms nothing
    never needs the node (and a node that is down only delays confirmations)."""

    def __init__(
        self, factory: Callable[[], contextlib.AbstractAsyncContextManager[KaspaNode]]
    ) -> None:
        self._factory = factory
        self._stack = contextlib.AsyncExitStack()
        self._node: KaspaNode | None = None

    async def _get(self) -> KaspaNode:
        if self._node is None:
            self._node = await self._stack.enter_async_context(self._factory())
        return self._node

    async def status(self) -> NodeStatus:
        return await (await self._get()).status()

    async def virtual_daa_score(self) -> int:
        return await (await self._get()).virtual_daa_score()

    async def receipts(self, address: str) -> tuple[Receipt, ...]:
        return await (await self._get()).receipts(address)

    async def aclose(self) -> None:
        await self._stack.aclose()
