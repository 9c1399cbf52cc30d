"""Settlement through real ccxt against the four exchange emulators and the Kaspa node emulator.

The Settler, the ccxt desk and the SDK's node client run unmodified over loopback: a sweep goes
requested -> accepted -> sent -> confirmed on every exchange, every refusal ends ``failed``
with its reason and nothing withdrawn, and a lost answer is found by the next pass without a
second withdrawal. The crash of a real process between request and confirmation is
``test_settle_crash.py``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path

import pytest
import structlog

from kasmm.core.settlement import Sweep
from kasmm.settle.address import validate_address
from kasmm.settle.destination import FixedAddress
from kasmm.settle.executor import Settler
from kasmm.settle.sdk_node import SdkKaspaNode
from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from tests.emulators import kaspa_address
from tests.emulators.wallet import KAS_ADDRESS, Stage
from tests.settle_rig import EXCHANGES, KEY, SECRET, START_KAS, Exchange, exchange

pytestmark = pytest.mark.anyio

CONFIRMATIONS = 10
#: Where each exchange's withdrawal request goes (the lost-answer fault's path).
WITHDRAW_PATH = {
    "mexc": "/api/v3/capital/withdraw",
    "kucoin": "/api/v3/withdrawals",
    "bingx": "/openApi/wallets/v1/capital/withdraw/apply",
}


@asynccontextmanager
async def settler_on(
    x: Exchange, tmp_path: Path, address: str = KAS_ADDRESS
) -> AsyncIterator[tuple[Settler, SettlementBook]]:
    with Ledger(tmp_path / "kasmm.sqlite") as ledger:
        book = SettlementBook(ledger)
        async with SdkKaspaNode(x.node.url, "mainnet") as node:
            yield (
                Settler(
                    account="acct",
                    network="mainnet",
                    confirmations=CONFIRMATIONS,
                    book=book,
                    desk=x.desk,
                    node=node,
                    destination=FixedAddress(validate_address(address, "mainnet")),
                ),
                book,
            )


@pytest.mark.parametrize("name", EXCHANGES)
async def test_terms_balances_and_deposit_address_through_ccxt(name: str) -> None:
    async with exchange(name) as x:
        terms = await x.desk.terms("KAS")
        assert terms is not None and terms.enabled
        assert (terms.fee, terms.min_amount) == (Decimal(1), Decimal(10))
        assert 0 < terms.step <= Decimal("0.0001")
        assert await x.desk.terms("NOPE") is None
        balances = await x.desk.balances()
        assert balances.total("KAS") == START_KAS
        address = await x.desk.deposit_address("KAS")
        assert kaspa_address.is_valid(address)
        mids = await x.desk.mids(["KAS/USDT", "NOPE/USDT"])
        assert set(mids) <= {"KAS/USDT"} and all(m > 0 for m in mids.values())


@pytest.mark.parametrize("name", EXCHANGES)
async def test_a_sweep_goes_requested_accepted_sent_confirmed(name: str, tmp_path: Path) -> None:
    async with exchange(name) as x, settler_on(x, tmp_path) as (settler, book):
        terms = await x.desk.terms("KAS")
        assert terms is not None
        rec = await settler.sweep("KAS", Sweep(Decimal(100), terms.fee, ("excess",)))
        assert rec.state == "accepted"
        (w,) = x.wallet.withdrawals.values()
        assert w.id == rec.withdrawal_id and w.amount == Decimal(100)
        assert w.address == KAS_ADDRESS and w.network == "KAS"
        assert w.client_id == rec.client_id  # None on KuCoin, which keeps none
        assert (rec.client_id is None) == (name == "kucoin")
        assert x.kas() == START_KAS - w.debited

        for stage in (Stage.PROCESSING, Stage.SENT):
            x.wallet.advance(w.id, stage)
            (rec,) = await settler.advance_open()
            assert rec.state == "accepted", stage  # pending at the exchange
        x.wallet.advance(w.id, Stage.COMPLETED)
        (rec,) = await settler.advance_open()
        txid = x.wallet.withdrawals[w.id].txid
        assert rec.state == "sent" and rec.txid == txid and rec.confirmations == 0
        x.node.advance(CONFIRMATIONS - 1)
        (rec,) = await settler.advance_open()
        assert rec.state == "sent" and rec.confirmations == CONFIRMATIONS - 1
        x.node.advance(1)
        (rec,) = await settler.advance_open()
        assert rec.state == "confirmed" and rec.confirmations == CONFIRMATIONS
        assert await settler.advance_open() == []

        steps = book.steps(rec.key)
        assert [s.state for s in steps] == ["requested", "accepted", "sent", "confirmed"]
        assert steps[0].detail["amount"] == "100" and steps[0].detail["to"] == KAS_ADDRESS
        assert steps[0].detail["fee"] == "1"
        assert steps[1].detail == {"withdrawal_id": w.id}
        assert steps[2].detail["txid"] == txid
        received = Decimal(99) if w.debited == w.amount else Decimal(100)  # fee inside or on top
        assert steps[3].detail == {"confirmations": CONFIRMATIONS, "received": str(received)}
        assert len(x.wallet.withdrawals) == 1


@pytest.mark.parametrize("name", EXCHANGES)
@pytest.mark.parametrize(
    "reason",
    ["address_not_whitelisted", "insufficient_balance", "below_minimum", "withdrawals_suspended"],
)
async def test_each_refusal_fails_the_sweep_with_its_reason(
    name: str, reason: str, tmp_path: Path
) -> None:
    async with exchange(name) as x:
        address, amount = KAS_ADDRESS, Decimal(100)
        if reason == "address_not_whitelisted":
            address = kaspa_address.encode(bytes(32))
        elif reason == "insufficient_balance":
            amount = START_KAS + 1  # more than there is, the fee inside or on top
        elif reason == "below_minimum":
            amount = Decimal(9)
        else:
            x.wallet.suspend("KAS", "KAS")
        async with settler_on(x, tmp_path, address) as (settler, book):
            with structlog.testing.capture_logs() as logs:
                rec = await settler.sweep("KAS", Sweep(amount, Decimal(1), ("excess",)))
            assert SECRET not in repr(logs) and KEY not in repr(logs)
            assert SECRET not in repr(book.steps(rec.key))
            assert (rec.state, rec.reason) == ("failed", reason)
            assert [s.state for s in book.steps(rec.key)] == ["requested", "failed"]
            assert "withdraw" in book.steps(rec.key)[1].detail["message"]
            assert await settler.advance_open() == []
        assert x.wallet.withdrawals == {}
        assert x.kas() == START_KAS


async def test_an_amount_the_exchange_would_round_is_refused_before_sending(
    tmp_path: Path,
) -> None:
    async with exchange("gate") as x, settler_on(x, tmp_path) as (settler, _):
        rec = await settler.sweep("KAS", Sweep(Decimal("100.00005"), Decimal(1), ("excess",)))
        assert (rec.state, rec.reason) == ("failed", "invalid_request")
        assert x.wallet.withdrawals == {}


@pytest.mark.parametrize("name", EXCHANGES)
async def test_a_lost_answer_is_found_by_the_next_pass_and_never_resent(
    name: str, tmp_path: Path
) -> None:
    async with exchange(name) as x, settler_on(x, tmp_path) as (settler, book):
        if name == "gate":
            x.emu.inject_error("SERVER_ERROR", 500, path="/withdrawals", method="POST", after=True)
        else:
            x.emu.inject_fault("POST", WITHDRAW_PATH[name], status=504, after=True)
        rec = await settler.sweep("KAS", Sweep(Decimal(100), Decimal(1), ("excess",)))
        assert rec.state == "requested"
        (w,) = x.wallet.withdrawals.values()  # the exchange took it
        (rec,) = await settler.advance_open()
        assert rec.state == "accepted" and rec.withdrawal_id == w.id
        found_by = book.steps(rec.key)[1].detail["found_by"]
        assert found_by == ("match" if name == "kucoin" else "client_id")
        x.wallet.advance(w.id, Stage.PROCESSING)
        x.wallet.advance(w.id, Stage.SENT)
        x.wallet.advance(w.id, Stage.COMPLETED)
        x.node.advance(CONFIRMATIONS)
        (rec,) = await settler.advance_open()
        assert rec.state == "confirmed"
        assert len(x.wallet.withdrawals) == 1
        if name == "gate":
            assert len(x.emu.requests_to("/withdrawals", "POST")) == 1
        else:
            assert len([r for r in x.emu.requests if r.path == WITHDRAW_PATH[name]]) == 1


@pytest.mark.parametrize("name", ["mexc", "kucoin"])
async def test_failed_at_the_exchange_fails_the_sweep_and_the_debit_comes_back(
    name: str, tmp_path: Path
) -> None:
    async with exchange(name) as x, settler_on(x, tmp_path) as (settler, _):
        rec = await settler.sweep("KAS", Sweep(Decimal(100), Decimal(1), ("excess",)))
        x.wallet.advance(rec.withdrawal_id or "", Stage.CANCELLED)
        (rec,) = await settler.advance_open()
        assert (rec.state, rec.reason) == ("failed", "failed_at_exchange")
        assert x.kas() == START_KAS


async def test_a_request_the_exchange_never_took_fails_after_the_grace_and_is_not_resent(
    tmp_path: Path,
) -> None:
    async with exchange("mexc") as x, settler_on(x, tmp_path) as (settler, book):
        x.emu.inject_fault("POST", WITHDRAW_PATH["mexc"], status=504)  # refused unprocessed
        rec = await settler.sweep("KAS", Sweep(Decimal(100), Decimal(1), ("excess",)))
        assert rec.state == "requested" and x.wallet.withdrawals == {}
        (rec,) = await settler.advance_open()
        assert rec.state == "requested"  # within the grace: maybe not listed yet
        later = Settler(
            account="acct",
            network="mainnet",
            confirmations=CONFIRMATIONS,
            book=book,
            desk=x.desk,
            node=None,
            destination=FixedAddress(validate_address(KAS_ADDRESS, "mainnet")),
            wall=lambda: rec.requested_ts + 901,
        )
        (rec,) = await later.advance_open()
        assert (rec.state, rec.reason) == ("failed", "not_found_at_exchange")
        assert x.wallet.withdrawals == {} and x.kas() == START_KAS
        assert len([r for r in x.emu.requests if r.path == WITHDRAW_PATH["mexc"]]) == 1
