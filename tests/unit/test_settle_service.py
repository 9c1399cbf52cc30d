"""The settlement service's rules (kasmm.settle.service), with a test-double desk and node and the
real executor and ledger: what a plan reads and prints, what an execution requests, the daily
limit across runs, the gates, resume-first, the account lock and the limits checked again inside
``withdraw``."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal as D
from pathlib import Path
from typing import Any

import pytest

from kasmm.config.schema import Profile
from kasmm.config.settlement import AccountSettlement, SettlementFile
from kasmm.config.settlement_load import load_settlement
from kasmm.core.settlement import AssetBand, Gates, Hold, Sweep, WithdrawTerms
from kasmm.core.types import Balance, Balances
from kasmm.settle.desk import Withdrawal, WithdrawalDesk, WithdrawalRefused
from kasmm.settle.destination import destination_from
from kasmm.settle.executor import Settler
from kasmm.settle.guard import LimitGuardDesk, limit_violation
from kasmm.settle.node import KaspaNode, NodeStatus, Receipt
from kasmm.settle.service import (
    SettlementService,
    SweepExecutor,
    day_start,
    settle_lock_path,
)
from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.state_dir import LockFile
from tests.emulators.wallet import KAS_ADDRESS

pytestmark = pytest.mark.anyio

ACCOUNT = "mexc-main"
DEPOSIT = "kaspa:deposit-address-of-the-exchange"
#: 2026-12-06 10:00 UTC
NOW = datetime(2026, 12, 6, 10, 0, tzinfo=UTC).timestamp()

SETTLEMENT = f"""\
settlement:
  {ACCOUNT}:
    network: mainnet
    destination: {{address: "{KAS_ADDRESS}"}}
    withdrawal_credentials: {{api_key: "${{WD_KEY}}", secret: "${{WD_SECRET}}"}}
    node_url: ws://127.0.0.1:1
    confirmations: 10
    assets:
      KAS: {{keep_at_least: 1000, keep_at_most: 5000, min_sweep: 100, max_sweep: 3000,
             max_per_day: 4000}}
      USDT: {{keep_at_least: 500}}
"""


def _profile(name: str, **extra: Any) -> Profile:
    data: dict[str, Any] = {
        "name": name,
        "venue": {
            "type": "ccxt",
            "exchange": "mexc",
            "account": ACCOUNT,
            "credentials": {"api_key": "${TRADE_KEY}", "secret": "${TRADE_SECRET}"},
        },
        "symbol": "KAS/USDT",
        "modes": {"passive": {"spread_bps": 50, "size": 100, "levels": 2}},
    }
    data.update(extra)
    return Profile.model_validate(data)


@dataclass
class FakeDesk:
    """An exchange account in memory: withdrawals debit at once, listed until told otherwise."""

    kas: D = D(10000)
    usdt: D = D(100)
    mid: D | None = D("0.1")
    terms_: WithdrawTerms | None = field(
        default_factory=lambda: WithdrawTerms(True, D("0.00000001"), D(10), D(1))
    )
    refuse: WithdrawalRefused | None = None
    listed: dict[str, Withdrawal] = field(default_factory=dict)
    requests: list[tuple[str, D, str, str | None]] = field(default_factory=list)
    closed: int = 0
    exchange: str = "mexc"
    takes_client_id: bool = True

    async def balances(self) -> Balances:
        return Balances({"KAS": Balance(self.kas), "USDT": Balance(self.usdt)})

    async def mids(self, symbols: Sequence[str]) -> dict[str, D]:
        return {} if self.mid is None else {s: self.mid for s in symbols}

    async def terms(self, asset: str) -> WithdrawTerms | None:
        return self.terms_ if asset == "KAS" else None

    async def withdraw(self, asset: str, amount: D, address: str, client_id: str | None) -> str:
        if self.refuse is not None:
            raise self.refuse
        self.requests.append((asset, amount, address, client_id))
        wid = f"w{len(self.requests)}"
        self.kas -= amount + D(1)
        self.listed[wid] = Withdrawal(
            wid, client_id, asset, amount, D(1), address, "pending", None, int(NOW * 1000)
        )
        return wid

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Withdrawal]:
        return [w for w in self.listed.values() if w.asset == asset]

    async def deposit_address(self, asset: str) -> str:
        return DEPOSIT

    async def close(self) -> None:
        self.closed += 1

    def send(self, wid: str, txid: str) -> None:
        self.listed[wid] = replace(self.listed[wid], status="ok", txid=txid)


@dataclass
class FakeNode:
    """A synced mainnet node whose UTXO index holds what the test pays."""

    daa: int = 1000
    utxos: list[Receipt] = field(default_factory=list)

    async def status(self) -> NodeStatus:
        return NodeStatus("mainnet", "test", True, True, self.daa)

    async def virtual_daa_score(self) -> int:
        return self.daa

    async def receipts(self, address: str) -> tuple[Receipt, ...]:
        return tuple(self.utxos)


@dataclass
class World:
    desk: FakeDesk
    node: FakeNode
    book: SettlementBook
    service: SettlementService
    clock: list[float]
    node_opened: list[int]
    #: the monotonic clock, and what each sleep does before it returns (the test's chain)
    ticks: list[float]
    on_sleep: list[Callable[[], None]]


@contextlib.contextmanager
def world(tmp_path: Path, profiles: Sequence[Profile] = (), **desk: Any) -> Iterator[World]:
    path = tmp_path / "_settlement.yaml"
    path.write_text(SETTLEMENT)
    members = list(profiles) or [_profile("p1")]
    by_name = {p.name: p for p in members}
    loaded = load_settlement(path, profiles=by_name)
    assert loaded.settlement is not None, loaded.issues
    settlement: SettlementFile = loaded.settlement
    fake_desk, fake_node, clock, opened = FakeDesk(**desk), FakeNode(), [NOW], [0]
    ticks: list[float] = [0.0]
    on_sleep: list[Callable[[], None]] = []

    async def sleep(seconds: float) -> None:
        ticks[0] += seconds
        for hook in on_sleep:
            hook()

    (tmp_path / "locks").mkdir(exist_ok=True)
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        book = SettlementBook(ledger)

        @contextlib.asynccontextmanager
        async def node_factory(acct: AccountSettlement) -> AsyncIterator[KaspaNode]:
            opened[0] += 1
            yield fake_node

        def settler_factory(
            account: str, acct: AccountSettlement, desk_: WithdrawalDesk, node: KaspaNode
        ) -> SweepExecutor:
            return Settler(
                account=account,
                network=acct.network,
                confirmations=acct.confirmations,
                book=book,
                desk=desk_,
                node=node,
                destination=destination_from(acct.network, address=acct.destination.address),
                wall=lambda: clock[0],
            )

        service = SettlementService(
            settlement=settlement,
            members=loaded.members,
            profiles=by_name,
            book=book,
            desk_factory=lambda account, withdraw: fake_desk,
            node_factory=node_factory,
            settler_factory=settler_factory,
            locks=tmp_path / "locks",
            wall=lambda: clock[0],
            monotonic=lambda: ticks[0],
            sleep=sleep,
        )
        yield World(fake_desk, fake_node, book, service, clock, opened, ticks, on_sleep)


async def test_plan_reads_prints_and_moves_nothing(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        run = await w.service.run(ACCOUNT, execute=False, gates=Gates())
        assert w.book.sweeps(ACCOUNT) == []
    assert run.plan is not None and not run.executed
    kas, usdt = run.plan.assets
    # 10000 held, ceiling 5000: the excess less the fee is 4999, max_sweep 3000 binds
    assert kas.action == Sweep(D(3000), D(1), ("per_sweep",))
    assert run.lines[0] == (
        "KAS: holds 10000 (floor 1000, ceiling 5000): sweep 3000 (fee 1; limited by per_sweep)"
    )
    (notice,) = run.top_ups
    assert (notice.asset, notice.amount, notice.address) == ("USDT", D(400), None)
    assert notice.error is not None and "Kaspa network" in notice.error
    assert usdt.action.__class__.__name__ == "TopUp"
    assert w.desk.requests == []
    assert w.desk.closed == 1 and w.node_opened == [0]


async def test_a_kas_top_up_prints_the_deposit_address_and_moves_nothing(tmp_path: Path) -> None:
    with world(tmp_path, kas=D(400)) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert w.book.sweeps(ACCOUNT) == []
    kas_notice = next(n for n in run.top_ups if n.asset == "KAS")
    # floor 1000 (keep_at_least; the profile needs 200): 600 short, whatever the gates
    assert (kas_notice.amount, kas_notice.address, kas_notice.reason) == (
        D(600),
        DEPOSIT,
        "below_band",
    )
    assert w.desk.requests == []


async def test_execute_requests_exactly_the_planned_amount_and_records_the_trail(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        (record,) = run.requested
        assert w.desk.requests == [("KAS", D(3000), KAS_ADDRESS, record.client_id)]
        assert record.state == "accepted" and record.withdrawal_id == "w1"
        assert [s.state for s in w.book.steps(record.key)] == ["requested", "accepted"]
        # the withdrawal is sent, then found on chain deep enough: the next pass confirms it
        w.desk.send("w1", "ab" * 32)
        w.node.utxos.append(Receipt("ab" * 32, 0, 3000 * 10**8, w.node.daa - 20))
        again = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert [(r.key, r.state) for r in again.advanced] == [(record.key, "confirmed")]
        trail = [s.state for s in w.book.steps(record.key)]
        assert trail == ["requested", "accepted", "sent", "confirmed"]


async def test_wait_follows_the_sweep_until_confirmed_on_the_monotonic_clock(
    tmp_path: Path,
) -> None:
    with world(tmp_path) as w:
        polls: list[float] = []

        def chain() -> None:
            polls.append(w.ticks[0])
            if len(polls) == 3:  # the third pass finds it sent and deep enough
                w.desk.send("w1", "ab" * 32)
                w.node.utxos.append(Receipt("ab" * 32, 0, 3000 * 10**8, w.node.daa - 20))

        w.on_sleep.append(chain)
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates(), wait_s=60, poll_s=2)
        assert polls == [2.0, 4.0, 6.0]
        (record,) = run.requested
        assert record.state == "confirmed" and run.open == ()


async def test_wait_gives_up_when_the_time_is_up(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates(), wait_s=5, poll_s=2)
        assert w.ticks == [5.0]  # 2 + 2 + the 1 left
        assert [r.state for r in run.open] == ["accepted"]


async def test_the_daily_limit_holds_over_two_runs(tmp_path: Path) -> None:
    with world(tmp_path, kas=D(20000)) as w:
        first = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert [r.amount for r in first.requested] == [D(3000)]
        w.desk.send("w1", "cd" * 32)
        w.node.utxos.append(Receipt("cd" * 32, 0, 3000 * 10**8, w.node.daa - 20))
        w.clock[0] += 3600
        second = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert [r.state for r in second.advanced] == ["confirmed"]
        # 4000 a day, 3000 swept: 1000 left, though the excess is far larger
        assert [r.amount for r in second.requested] == [D(1000)]
        assert second.plan is not None
        assert second.plan.assets[0].action == Sweep(D(1000), D(1), ("per_day",))
        # the next day, the limit starts again
        w.desk.send("w2", "ef" * 32)
        w.node.utxos.append(Receipt("ef" * 32, 0, 1000 * 10**8, w.node.daa - 20))
        w.clock[0] += 86400
        third = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert [r.amount for r in third.requested] == [D(3000)]
        assert sum((a for _, a, _, _ in w.desk.requests), D(0)) == D(7000)


@pytest.mark.parametrize(
    ("gates", "desk", "reason"),
    [
        (Gates(halted_profiles=("p1",)), {}, "profile_halted"),
        (Gates(stale_feeds=("KAS/USDT",)), {}, "feed_stale"),
        (Gates(), {"mid": None}, "feed_stale"),
        (Gates(), {"terms_": WithdrawTerms(False, D("0.00000001"))}, "withdrawals_suspended"),
        (Gates(), {"terms_": None}, "no_withdraw_terms"),
    ],
)
async def test_gates_hold_the_sweep(
    tmp_path: Path, gates: Gates, desk: dict[str, Any], reason: str
) -> None:
    with world(tmp_path, **desk) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=gates)
    assert run.plan is not None
    assert run.plan.assets[0].action == Hold(reason, D(5000))  # type: ignore[arg-type]
    assert run.requested == () and w.desk.requests == []


async def test_a_halt_of_a_profile_of_another_account_does_not_hold(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates(halted_profiles=("x",)))
    assert [r.amount for r in run.requested] == [D(3000)]


async def test_an_open_sweep_is_resumed_first_and_holds_a_new_one(tmp_path: Path) -> None:
    with world(tmp_path, kas=D(20000)) as w:
        first = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        (record,) = first.requested
        second = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        assert [r.key for r in second.advanced] == [record.key]
        assert second.plan is not None
        assert second.plan.assets[0].action == Hold("sweep_pending", D(11999))
        assert len(w.desk.requests) == 1


async def test_a_refusal_fails_the_sweep_and_nothing_moves(tmp_path: Path) -> None:
    refusal = WithdrawalRefused("address_not_whitelisted", "not on the whitelist")
    with world(tmp_path, refuse=refusal) as w:
        run = await w.service.run(ACCOUNT, execute=True, gates=Gates())
        (record,) = run.failed
        assert record.state == "failed" and "address_not_whitelisted" in (record.reason or "")
        assert w.desk.kas == D(10000)
        # failed sweeps do not count toward the day
        assert w.book.swept_since(ACCOUNT, "KAS", day_start(NOW, "UTC")) == 0


async def test_another_settlement_of_the_account_holds_the_lock(tmp_path: Path) -> None:
    with world(tmp_path) as w:
        with LockFile(settle_lock_path(tmp_path / "locks", ACCOUNT), "other").acquire():
            run = await w.service.run(ACCOUNT, execute=True, gates=Gates())
            assert run.busy and run.plan is None and w.desk.requests == []
        again = await w.service.run(ACCOUNT, execute=True, gates=Gates())
    assert not again.busy and len(again.requested) == 1


async def test_unknown_account_is_refused(tmp_path: Path) -> None:
    with world(tmp_path) as w, pytest.raises(ValueError, match="no settlement"):
        await w.service.run("nope", execute=False, gates=Gates())


@pytest.mark.parametrize(
    ("when", "zone", "midnight"),
    [
        ("2026-12-06T10:00:00+00:00", "UTC", "2026-12-06T00:00:00+00:00"),
        ("2026-12-06T02:00:00+00:00", "America/New_York", "2026-12-05T05:00:00+00:00"),
        ("2026-12-06T20:00:00+00:00", "Asia/Tokyo", "2026-12-06T15:00:00+00:00"),
        # the day a clock moves: midnight before the change, in that day's offset
        ("2026-03-08T12:00:00+00:00", "America/New_York", "2026-03-08T05:00:00+00:00"),
    ],
)
def test_day_start_is_local_midnight(when: str, zone: str, midnight: str) -> None:
    wall = datetime.fromisoformat(when).timestamp()
    assert day_start(wall, zone) == datetime.fromisoformat(midnight).timestamp()


BAND = AssetBand(D(1000), D(5000), D(100), D(3000), D(4000))


@pytest.mark.parametrize(
    ("band", "amount", "before", "problem"),
    [
        (BAND, D(3000), D(0), None),
        (BAND, D(1000), D(3000), None),
        (BAND, D(3001), D(0), "above max_sweep"),
        (BAND, D(99), D(0), "below min_sweep"),
        (BAND, D(1001), D(3000), "max_per_day"),
        (BAND, D(0), D(0), "not positive"),
        (BAND, D("NaN"), D(0), "not positive"),
        (replace(BAND, sweepable=False), D(500), D(0), "cannot receive"),
        (replace(BAND, keep_at_most=None), D(500), D(0), "never swept"),
        (None, D(500), D(0), "no band"),
    ],
)
def test_limit_violation(band: AssetBand | None, amount: D, before: D, problem: str | None) -> None:
    found = limit_violation(band, amount, before)
    assert (found is None) if problem is None else (found is not None and problem in found)


async def test_the_guard_refuses_inside_withdraw_what_the_limits_forbid(tmp_path: Path) -> None:
    """A sweep beyond the limits that reaches the executor (a bug upstream) fails there:
    nothing is requested from the exchange."""
    with world(tmp_path, kas=D(50000)) as w:
        guarded = LimitGuardDesk(
            w.desk,
            account=ACCOUNT,
            bands={"KAS": BAND},
            book=w.book,
            day_start=day_start(NOW, "UTC"),
        )
        settler = Settler(
            account=ACCOUNT,
            network="mainnet",
            confirmations=10,
            book=w.book,
            desk=guarded,
            node=w.node,
            destination=destination_from("mainnet", address=KAS_ADDRESS),
            wall=lambda: NOW,
        )
        record = await settler.sweep("KAS", Sweep(D(3500), D(1), ("excess",)))
        assert (record.state, record.reason) == ("failed", "invalid_request")
        assert "above max_sweep" in w.book.steps(record.key)[-1].detail["message"]
        ok = await settler.sweep("KAS", Sweep(D(3000), D(1), ("per_sweep",)))
        assert ok.state == "accepted"
        w.desk.send("w1", "aa" * 32)
        w.node.utxos.append(Receipt("aa" * 32, 0, 3000 * 10**8, w.node.daa - 20))
        await settler.advance_open()
        # 3000 of 4000 used today: 1001 more is refused, counting the confirmed one
        over = await settler.sweep("KAS", Sweep(D(1001), D(1), ("excess",)))
        assert over.state == "failed"
        assert "max_per_day" in w.book.steps(over.key)[-1].detail["message"]
    assert [a for _, a, _, _ in w.desk.requests] == [D(3000)]
