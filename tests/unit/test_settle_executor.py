"""The settlement executor against a fake desk and node: every rule of ``kasmm.settle.executor``.

The fake desk is an exchange in miniature (withdrawals with ids, client ids, statuses and a
txid), whose answers a test can lose; the real path through ccxt and the emulators is
``test_settle_ccxt.py``. The wall clock is virtual, so the lookup grace is crossed without
waiting.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from decimal import Decimal
from pathlib import Path
from typing import Literal

import pytest
import structlog
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kasmm.core.settlement import Sweep, WithdrawTerms
from kasmm.core.types import Balances
from kasmm.settle.address import parse_account_key, validate_address
from kasmm.settle.desk import (
    DeskUnavailable,
    RefusalReason,
    Withdrawal,
    WithdrawalRefused,
    WithdrawalStatus,
    WithdrawalUnknown,
)
from kasmm.settle.destination import FixedAddress, XpubReceive, destination_from, next_index
from kasmm.settle.executor import Settler, SweepInvalid, SweepPending
from kasmm.settle.lookup import client_id_for, match_withdrawal
from kasmm.settle.node import NodeMisconfigured, NodeStatus, NodeUnavailable, Receipt
from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord
from tests.unit.kaspa_vectors import GEN1_ACCOUNT_KPUB, GEN1_RECEIVE_MAINNET

pytestmark = pytest.mark.anyio

ADDRESS = "kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73"
T0 = 1_800_000_000.0
SWEEP = Sweep(Decimal(100), Decimal(1), ("excess",))

Outcome = Literal["answer", "lose", "refuse", "lose_before"]


@dataclass
class FakeDesk:
    """An exchange's withdrawal side in memory. ``outcomes`` decides each request's fate:
    ``answer``; ``lose`` (taken, the answer lost); ``lose_before`` (never reached the
    exchange, the caller cannot tell); ``refuse``."""

    name: str = "mexc"
    client_ids: bool = True
    now_ms: int = int(T0 * 1000)
    outcomes: list[Outcome] = field(default_factory=list)
    refusal: RefusalReason = "address_not_whitelisted"
    listed: dict[str, Withdrawal] = field(default_factory=dict)
    calls: list[tuple[str, Decimal, str, str | None]] = field(default_factory=list)
    list_fails: bool = False
    #: called at each listing (another process acting meanwhile)
    on_list: Callable[[], None] | None = None
    seq: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    book: SettlementBook | None = None

    @property
    def exchange(self) -> str:
        return self.name

    @property
    def takes_client_id(self) -> bool:
        return self.client_ids

    async def balances(self) -> Balances:
        return Balances()

    async def mids(self, symbols: Sequence[str]) -> dict[str, Decimal]:
        return {}

    async def terms(self, asset: str) -> WithdrawTerms | None:
        return WithdrawTerms(True, Decimal("0.00000001"), Decimal(10), Decimal(1))

    async def withdraw(
        self, asset: str, amount: Decimal, address: str, client_id: str | None
    ) -> str:
        if self.book is not None:  # recorded (and committed) before requested
            assert [
                r.key
                for r in self.book.sweeps()
                if r.state == "requested" and r.client_id == client_id and r.address == address
            ]
        self.calls.append((asset, amount, address, client_id))
        outcome = self.outcomes.pop(0) if self.outcomes else "answer"
        if outcome == "refuse":
            raise WithdrawalRefused(self.refusal, "refused")
        if outcome == "lose_before":
            raise WithdrawalUnknown("timed out before the exchange saw it")
        wid = f"w{next(self.seq)}"
        self.listed[wid] = Withdrawal(
            wid, client_id, asset, amount, Decimal(1), address, "pending", None, self.now_ms
        )
        if outcome == "lose":
            raise WithdrawalUnknown("answer lost")
        return wid

    async def withdrawals(self, asset: str, since_ms: int | None = None) -> list[Withdrawal]:
        if self.list_fails:
            raise DeskUnavailable("list down")
        if self.on_list is not None:
            self.on_list()
        return [
            w
            for w in self.listed.values()
            if w.asset == asset and (since_ms is None or (w.ts_ms or 0) >= since_ms)
        ]

    async def deposit_address(self, asset: str) -> str:
        return ADDRESS

    async def close(self) -> None:
        return None

    def set(self, wid: str, status: WithdrawalStatus, txid: str | None = None) -> None:
        self.listed[wid] = replace(self.listed[wid], status=status, txid=txid)


@dataclass
class FakeNode:
    """A node whose UTXO index holds what the test pays; ``error`` is raised instead."""

    daa: int = 1_000
    utxos: dict[str, list[Receipt]] = field(default_factory=dict)
    error: Exception | None = None

    async def status(self) -> NodeStatus:
        if self.error is not None:
            raise self.error
        return NodeStatus("mainnet", "fake", True, True, self.daa)

    async def virtual_daa_score(self) -> int:
        return self.daa

    async def receipts(self, address: str) -> tuple[Receipt, ...]:
        return tuple(self.utxos.get(address, ()))

    def pay(self, address: str, txid: str, sompi: int) -> None:
        self.utxos.setdefault(address, []).append(Receipt(txid, 0, sompi, self.daa))


@dataclass
class Rig:
    book: SettlementBook
    desk: FakeDesk
    node: FakeNode
    now: list[float]
    settler: Settler

    def wall(self) -> float:
        return self.now[0]


def rig(tmp_path: Path, *, client_ids: bool = True, node: bool = True, xpub: bool = False) -> Rig:
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(ledger)
    desk = FakeDesk(client_ids=client_ids, name="mexc" if client_ids else "kucoin", book=book)
    fake_node = FakeNode()
    now = [T0]
    destination = (
        XpubReceive(parse_account_key(GEN1_ACCOUNT_KPUB, "mainnet"))
        if xpub
        else FixedAddress(validate_address(ADDRESS, "mainnet"))
    )
    settler = Settler(
        account="acct",
        network="mainnet",
        confirmations=10,
        book=book,
        desk=desk,
        node=fake_node if node else None,
        destination=destination,
        wall=lambda: now[0],
        lookup_grace_s=900.0,
    )
    return Rig(book, desk, fake_node, now, settler)


def states(book: SettlementBook, key: str) -> list[str]:
    return [s.state for s in book.steps(key)]


async def test_sweep_goes_requested_accepted_sent_confirmed(tmp_path: Path) -> None:
    r = rig(tmp_path)
    rec = await r.settler.sweep("KAS", SWEEP)
    assert rec.state == "accepted" and rec.withdrawal_id == "w1"
    assert rec.client_id == client_id_for(rec.key) and len(rec.client_id) == 26
    assert rec.client_id.isalnum()
    assert r.desk.calls == [("KAS", Decimal(100), ADDRESS, rec.client_id)]
    (rec,) = await r.settler.advance_open()
    assert rec.state == "accepted"  # pending at the exchange
    r.desk.set("w1", "ok", "ab" * 32)
    (rec,) = await r.settler.advance_open()
    assert rec.state == "sent" and rec.txid == "ab" * 32 and rec.confirmations == 0
    r.node.pay(ADDRESS, "ab" * 32, 99 * 10**8)
    r.node.daa += 4
    (rec,) = await r.settler.advance_open()
    assert rec.state == "sent" and rec.confirmations == 4
    r.node.daa += 6
    (rec,) = await r.settler.advance_open()
    assert rec.state == "confirmed" and rec.confirmations == 10
    assert await r.settler.advance_open() == []
    steps = r.book.steps(rec.key)
    assert [s.state for s in steps] == ["requested", "accepted", "sent", "confirmed"]
    assert steps[0].detail == {"amount": "100", "fee": "1", "to": ADDRESS}
    assert steps[1].detail == {"withdrawal_id": "w1"}
    assert steps[2].detail["txid"] == "ab" * 32 and steps[2].detail["status"] == "ok"
    assert steps[3].detail == {"confirmations": 10, "received": "99"}
    assert len(r.desk.calls) == 1


@pytest.mark.parametrize(
    "reason",
    [
        "address_not_whitelisted",
        "insufficient_balance",
        "below_minimum",
        "withdrawals_suspended",
        "permission_denied",
    ],
)
async def test_refused_sweep_fails_with_its_reason(tmp_path: Path, reason: RefusalReason) -> None:
    r = rig(tmp_path)
    r.desk.outcomes, r.desk.refusal = ["refuse"], reason
    rec = await r.settler.sweep("KAS", SWEEP)
    assert rec.state == "failed" and rec.reason == reason
    assert states(r.book, rec.key) == ["requested", "failed"]
    assert await r.settler.advance_open() == []


async def test_lost_answer_is_found_by_client_id_and_never_resent(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.desk.outcomes = ["lose"]
    with structlog.testing.capture_logs() as logs:
        rec = await r.settler.sweep("KAS", SWEEP)
    assert rec.state == "requested"
    assert [e["event"] for e in logs] == ["settlement_requested", "settlement_lookup_pending"]
    assert logs[1]["reason"] == "answer_unknown"
    (rec,) = await r.settler.advance_open()
    assert rec.state == "accepted" and rec.withdrawal_id == "w1"
    assert r.book.steps(rec.key)[1].detail["found_by"] == "client_id"
    assert len(r.desk.calls) == 1


async def test_request_that_never_arrived_fails_after_the_grace_and_is_not_resent(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.desk.outcomes = ["lose_before"]
    rec = await r.settler.sweep("KAS", SWEEP)
    r.now[0] += 899
    (rec,) = await r.settler.advance_open()
    assert rec.state == "requested"
    r.now[0] += 2
    (rec,) = await r.settler.advance_open()
    assert rec.state == "failed" and rec.reason == "not_found_at_exchange"
    assert len(r.desk.calls) == 1
    # the account is free for a new sweep (which is a new request, with a new key)
    again = await r.settler.sweep("KAS", SWEEP)
    assert again.key != rec.key and again.state == "accepted"


async def test_the_grace_is_wall_time_and_holds_across_a_new_settler(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.desk.outcomes = ["lose_before"]
    await r.settler.sweep("KAS", SWEEP)
    r.now[0] += 1000
    fresh = Settler(
        account="acct",
        network="mainnet",
        confirmations=10,
        book=r.book,
        desk=r.desk,
        node=None,
        destination=FixedAddress(validate_address(ADDRESS, "mainnet")),
        wall=lambda: r.now[0],
    )
    (rec,) = await fresh.advance_open()
    assert rec.reason == "not_found_at_exchange"


async def test_unreadable_list_leaves_the_sweep_where_it_is(tmp_path: Path) -> None:
    r = rig(tmp_path)
    r.desk.outcomes = ["lose"]
    await r.settler.sweep("KAS", SWEEP)
    r.desk.list_fails = True
    r.now[0] += 5000
    (rec,) = await r.settler.advance_open()
    assert rec.state == "requested"  # never failed because the list could not be read


async def test_a_second_sweep_waits_for_the_open_one(tmp_path: Path) -> None:
    r = rig(tmp_path)
    first = await r.settler.sweep("KAS", SWEEP)
    with pytest.raises(SweepPending) as caught:
        await r.settler.sweep("KAS", SWEEP)
    assert caught.value.open_sweep.key == first.key
    assert len(r.book.sweeps("acct")) == 1 and len(r.desk.calls) == 1


@pytest.mark.parametrize(
    ("asset", "amount"), [("USDT", Decimal(5)), ("KAS", Decimal(0)), ("KAS", Decimal("-1"))]
)
async def test_impossible_sweeps_are_refused_before_anything(
    tmp_path: Path, asset: str, amount: Decimal
) -> None:
    r = rig(tmp_path)
    with pytest.raises(SweepInvalid):
        await r.settler.sweep(asset, Sweep(amount, Decimal(1), ("excess",)))
    assert r.book.sweeps() == [] and r.desk.calls == []


async def test_failed_or_canceled_at_the_exchange_fails_the_sweep(tmp_path: Path) -> None:
    r = rig(tmp_path)
    rec = await r.settler.sweep("KAS", SWEEP)
    r.desk.set("w1", "failed")
    (rec,) = await r.settler.advance_open()
    assert rec.state == "failed" and rec.reason == "failed_at_exchange"
    assert states(r.book, rec.key) == ["requested", "accepted", "failed"]


async def test_kucoin_match_by_amount_address_and_time_never_guesses(tmp_path: Path) -> None:
    r = rig(tmp_path, client_ids=False)
    r.desk.outcomes = ["lose"]
    rec = await r.settler.sweep("KAS", SWEEP)
    assert rec.client_id is None
    # an operator's own withdrawal of the same amount to the same address, same minute
    r.desk.listed["manual"] = replace(r.desk.listed["w1"], id="manual")
    with structlog.testing.capture_logs() as logs:
        (rec,) = await r.settler.advance_open()
    assert rec.state == "requested"
    assert logs[-1]["reason"] == "ambiguous" and logs[-1]["candidates"] == ["manual", "w1"]
    del r.desk.listed["manual"]
    (rec,) = await r.settler.advance_open()
    assert rec.state == "accepted" and rec.withdrawal_id == "w1"
    assert r.book.steps(rec.key)[1].detail["found_by"] == "match"


def test_match_takes_no_withdrawal_another_sweep_claims_or_outside_the_window() -> None:
    rec = SweepRecord(
        "k", "acct", "kucoin", "KAS", Decimal(100), Decimal(1), ADDRESS, "mainnet", None,
        "requested", requested_ts=T0,
    )  # fmt: skip
    base = Withdrawal(
        "a", None, "KAS", Decimal(100), None, ADDRESS, "pending", None, int(T0 * 1000)
    )
    assert match_withdrawal(rec, [base], frozenset()) == [base]
    assert match_withdrawal(rec, [base], frozenset({"a"})) == []
    for changed in (
        replace(base, amount=Decimal("100.5")),
        replace(base, address=ADDRESS[:-1] + "x"),
        replace(base, asset="USDT"),
        replace(base, ts_ms=int((T0 + 121) * 1000)),
        replace(base, ts_ms=int((T0 - 301) * 1000)),
        replace(base, ts_ms=None),
        replace(base, client_id="someone-else"),
    ):
        assert match_withdrawal(rec, [changed], frozenset()) == [], changed


async def test_no_node_stops_at_sent_and_says_so(tmp_path: Path) -> None:
    r = rig(tmp_path, node=False)
    rec = await r.settler.sweep("KAS", SWEEP)
    r.desk.set("w1", "ok", "cd" * 32)
    with structlog.testing.capture_logs() as logs:
        (rec,) = await r.settler.advance_open()
        (rec,) = await r.settler.advance_open()
    assert rec.state == "sent"
    assert logs[-1]["event"] == "settlement_lookup_pending" and logs[-1]["reason"] == "no_node"


async def test_node_errors_keep_sweeps_sent_and_misconfiguration_is_one_error_a_pass(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    rec = await r.settler.sweep("KAS", SWEEP)
    r.desk.set("w1", "ok", "ef" * 32)
    # a second sent sweep (as an older kasmm could have left), straight into the ledger
    other = replace(rec, key="older", client_id=None, state="requested", withdrawal_id=None)
    assert r.book.record_requested(other)
    r.book.advance("older", "sent", T0, withdrawal_id="w0", txid="01" * 32)
    r.node.error = NodeMisconfigured("wrong network")
    with structlog.testing.capture_logs() as logs:
        records = await r.settler.advance_open()
    assert [x.state for x in records] == ["sent", "sent"]
    errors = [e for e in logs if e["event"] == "settlement_node_misconfigured"]
    assert len(errors) == 1 and errors[0]["log_level"] == "error"
    r.node.error = NodeUnavailable("down")
    with structlog.testing.capture_logs() as logs:
        records = await r.settler.advance_open()
    assert [x.state for x in records] == ["sent", "sent"]
    assert {e["reason"] for e in logs} == {"node_unavailable"}
    r.node.error = None
    r.node.pay(ADDRESS, "ef" * 32, 10**8)
    r.node.daa += 10
    records = await r.settler.advance_open()
    assert {x.key: x.state for x in records} == {rec.key: "confirmed", "older": "sent"}


async def test_xpub_destination_derives_a_fresh_index_per_sweep_even_after_a_failure(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path, xpub=True)
    r.desk.outcomes = ["refuse", "answer", "answer"]
    seen = []
    for _ in range(3):
        rec = await r.settler.sweep("KAS", SWEEP)
        seen.append((rec.derivation, rec.address))
        if rec.state == "accepted":
            r.desk.set(rec.withdrawal_id or "", "failed")
            await r.settler.advance_open()
    assert seen == [GEN1_RECEIVE_MAINNET[i] for i in range(3)]
    assert [c[2] for c in r.desk.calls] == [a for _, a in GEN1_RECEIVE_MAINNET[:3]]
    assert next_index(r.book.sweeps("acct")) == 3


def test_destination_needs_exactly_one_kind() -> None:
    with pytest.raises(ValueError):
        destination_from("mainnet")
    with pytest.raises(ValueError):
        destination_from("mainnet", address=ADDRESS, xpub=GEN1_ACCOUNT_KPUB)


def test_settler_refuses_a_grace_shorter_than_the_look_back(tmp_path: Path) -> None:
    r = rig(tmp_path)
    with pytest.raises(ValueError):
        Settler(
            account="acct", network="mainnet", confirmations=10, book=r.book, desk=r.desk,
            node=None, destination=FixedAddress(validate_address(ADDRESS, "mainnet")),
            lookup_grace_s=60,
        )  # fmt: skip


# ------------------------------------------------------------------ property
_STEP = st.sampled_from(["sweep", "pass", "exchange", "node", "later"])


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    outcomes=st.lists(st.sampled_from(["answer", "lose", "refuse", "lose_before"]), max_size=12),
    steps=st.lists(st.tuples(_STEP, st.integers(0, 3)), max_size=40),
    client_ids=st.booleans(),
)
def test_at_most_one_withdrawal_per_key_and_every_sweep_resolves(
    tmp_path_factory: pytest.TempPathFactory,
    outcomes: list[Outcome],
    steps: list[tuple[str, int]],
    client_ids: bool,
) -> None:
    import anyio

    async def run() -> None:
        r = rig(tmp_path_factory.mktemp("prop"), client_ids=client_ids)
        r.desk.outcomes = list(outcomes)

        def exchange_moves(pick: int) -> None:
            for wid, w in list(r.desk.listed.items()):
                if w.status == "pending" and (pick + len(wid)) % 2 == 0:
                    if pick == 3:
                        r.desk.set(wid, "failed")
                    else:
                        r.desk.set(wid, "ok", wid.rjust(64, "0"))
                        r.node.pay(w.address, wid.rjust(64, "0"), 10**8)

        for step, pick in steps:
            if step == "sweep":
                with contextlib.suppress(SweepPending):
                    await r.settler.sweep("KAS", SWEEP)
            elif step == "pass":
                await r.settler.advance_open()
            elif step == "exchange":
                exchange_moves(pick)
            elif step == "node":
                r.node.daa += 5 * pick
            else:
                r.now[0] += 400 * pick
                r.desk.now_ms = int(r.now[0] * 1000)
        # then the world settles: the exchange finishes everything, time passes, passes run
        for _ in range(4):
            exchange_moves(0)
            exchange_moves(1)
            r.node.daa += 100
            r.now[0] += 1000
            await r.settler.advance_open()
        records = r.book.sweeps("acct")
        assert all(not rec.is_open for rec in records), records
        # one request per recorded sweep, never a second for the same key
        assert len(r.desk.calls) == len(records)
        by_client = [c[3] for c in r.desk.calls if c[3] is not None]
        assert len(by_client) == len(set(by_client))
        # each withdrawal at the exchange is claimed by at most one sweep
        claimed = [rec.withdrawal_id for rec in records if rec.withdrawal_id]
        assert len(claimed) == len(set(claimed))
        for rec in records:
            if rec.state == "confirmed":
                assert r.desk.listed[rec.withdrawal_id or ""].status == "ok"

    anyio.run(run)


async def test_ok_without_a_txid_waits_for_one(tmp_path: Path) -> None:
    r = rig(tmp_path)
    await r.settler.sweep("KAS", SWEEP)
    r.desk.set("w1", "ok", None)
    with structlog.testing.capture_logs() as logs:
        (rec,) = await r.settler.advance_open()
    assert rec.state == "accepted" and logs[-1]["reason"] == "ok_without_txid"
    r.desk.set("w1", "ok", "12" * 32)
    (rec,) = await r.settler.advance_open()
    assert rec.state == "sent" and rec.txid == "12" * 32


async def test_a_sweep_another_process_moved_on_meanwhile_is_taken_as_stored(
    tmp_path: Path,
) -> None:
    r = rig(tmp_path)
    r.desk.outcomes = ["lose"]
    rec = await r.settler.sweep("KAS", SWEEP)

    def other_process() -> None:
        r.book.advance(rec.key, "sent", T0 + 1, withdrawal_id="w1", txid="aa" * 32)

    r.desk.on_list = other_process
    with structlog.testing.capture_logs() as logs:
        (after,) = await r.settler.advance_open()
    assert (after.state, after.txid) == ("sent", "aa" * 32)
    assert any(e.get("reason") == "moved_elsewhere" for e in logs)
    assert states(r.book, rec.key) == ["requested", "sent"]
