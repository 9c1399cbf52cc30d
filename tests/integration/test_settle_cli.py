"""``kasmm settle`` end to end: the real command in a subprocess, ccxt against the MEXC emulator,
the SDK's node client against the loopback wRPC node, one ledger.

What issue 20 checks: ``--plan`` prints the amounts, the band, the limits and the reasons and
moves nothing; ``--execute`` withdraws exactly the planned amount, the ledger trail is complete,
the daily limit holds over runs, a halted profile or a stale feed holds the sweep, missing
withdrawal credentials refuse ``--execute`` naming the file and the field, the withdrawal key is
never printed; and a process killed between the request and the confirmation is resumed by the
next ``--execute`` without a second withdrawal.

The emulated chain (:class:`Chain`) plays the exchange's and the network's part: each new
withdrawal is processed, sent (a txid) and completed, and its output appears at the node, deep
enough to be confirmed. MEXC's emulator keys an account by its API key, so the trading and the
withdrawal references (``${T_KEY}``, ``${WD_KEY}``: different variables, as the membership pass
requires) resolve to the one emulated key here.
"""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass
from decimal import Decimal as D
from pathlib import Path

import anyio
import pytest

from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from tests.emulators.kaspa_node import KaspaNodeEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wallet import KAS_ADDRESS, Stage

pytestmark = pytest.mark.anyio

KEY = "wd-key-3b1f0c9e7a"
SECRET = "wd-secret-9c2e55aa41d0-do-not-print"
ACCOUNT = "mexc-main"
ROOT = Path(__file__).resolve().parents[2]


def _profile(url: str) -> str:
    return textwrap.dedent(f"""\
        name: mexc-kas
        venue:
          type: ccxt
          exchange: mexc
          account: {ACCOUNT}
          rest_url: {url}
          credentials: {{api_key: "${{T_KEY}}", secret: "${{T_SECRET}}"}}
        symbol: KAS/USDT
        modes:
          passive: {{spread_bps: 50, size: 1000, levels: 2}}
        inventory: {{target_share: 0.5}}
        kill_switch: {{max_drawdown: null, max_daily_loss: null}}
        """)


def _settlement(node_url: str, *, max_per_day: int = 150000) -> str:
    return textwrap.dedent(f"""\
        settlement:
          {ACCOUNT}:
            network: mainnet
            destination: {{address: "{KAS_ADDRESS}"}}
            withdrawal_credentials: {{api_key: "${{WD_KEY}}", secret: "${{WD_SECRET}}"}}
            node_url: {node_url}
            confirmations: 10
            assets:
              KAS:
                keep_at_least: 10000
                keep_at_most: 50000
                min_sweep: 1000
                max_sweep: 100000
                max_per_day: {max_per_day}
              USDT:
                keep_at_least: 5000
        """)


class Chain:
    """The exchange processes and sends every new withdrawal; the node sees it confirmed."""

    def __init__(self, emu: MexcEmulator, node: KaspaNodeEmulator) -> None:
        self.emu, self.node = emu, node
        self.running = False

    def settle_all(self) -> None:
        for w in list(self.emu.wallet.withdrawals.values()):
            if w.stage in (Stage.REQUESTED, Stage.REVIEWING):
                self.emu.wallet.advance(w.id, Stage.PROCESSING)
                w = self.emu.wallet.advance(w.id, Stage.SENT)
                assert w.txid is not None
                sompi = int(w.received * 10**8)
                self.node.pay(w.address, w.txid, sompi, depth=20)
                self.emu.wallet.advance(w.id, Stage.COMPLETED)

    async def run(self) -> None:
        while True:
            if self.running:
                self.settle_all()
            await anyio.sleep(0.05)


@dataclass
class Setup:
    emu: MexcEmulator
    node: KaspaNodeEmulator
    chain: Chain
    profiles: Path
    state: Path

    def env(self, *, withdrawal: bool = True) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if k not in ("WD_KEY", "WD_SECRET")}
        env.update(T_KEY=KEY, T_SECRET=SECRET, PYTHONPATH=str(ROOT), KASMM_PURE="1")
        env.pop("CREDENTIALS_DIRECTORY", None)
        if withdrawal:
            env.update(WD_KEY=KEY, WD_SECRET=SECRET)
        return env

    def argv(self, *args: str) -> list[str]:
        return [
            sys.executable,
            "-m",
            "kasmm",
            "--log-format",
            "json",
            "--log-level",
            "debug",
            "settle",
            str(self.profiles),
            "--state-dir",
            str(self.state),
            *args,
        ]

    async def settle(self, *args: str, withdrawal: bool = True) -> tuple[int, str, str]:
        done = await anyio.run_process(
            self.argv(*args), env=self.env(withdrawal=withdrawal), check=False, cwd=ROOT
        )
        out, err = done.stdout.decode(), done.stderr.decode()
        for text in (out, err):
            assert SECRET not in text and KEY not in text
        return done.returncode, out, err

    def sweeps(self) -> list[tuple[str, D, str, list[str]]]:
        with Ledger(self.state / "kasmm.sqlite") as ledger:
            book = SettlementBook(ledger)
            return [
                (r.state, r.amount, r.address, [s.state for s in book.steps(r.key)])
                for r in book.sweeps(ACCOUNT)
            ]


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    balances = {"KAS": "300000", "USDT": "1000"}
    async with MexcEmulator(KEY, SECRET, balances=balances) as emu, KaspaNodeEmulator() as node:
        emu.set_mid("0.1", 20, 5, 50000)
        emu.wallet.allow(KEY, KAS_ADDRESS)
        profiles = tmp_path / "profiles"
        profiles.mkdir()
        (profiles / "mexc-kas.yaml").write_text(_profile(emu.base_url))
        (profiles / "_settlement.yaml").write_text(_settlement(node.url))
        # A budget for a loopback emulator: settlement draws from the account's (MEXC's
        # published one would make every run wait ~2 s for its market list's weight).
        (profiles / "_accounts.yaml").write_text(
            f"accounts:\n  {ACCOUNT}: {{capacity: 1000, refill_per_s: 1000}}\n"
        )
        chain = Chain(emu, node)
        async with anyio.create_task_group() as tg:
            tg.start_soon(chain.run)
            yield Setup(emu, node, chain, profiles, tmp_path / "state")
            tg.cancel_scope.cancel()


def _kas(emu: MexcEmulator) -> D:
    return emu.engine.matching.balance(KEY, "KAS").available


async def test_plan_prints_amounts_band_limits_and_reasons(setup: Setup) -> None:
    code, out, err = await setup.settle("--plan", withdrawal=False)  # no withdrawal key here
    assert code == 0, out + err
    assert f"account {ACCOUNT} (mexc): plan" in out
    # 300000 held, ceiling 50000: the excess less the fee is 249999; max_sweep binds
    # ccxt's balances arrive as floats: 300000.0 is 300000
    assert re.search(
        r"KAS: holds 300000(\.0)? \(floor 10000, ceiling 50000\): sweep 100000 "
        r"\(fee 1(\.0)?; limited by per_sweep\)",
        out,
    ), out
    assert re.search(
        r"USDT: holds 1000(\.0)? \(floor 5000, ceiling None\): top up 4000 \(below the band\)",
        out,
    ), out
    assert "top up: deposit 4000 USDT to the exchange account (" in out
    assert setup.emu.wallet.withdrawals == {} and setup.sweeps() == []
    code, out, _ = await setup.settle("--json")
    (account,) = json.loads(out)["accounts"]
    kas = account["assets"][0]
    assert (kas["action"], D(kas["amount"]), D(kas["ceiling"]), kas["capped_by"]) == (
        "sweep",
        D(100000),
        D(50000),
        ["per_sweep"],
    )


async def test_a_kas_top_up_prints_the_exchanges_deposit_address(setup: Setup) -> None:
    setup.emu.engine.set_balance(KEY, "KAS", "4000")
    code, out, err = await setup.settle("--execute")
    assert code == 0, out + err
    address = setup.emu.wallet.deposit_address(KEY, "KAS", "KAS")
    assert address.startswith("kaspa:")
    # floor: keep_at_least 10000 (the profile's need at 0.1 is smaller)
    assert f"top up: send 6000 KAS to {address} from your wallet; kasmm never signs" in out
    assert setup.emu.wallet.withdrawals == {}


async def test_a_refused_sweep_fails_with_its_reason_and_exit_1(setup: Setup) -> None:
    whitelist = setup.emu.wallet.whitelist
    assert whitelist is not None
    whitelist.clear()
    code, out, _ = await setup.settle("--execute")
    assert code == 1
    assert ": failed (address_not_whitelisted)" in out
    assert [s[0] for s in setup.sweeps()] == ["failed"] and setup.emu.wallet.withdrawals == {}
    assert _kas(setup.emu) == D(300000)


async def test_execute_needs_the_withdrawal_credentials(setup: Setup) -> None:
    code, out, err = await setup.settle("--execute", withdrawal=False)
    assert code == 2 and out == ""
    path = setup.profiles / "_settlement.yaml"
    assert f"{path}:5:" in err
    assert "settlement.mexc-main.withdrawal_credentials.api_key" in err and "WD_KEY" in err
    assert setup.emu.wallet.withdrawals == {}


async def test_execute_sweeps_the_plan_and_the_daily_limit_holds_over_runs(setup: Setup) -> None:
    setup.chain.running = True
    code, out, err = await setup.settle("--execute", "--wait", "60")
    assert code == 0, out + err
    (w1,) = setup.emu.wallet.withdrawals.values()
    assert (w1.amount, w1.address) == (D(100000), KAS_ADDRESS)
    assert _kas(setup.emu) == D(200000)
    assert "sweep mexc-main:KAS:" in out and ": 100000 KAS to " in out and "confirmed" in out
    trail = ["requested", "accepted", "sent", "confirmed"]
    assert setup.sweeps() == [("confirmed", D(100000), KAS_ADDRESS, trail)]
    # the second run: 150000 a day, 100000 swept today: 50000 left
    code, out, err = await setup.settle("--execute", "--wait", "60")
    assert code == 0, out + err
    assert re.search(r"sweep 50000 \(fee 1(\.0)?; limited by per_day\)", out), out
    assert [s[:2] for s in setup.sweeps()] == [("confirmed", D(100000)), ("confirmed", D(50000))]
    # the third: the limit is reached; nothing moves though the excess is still there
    code, out, _ = await setup.settle("--execute")
    assert code == 0 and "held: today's sweep limit is reached" in out
    assert sorted(w.amount for w in setup.emu.wallet.withdrawals.values()) == [D(50000), D(100000)]
    assert _kas(setup.emu) == D(150000)


async def test_a_halted_profile_or_a_stale_feed_holds_the_sweep(setup: Setup) -> None:
    setup.state.mkdir()
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        ledger.record_risk_event("mexc-kas", 1.0, "trip", "max_drawdown", "halt", "halted", {})
    code, out, _ = await setup.settle("--execute")
    assert code == 0 and "held: a profile of the account is halted" in out
    with Ledger(setup.state / "kasmm.sqlite") as ledger:
        assert ledger.reset("mexc-kas", 2.0, "test")
    setup.emu.set_mid("0.1", 20, 0, 0)  # an empty book: no mid
    code, out, _ = await setup.settle("--execute")
    assert code == 0 and "held: a market feed is stale" in out
    assert setup.emu.wallet.withdrawals == {} and setup.sweeps() == []


@pytest.mark.parametrize("answer", ["received", "lost"])
async def test_a_crash_between_request_and_confirmation_resumes_without_a_second_withdrawal(
    setup: Setup, answer: str
) -> None:
    """Killed after the request: with its answer in the ledger (``accepted``), or with the
    answer lost on the way (the exchange took it; the ledger still says ``requested``)."""
    (setup.profiles / "_settlement.yaml").write_text(
        _settlement(setup.node.url, max_per_day=100000)
    )
    if answer == "lost":
        setup.emu.inject_fault("POST", "/api/v3/capital/withdraw", status=504, after=True)
    process = await anyio.open_process(setup.argv("--execute", "--wait", "120"), env=setup.env())
    try:
        with anyio.fail_after(60):
            while not setup.emu.wallet.withdrawals or not _stored(setup, answer):
                await anyio.sleep(0.05)
        process.send_signal(signal.SIGKILL)
        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()
    (before,) = setup.sweeps()
    assert before[0] in ("requested", "accepted") and (answer == "lost") == (
        before[0] == "requested"
    )
    setup.chain.settle_all()  # meanwhile, the exchange sent it and the chain confirmed it
    code, out, err = await setup.settle("--execute", "--wait", "60")
    assert code == 0, out + err
    (w1,) = setup.emu.wallet.withdrawals.values()
    assert w1.amount == D(100000)
    (after,) = setup.sweeps()
    assert after[:3] == ("confirmed", D(100000), KAS_ADDRESS)
    assert after[3][0] == "requested" and after[3][-2:] == ["sent", "confirmed"]
    assert "held: today's sweep limit is reached" in out
    assert SECRET.encode() not in (setup.state / "kasmm.sqlite").read_bytes()


def _stored(setup: Setup, answer: str) -> bool:
    """The ledger holds the sweep in the state its answer (or the loss of it) leaves."""
    if not (setup.state / "kasmm.sqlite").exists():
        return False
    want = "accepted" if answer == "received" else "requested"
    return [s[0] for s in setup.sweeps()] == [want]
