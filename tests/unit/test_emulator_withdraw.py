"""Withdrawals and deposit addresses on the four exchange emulators, through unmodified ccxt.

Pins, per exchange, what ccxt 4.5.90 makes of the emulated wallet endpoints: the id ``withdraw``
returns and finds again in ``fetch_withdrawals``, the unified status of every stage, the txid once
sent, the amount and fee ccxt reports, the balance debited at request time and given back on
failure, and the exception class each refusal raises. A ccxt upgrade that changes any of these
shows up here, and the settlement code can rely on the table in the module docstrings.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

import aiohttp
import ccxt.async_support as ccxt_async
import pytest
from ccxt.base import errors

from tests.emulators import kaspa_address
from tests.emulators.bingx import BingxEmulator, load_spot_markets
from tests.emulators.gate import GateEmulator
from tests.emulators.gate import configure_ccxt as configure_gate
from tests.emulators.gate_venue import ACCOUNT as GATE_ACCOUNT
from tests.emulators.kucoin import KucoinEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wallet import KAS_ADDRESS, Network, Refusal, Stage, Wallet

pytestmark = pytest.mark.anyio

KEY, SECRET = "wd-key", "wd-secret"
NET = {"network": "KAS"}
START_KAS = Decimal("100000")


@dataclass(frozen=True)
class Case:
    """One exchange: how to get an emulator and a client, and what ccxt reports there."""

    name: str
    #: The fee comes out of the amount (debit = amount) rather than on top (amount + fee).
    fee_included: bool
    #: ccxt's unified status per stage (KuCoin passes REVIEW through unmapped).
    statuses: dict[Stage, str]
    #: ccxt's exception class per refusal (checked exactly, not by subclass).
    raises: dict[Refusal, type[Exception]]
    #: The network code ccxt reports on the deposit address.
    network: str = "KAS"


_PENDING = {s: "pending" for s in (Stage.REQUESTED, Stage.REVIEWING, Stage.PROCESSING)}
_BINANCE_LIKE = {
    **_PENDING,
    Stage.SENT: "pending",
    Stage.COMPLETED: "ok",
    Stage.FAILED: "failed",
    Stage.CANCELLED: "canceled",
}

CASES = [
    Case(
        "mexc",
        fee_included=True,
        statuses=_BINANCE_LIKE,
        raises={
            Refusal.NOT_WHITELISTED: errors.BadRequest,
            Refusal.INSUFFICIENT_BALANCE: errors.InsufficientFunds,
            Refusal.BELOW_MINIMUM: errors.InvalidOrder,
            Refusal.SUSPENDED: errors.ExchangeError,
        },
    ),
    Case(
        "gate",
        fee_included=True,
        statuses=_BINANCE_LIKE,
        raises={
            Refusal.NOT_WHITELISTED: errors.ExchangeError,
            Refusal.INSUFFICIENT_BALANCE: errors.InsufficientFunds,
            Refusal.BELOW_MINIMUM: errors.BadRequest,
            Refusal.SUSPENDED: errors.ExchangeNotAvailable,
        },
    ),
    Case(
        "kucoin",
        fee_included=False,
        statuses={
            **_PENDING,
            Stage.REVIEWING: "REVIEW",
            Stage.SENT: "pending",
            Stage.COMPLETED: "ok",
            Stage.FAILED: "failed",
            Stage.CANCELLED: "failed",
        },
        raises={
            Refusal.NOT_WHITELISTED: errors.BadRequest,
            Refusal.INSUFFICIENT_BALANCE: errors.InsufficientFunds,
            Refusal.BELOW_MINIMUM: errors.ExchangeError,  # ccxt's exact message match wins
            Refusal.SUSPENDED: errors.BadRequest,
        },
        network="kas",
    ),
    Case(
        "bingx",
        fee_included=False,
        statuses={
            **_PENDING,
            Stage.SENT: "pending",
            Stage.COMPLETED: "ok",
            Stage.FAILED: "failed",
            Stage.CANCELLED: "failed",
        },
        raises={
            Refusal.NOT_WHITELISTED: errors.ExchangeError,
            Refusal.INSUFFICIENT_BALANCE: errors.InsufficientFunds,
            Refusal.BELOW_MINIMUM: errors.BadRequest,
            Refusal.SUSPENDED: errors.ExchangeError,
        },
    ),
]


@dataclass
class Venue:
    """A started emulator, its wallet, a loaded ccxt client and the account key."""

    emu: Any
    wallet: Wallet
    ex: Any
    account: str
    kas: Callable[[], Decimal]


@asynccontextmanager
async def venue(name: str) -> AsyncIterator[Venue]:
    """The emulator ``name`` (KAS 100000) with :data:`KAS_ADDRESS` whitelisted and a ccxt client
    whose markets are loaded; both closed afterwards."""
    balances = {"KAS": str(START_KAS), "USDT": "10000"}
    emu: Any
    if name == "mexc":
        emu = MexcEmulator(KEY, SECRET, balances=balances)
    elif name == "gate":
        emu = GateEmulator(api_key=KEY, secret=SECRET, balances=balances)
    elif name == "kucoin":
        emu = KucoinEmulator(KEY, SECRET, balances=balances)
    else:
        emu = BingxEmulator(KEY, SECRET, balances=balances)
    async with emu:
        account = GATE_ACCOUNT if name == "gate" else KEY
        if name == "gate":
            ex = ccxt_async.gate({"apiKey": KEY, "secret": SECRET, "enableRateLimit": False})
            configure_gate(ex, emu.base_url)
        else:
            ex = emu.ccxt()
        try:
            if name == "bingx":
                await load_spot_markets(ex)
            else:
                await ex.load_markets()
            emu.wallet.allow(account, KAS_ADDRESS)
            matching = emu.wallet.engine
            yield Venue(
                emu, emu.wallet, ex, account, lambda: matching.balance(account, "KAS").available
            )
        finally:
            await ex.close()
        assert getattr(emu, "internal_errors", []) == []


async def _row(v: Venue, withdrawal_id: str) -> dict[str, Any]:
    rows = await v.ex.fetch_withdrawals("KAS")
    found = [r for r in rows if r["id"] == withdrawal_id]
    assert len(found) == 1, rows
    return dict(found[0])


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_withdrawal_goes_through_every_stage(case: Case) -> None:
    async with venue(case.name) as v:
        sent = await v.ex.withdraw("KAS", 100, KAS_ADDRESS, NET)
        debit = Decimal(100) if case.fee_included else Decimal(101)
        assert v.kas() == START_KAS - debit  # debited at request time, fee included
        wid = sent["id"]
        assert wid and v.wallet.withdrawals[wid].stage is Stage.REQUESTED

        row = await _row(v, wid)
        assert row["type"] == "withdrawal" and row["currency"] == "KAS"
        assert row["status"] == case.statuses[Stage.REQUESTED] and row["txid"] is None
        assert row["address"] == KAS_ADDRESS
        assert row["fee"]["cost"] == 1.0
        # ccxt reports what arrives: amount - fee where the fee comes out of the amount.
        assert row["amount"] == (99.0 if case.fee_included else 100.0)

        for stage in (Stage.REVIEWING, Stage.PROCESSING, Stage.SENT, Stage.COMPLETED):
            v.wallet.advance(wid, stage)
            row = await _row(v, wid)
            assert row["status"] == case.statuses[stage], stage
            if stage in (Stage.SENT, Stage.COMPLETED):
                assert row["txid"] == v.wallet.withdrawals[wid].txid
                assert row["txid"] and len(row["txid"]) == 64
        assert v.kas() == START_KAS - debit


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize("end", [Stage.FAILED, Stage.CANCELLED])
async def test_failed_or_cancelled_withdrawal_gives_the_debit_back(case: Case, end: Stage) -> None:
    async with venue(case.name) as v:
        sent = await v.ex.withdraw("KAS", 50, KAS_ADDRESS, NET)
        assert v.kas() < START_KAS
        v.wallet.advance(sent["id"], end)
        assert v.kas() == START_KAS
        assert (await _row(v, sent["id"]))["status"] == case.statuses[end]


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
@pytest.mark.parametrize(
    "refusal",
    [
        Refusal.NOT_WHITELISTED,
        Refusal.INSUFFICIENT_BALANCE,
        Refusal.BELOW_MINIMUM,
        Refusal.SUSPENDED,
    ],
)
async def test_refusal_raises_what_ccxt_raises_live(case: Case, refusal: Refusal) -> None:
    async with venue(case.name) as v:
        address, amount = KAS_ADDRESS, 100
        if refusal is Refusal.NOT_WHITELISTED:
            address = kaspa_address.encode(bytes(32))
        elif refusal is Refusal.INSUFFICIENT_BALANCE:
            amount = int(START_KAS)  # plus the fee, or the fee on top: more than there is
            if case.fee_included:
                amount += 1
        elif refusal is Refusal.BELOW_MINIMUM:
            amount = 9
        else:
            v.wallet.suspend("KAS", "KAS")
        with pytest.raises(errors.BaseError) as caught:
            await v.ex.withdraw("KAS", amount, address, NET)
        assert type(caught.value) is case.raises[refusal], caught.value
        assert v.kas() == START_KAS  # nothing debited
        assert v.wallet.withdrawals == {}


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_deposit_address_is_a_stable_kaspa_address(case: Case) -> None:
    async with venue(case.name) as v:
        first = await v.ex.fetch_deposit_address("KAS", NET)
        again = await v.ex.fetch_deposit_address("KAS", NET)
        assert first["address"] == again["address"]
        assert kaspa_address.is_valid(first["address"])
        assert first["network"] == case.network


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.name)
async def test_withdrawals_are_listed_newest_first(case: Case) -> None:
    async with venue(case.name) as v:
        ids = [(await v.ex.withdraw("KAS", n, KAS_ADDRESS, NET))["id"] for n in (10, 20, 30)]
        rows = await v.ex.fetch_withdrawals("KAS")
        # ccxt sorts by timestamp ascending (same-second rows keep the exchange's order).
        assert sorted(r["id"] for r in rows) == sorted(ids)
        assert len(set(ids)) == 3


async def test_kucoin_fee_inside_the_amount_with_include_fee() -> None:
    async with venue("kucoin") as v:
        await v.ex.withdraw("KAS", 100, KAS_ADDRESS, {**NET, "includeFee": True})
        assert v.kas() == START_KAS - 100


@pytest.mark.parametrize("case", [c for c in CASES if c.name != "gate"], ids=lambda c: c.name)
async def test_currency_fee_and_minimum_come_from_the_wallet(case: Case) -> None:
    async with venue(case.name) as v:
        v.wallet.set_network(Network(fee=Decimal("2.5"), minimum=Decimal("25")))
        await v.ex.load_markets(True)
        networks = v.ex.currencies["KAS"]["networks"]
        (net,) = networks.values()
        assert net["fee"] == 2.5
        # MEXC: ccxt 4.5.90 leaves the minimum a string ('25'); the others give a float.
        assert Decimal(str(net["limits"]["withdraw"]["min"])) == 25


def test_a_stage_may_not_be_skipped_or_left_after_the_end() -> None:
    from tests.emulators.matching import MatchingEngine
    from tests.emulators.matching_types import Market

    engine = MatchingEngine([Market()], clock=lambda: 0.0)
    engine.add_account("a", {"KAS": "1000"})
    wallet = Wallet(engine, str)
    wallet.allow("a", KAS_ADDRESS)
    w = wallet.request("a", "KAS", "KAS", KAS_ADDRESS, Decimal(100))
    with pytest.raises(ValueError):
        wallet.advance(w.id, Stage.SENT)  # not processed yet
    wallet.advance(w.id, Stage.PROCESSING)
    wallet.advance(w.id, Stage.SENT, txid="ab" * 32)
    wallet.advance(w.id, Stage.COMPLETED)
    with pytest.raises(ValueError):
        wallet.advance(w.id, Stage.FAILED)  # a completed withdrawal is not refunded
    assert engine.balance("a", "KAS").available == Decimal(899)


@pytest.mark.parametrize(
    ("address", "valid"),
    [
        # rusty-kaspa's address test vectors (crypto/addresses): a zero Schnorr key, and a
        # mainnet address from Kaspa's wallet documentation.
        ("kaspa:qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqkx9awp4e", True),
        ("kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73", True),
        ("kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g74", False),
        ("kaspatest:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73", False),
        ("qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73", False),
    ],
)
def test_kaspa_address_checksum(address: str, valid: bool) -> None:
    assert kaspa_address.is_valid(address) is valid


def test_kaspa_address_round_trip() -> None:
    payload = bytes(range(32))
    for prefix in ("kaspa", "kaspatest"):
        address = kaspa_address.encode(payload, prefix=prefix)
        assert kaspa_address.decode(address) == (prefix, 0, payload)


@pytest.mark.parametrize("name", ["mexc", "kucoin", "bingx"])
async def test_a_lost_answer_leaves_one_withdrawal_to_find(name: str) -> None:
    """The request is processed but its answer is lost (a crash or timeout between request and
    answer): the withdrawal exists once, debited once, and the history shows it."""
    paths = {
        "mexc": "/api/v3/capital/withdraw",
        "kucoin": "/api/v3/withdrawals",
        "bingx": "/openApi/wallets/v1/capital/withdraw/apply",
    }
    async with venue(name) as v:
        v.emu.inject_fault("POST", paths[name], status=504, after=True)
        with pytest.raises(errors.BaseError):
            await v.ex.withdraw("KAS", 100, KAS_ADDRESS, NET)
        rows = await v.ex.fetch_withdrawals("KAS")
        assert len(rows) == 1 and rows[0]["address"] == KAS_ADDRESS
        assert len(v.wallet.withdrawals) == 1
        assert v.kas() == START_KAS - next(iter(v.wallet.withdrawals.values())).debited


async def test_mexc_process_mode_drives_the_wallet_over_admin_endpoints() -> None:
    async with venue("mexc") as v:
        root = v.emu.base_url + "/_emu/wallet/"
        async with aiohttp.ClientSession() as http:
            other = kaspa_address.encode(bytes(range(32)))
            async with http.post(root + "allow", json={"address": other}) as resp:
                assert resp.status == 200
            async with http.post(root + "network", json={"fee": "2"}) as resp:
                assert resp.status == 200
            sent = await v.ex.withdraw("KAS", 100, other, NET)
            for stage in ("processing", "sent"):
                async with http.post(root + "advance", json={"id": sent["id"], "stage": stage}):
                    pass
            async with http.post(root + "withdrawals", json={}) as resp:
                (row,) = await resp.json()
            assert row["stage"] == "sent" and row["txid"] and row["address"] == other
            assert row["fee"] == "2" and row["debited"] == "100"
            async with http.post(root + "advance", json={"id": sent["id"], "stage": "x"}) as resp:
                assert resp.status == 400
            async with http.post(root + "suspend", json={}) as resp:
                assert resp.status == 200
        with pytest.raises(errors.ExchangeError):
            await v.ex.withdraw("KAS", 100, other, NET)


@pytest.mark.parametrize(
    ("name", "param", "field"),
    [
        ("mexc", "withdrawOrderId", "withdrawOrderId"),
        ("gate", "withdraw_order_id", "withdraw_order_id"),
        ("bingx", "withdrawOrderId", "withdrawOrderId"),
    ],
)
async def test_client_withdrawal_id_is_listed_back(name: str, param: str, field: str) -> None:
    """Where the exchange takes a client id, ccxt passes it through and the history returns it
    in ``info``: a settlement can find its own withdrawal after a lost answer."""
    async with venue(name) as v:
        await v.ex.withdraw("KAS", 100, KAS_ADDRESS, {**NET, param: "sweep-1"})
        (row,) = await v.ex.fetch_withdrawals("KAS")
        assert row["info"][field] == "sweep-1"


async def test_mexc_history_defaults_to_the_last_seven_days() -> None:
    async with venue("mexc") as v:
        sent = await v.ex.withdraw("KAS", 100, KAS_ADDRESS, NET)
        old = v.wallet.withdrawals[sent["id"]]
        week_ms = 7 * 86_400_000
        v.wallet.withdrawals[old.id] = replace(old, created_ms=old.created_ms - week_ms - 1000)
        assert await v.ex.fetch_withdrawals("KAS") == []
        since = old.created_ms - week_ms - 2000
        assert [r["id"] for r in await v.ex.fetch_withdrawals("KAS", since)] == [old.id]


async def test_mexc_state_file_keeps_withdrawals_across_a_restart(tmp_path: Path) -> None:
    state = tmp_path / "mexc.json"
    async with MexcEmulator(KEY, SECRET, state_path=state) as emu:
        emu.wallet.allow(KEY, KAS_ADDRESS)
        emu.wallet.set_network(Network(fee=Decimal("2")))
        ex = emu.ccxt()
        try:
            sent = await ex.withdraw("KAS", 100, KAS_ADDRESS, NET)
        finally:
            await ex.close()
        emu.wallet.advance(sent["id"], Stage.PROCESSING)
        before = emu.balances()["KAS"]
    async with MexcEmulator(KEY, SECRET, state_path=state) as emu:
        assert emu.balances()["KAS"] == before
        assert emu.wallet.withdrawals[sent["id"]].stage is Stage.PROCESSING
        assert emu.wallet.network("KAS", "KAS").fee == Decimal("2")
        emu.wallet.advance(sent["id"], Stage.SENT)
        ex = emu.ccxt()
        try:
            again = await ex.withdraw("KAS", 100, KAS_ADDRESS, NET)  # still whitelisted
            rows = await ex.fetch_withdrawals("KAS")
        finally:
            await ex.close()
        assert again["id"] != sent["id"]
        assert {r["id"] for r in rows} == {sent["id"], again["id"]}
