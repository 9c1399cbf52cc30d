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
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import Protocol, TypeVar

import anyio
import anyio.to_thread
import structlog

from kasmm.config.schema import Profile
from kasmm.config.settlement import NATIVE_ASSET, AccountSettlement, SettlementFile, to_band
from kasmm.config.settlement_inputs import plan_inputs
from kasmm.core.settlement import Gates, SettlementPlan, Sweep, WithdrawTerms, describe
from kasmm.core.settlement import plan_settlement as make_plan
from kasmm.settle.desk import DeskError, DeskUnavailable, WithdrawalDesk
from kasmm.settle.executor import SettleError
from kasmm.settle.guard import LimitGuardDesk
from kasmm.settle.node import KaspaNode
from kasmm.settle.run import (
    AccountRun,
    LazyNode,
    TopUpNotice,
    day_start,
    settle_lock_path,
)
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import OPEN_STATES, SweepRecord
from kasmm.store.state_dir import LockBusy, LockFile

T = TypeVar("T")
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


class SettlementService:
    """Runs the settlement of the accounts in one ``_settlement.yaml``.

    :param settlement: the validated file.
    :param members: account -> the names of its profiles (the loader's membership pass).
    :param profiles: name -> the loaded profile.
    :param locks: the state directory's ``locks/`` (``None``: no lock, for tests only).
    :param monotonic: the clock ``wait_s`` is measured on; ``sleep`` waits between passes.
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
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = anyio.sleep,
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
        self._monotonic = monotonic
        self._sleep = sleep

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
                node = LazyNode(lambda: self._node_factory(acct))
                stack.push_async_callback(node.aclose)
                settler = self._settler_factory(account, acct, guarded, node)
            yield desk, settler

    async def run(
        self,
        account: str,
        *,
        execute: bool,
        gates: Gates,
        wait_s: float | None = None,
        poll_s: float = 2.0,
    ) -> AccountRun:
        """Plan (and with ``execute``, carry out) the settlement of ``account``.

        :param gates: the caller's halted profiles and stale feeds (halts of profiles outside
            the account are ignored); the ledger's pending sweeps are added here.
        :param wait_s: executing, then follow the open sweeps (a pass every ``poll_s`` on the
            monotonic clock, same desk, lock still held) until none is open or ``wait_s``
            seconds have passed; the run then shows each sweep as it is at the end.
        :raises ValueError: ``account`` has no settlement in the file.
        """
        acct = self._account(account)
        exchange = "?"
        try:
            async with self._session(account, acct, execute) as (desk, settler):
                exchange = desk.exchange
                run = await self._run(account, acct, desk, settler, gates)
                if settler is not None and wait_s is not None and run.open:
                    await self._follow(settler, wait_s, poll_s)
                    run = await self._refreshed(run)
                return run
        except LockBusy as exc:
            log.warning("settlement_busy", account=account, holder=str(exc.holder))
            problem = f"another settlement of {account} is running: {exc.holder}"
            return AccountRun(account, exchange, execute, None, (), (), (), (), (problem,), True)

    async def _follow(self, settler: SweepExecutor, wait_s: float, poll_s: float) -> None:
        deadline = self._monotonic() + wait_s
        while (left := deadline - self._monotonic()) > 0:
            await self._sleep(min(poll_s, left))
            if not any(r.is_open for r in await settler.advance_open()):
                return

    async def _ledger(self, call: Callable[[], T]) -> T:
        """A ledger call in a worker thread: SQLite may wait for another process's write lock,
        and the supervisor's event loop must not wait with it."""
        return await anyio.to_thread.run_sync(call)

    async def _refreshed(self, run: AccountRun) -> AccountRun:
        """``run`` with each of its sweeps as the ledger holds it now."""
        keys = [r.key for r in (*run.advanced, *run.requested)]
        stored = await self._ledger(lambda: [self._book.sweep(key) for key in keys])
        latest = {r.key: r for r in stored if r is not None}
        return replace(
            run,
            advanced=tuple(latest.get(r.key, r) for r in run.advanced),
            requested=tuple(latest.get(r.key, r) for r in run.requested),
        )

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
        book = self._book
        swept_today = await self._ledger(
            lambda: {a: book.swept_since(account, a, since) for a in acct.assets}
        )
        open_now = await self._ledger(partial(book.sweeps, account, states=OPEN_STATES))
        pending = {r.asset for r in open_now}
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
