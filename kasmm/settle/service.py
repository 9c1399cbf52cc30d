"""One settlement of one exchange account: read, plan, and (when asked) execute.

``kasmm settle`` and the supervisor's scheduled settlement both run this, so a sweep is
decided and requested the same way whoever starts it. One :meth:`SettlementService.run`:

1. takes the account's lock ``state/locks/settle-ACCOUNT.lock`` (executing only: a plan moves
   nothing), so two processes never settle one account at once;
2. executing, first resumes what an earlier run left open (``advance_open``: look each open
   sweep up, move it on or fail it; never request it again);
3. reads the balances, the mids of the members' symbols and the withdrawal terms from the
   exchange, and from the ledger what was swept since local midnight (the schedule's time
   zone, UTC without one) and which sweeps are still open;
4. plans (:func:`~kasmm.core.settlement.plan_settlement`: the rules live there), with the
   caller's gates (halted profiles, stale feeds) and the ledger's pending sweeps;
5. reads the exchange's deposit address for each KAS top-up (kasmm never signs: an operator
   sends from the wallet; other assets are deposited on the exchange);
6. executing, hands each planned sweep to the executor, through a desk that checks the limits
   once more inside ``withdraw`` (:class:`~kasmm.settle.guard.LimitGuardDesk`).

Everything is injected: the desk and node factories (ccxt and the SDK in production, test
doubles in unit tests), the executor factory, the ledger's book and the wall clock.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Protocol
from zoneinfo import ZoneInfo

import structlog

from kasmm.config.schema import Profile
from kasmm.config.settlement import NATIVE_ASSET, AccountSettlement, SettlementFile, to_band
from kasmm.config.settlement_inputs import plan_inputs
from kasmm.core.settlement import Gates, SettlementPlan, Sweep, WithdrawTerms, describe
from kasmm.core.settlement import plan_settlement as make_plan
from kasmm.settle.desk import DeskError, DeskUnavailable, WithdrawalDesk
from kasmm.settle.executor import SettleError
from kasmm.settle.guard import LimitGuardDesk
from kasmm.settle.node import KaspaNode, NodeStatus, Receipt
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import OPEN_STATES, SweepRecord
from kasmm.store.state_dir import LockBusy, LockFile

log = structlog.get_logger("kasmm.settle")

__all__ = [
    "AccountRun",
    "DeskFactory",
    "NodeFactory",
    "SettlementService",
    "SettlerFactory",
    "SweepExecutor",
    "TopUpNotice",
    "day_start",
    "settle_lock_path",
]


class SweepExecutor(Protocol):
    """What the service asks of the executor (:class:`kasmm.settle.executor.Settler`)."""

    async def sweep(self, asset: str, sweep: Sweep) -> SweepRecord:
        """Record the sweep, then request it (refused: failed; unknown: stays requested)."""
        ...

    async def advance_open(self) -> list[SweepRecord]:
        """One pass over the account's open sweeps; the records as they are now."""
        ...


#: ``(account, withdraw)`` -> a desk on that account: the withdrawal credentials when
#: ``withdraw``, else a member profile's trading credentials (reads only).
DeskFactory = Callable[[str, bool], WithdrawalDesk]
#: The account's settlement -> a node client, entered (connected) only when first asked.
NodeFactory = Callable[[AccountSettlement], contextlib.AbstractAsyncContextManager[KaspaNode]]
#: ``(account, its settlement, desk, node)`` -> the executor of its sweeps.
SettlerFactory = Callable[[str, AccountSettlement, WithdrawalDesk, KaspaNode], SweepExecutor]


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


class _LazyNode:
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


class SettlementService:
    """Runs the settlement of the accounts in one ``_settlement.yaml``.

    :param settlement: the validated file.
    :param members: account -> the names of its profiles (the loader's membership pass).
    :param profiles: name -> the loaded profile.
    :param locks: the state directory's ``locks/`` (``None``: no lock, for tests only).
    """

    def __init__(
        self,
        *,
        settlement: SettlementFile,
        members: Mapping[str, Sequence[str]],
        profiles: Mapping[str, Profile],
        book: SettlementBook,
        desk_factory: DeskFactory,
        node_factory: NodeFactory,
        settler_factory: SettlerFactory,
        locks: Path | None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        self._settlement = settlement
        self._members = {k: tuple(v) for k, v in members.items()}
        self._profiles = dict(profiles)
        self._book = book
        self._desk_factory = desk_factory
        self._node_factory = node_factory
        self._settler_factory = settler_factory
        self._locks = locks
        self._wall = wall

    @property
    def accounts(self) -> tuple[str, ...]:
        """The accounts of the settlement file, sorted."""
        return tuple(sorted(self._settlement.settlement))

    def _account(self, account: str) -> AccountSettlement:
        try:
            return self._settlement.settlement[account]
        except KeyError:
            raise ValueError(f"no settlement for account {account!r}") from None

    def _day_start(self, acct: AccountSettlement) -> float:
        zone = "UTC" if acct.schedule is None else acct.schedule.timezone
        return day_start(self._wall(), zone)

    @contextlib.asynccontextmanager
    async def _session(
        self, account: str, acct: AccountSettlement, execute: bool
    ) -> AsyncIterator[tuple[WithdrawalDesk, SweepExecutor | None]]:
        """The lock (executing), the desk, and the executor over a lazily connected node."""
        async with contextlib.AsyncExitStack() as stack:
            if execute and self._locks is not None:
                lock = LockFile(settle_lock_path(self._locks, account), f"kasmm settle {account}")
                stack.enter_context(lock.acquire())
            desk = self._desk_factory(account, execute)
            stack.push_async_callback(desk.close)
            settler: SweepExecutor | None = None
            if execute:
                bands = {a: to_band(a, b) for a, b in acct.assets.items()}
                guarded = LimitGuardDesk(
                    desk,
                    account=account,
                    bands=bands,
                    book=self._book,
                    day_start=self._day_start(acct),
                )
                node = _LazyNode(lambda: self._node_factory(acct))
                stack.push_async_callback(node.aclose)
                settler = self._settler_factory(account, acct, guarded, node)
            yield desk, settler

    async def run(self, account: str, *, execute: bool, gates: Gates) -> AccountRun:
        """Plan (and with ``execute``, carry out) the settlement of ``account``.

        :param gates: the caller's halted profiles and stale feeds (halts of profiles outside
            the account are ignored); the ledger's pending sweeps are added here.
        :raises ValueError: ``account`` has no settlement in the file.
        """
        acct = self._account(account)
        exchange = "?"
        try:
            async with self._session(account, acct, execute) as (desk, settler):
                exchange = desk.exchange
                return await self._run(account, acct, desk, settler, gates)
        except LockBusy as exc:
            log.warning("settlement_busy", account=account, holder=str(exc.holder))
            problem = f"another settlement of {account} is running: {exc.holder}"
            return AccountRun(account, exchange, execute, None, (), (), (), (), (problem,), True)

    async def _run(
        self,
        account: str,
        acct: AccountSettlement,
        desk: WithdrawalDesk,
        settler: SweepExecutor | None,
        gates: Gates,
    ) -> AccountRun:
        execute = settler is not None
        problems: list[str] = []
        advanced: tuple[SweepRecord, ...] = ()
        if settler is not None:
            advanced = tuple(await settler.advance_open())
        members = [self._profiles[n] for n in self._members.get(account, ()) if n in self._profiles]
        try:
            plan = await self._plan(account, acct, desk, members, gates)
        except DeskUnavailable as exc:
            problems.append(f"the exchange could not be read: {exc}")
            log.warning("settlement_unavailable", account=account, error=str(exc))
            return AccountRun(
                account, desk.exchange, execute, None, (), (), advanced, (), tuple(problems)
            )
        lines = tuple(describe(p) for p in plan.assets)
        for line in lines:
            log.info("settlement_planned", account=account, line=line)
        top_ups = tuple(
            [await self._top_up(desk, a, t.amount, t.reason) for a, t in plan.top_ups.items()]
        )
        requested: list[SweepRecord] = []
        if settler is not None:
            for asset, sweep in plan.sweeps.items():
                try:
                    requested.append(await settler.sweep(asset, sweep))
                except (DeskError, SettleError) as exc:
                    problems.append(f"{asset}: the sweep was not requested: {exc}")
        return AccountRun(
            account,
            desk.exchange,
            execute,
            plan,
            lines,
            tuple(requested),
            advanced,
            top_ups,
            tuple(problems),
        )

    async def _plan(
        self,
        account: str,
        acct: AccountSettlement,
        desk: WithdrawalDesk,
        members: Sequence[Profile],
        gates: Gates,
    ) -> SettlementPlan:
        balances = await desk.balances()
        symbols = sorted({p.symbol for p in members if p.enabled})
        mids = await desk.mids(symbols)
        terms: dict[str, WithdrawTerms] = {}
        for asset in sorted(acct.assets):
            found = await desk.terms(asset)
            if found is not None:
                terms[asset] = found
        since = self._day_start(acct)
        swept_today = {a: self._book.swept_since(account, a, since) for a in acct.assets}
        pending = {r.asset for r in self._book.sweeps(account, states=OPEN_STATES)}
        names = {p.name for p in members}
        halted = tuple(p for p in gates.halted_profiles if p in names)
        account_gates = Gates(halted, gates.stale_feeds, frozenset(pending) | gates.pending)
        inputs = plan_inputs(
            acct,
            members,
            balances=balances,
            marks=mids,
            terms=terms,
            swept_today=swept_today,
            gates=account_gates,
        )
        return make_plan(inputs)

    async def _top_up(
        self, desk: WithdrawalDesk, asset: str, amount: Decimal, reason: str
    ) -> TopUpNotice:
        if asset != NATIVE_ASSET:
            # The desk reads deposit addresses on the Kaspa network: only KAS has one there.
            why = f"{asset} does not travel on the Kaspa network; deposit it on the exchange"
            return TopUpNotice(asset, amount, reason, None, why)
        try:
            address = await desk.deposit_address(asset)
        except DeskError as exc:
            return TopUpNotice(asset, amount, reason, None, str(exc))
        return TopUpNotice(asset, amount, reason, address)

    async def advance(self, account: str) -> tuple[SweepRecord, ...] | None:
        """One pass over ``account``'s open sweeps (``--wait``); ``None`` when another
        settlement of the account holds its lock (try again later)."""
        acct = self._account(account)
        try:
            async with self._session(account, acct, True) as (_desk, settler):
                assert settler is not None
                return tuple(await settler.advance_open())
        except LockBusy:
            return None

    def open_sweeps(self, account: str) -> list[SweepRecord]:
        """The account's sweeps still on their way, from the ledger."""
        return self._book.sweeps(account, states=OPEN_STATES)

    def latest(self, records: Sequence[SweepRecord]) -> list[SweepRecord]:
        """Each of ``records`` as the ledger holds it now."""
        found = (self._book.sweep(r.key) for r in records)
        return [r for r in found if r is not None]
