"""A settlement process killed between request and confirmation, resumed by a new one.

A real process (``tests/settle_child.py``) records a sweep in a ledger file and requests it
from the MEXC emulator through ccxt; the emulator kills it with SIGKILL the moment its wallet
takes the request (before the answer is written back: the child never learns the id). A new
Settler on the same ledger then finds the withdrawal by its client id and follows it to
``confirmed`` at the node, with exactly one withdrawal at the exchange.
"""

from __future__ import annotations

import os
import signal
import sqlite3
import sys
from contextlib import closing
from decimal import Decimal
from pathlib import Path

import anyio
import pytest

from kasmm.settle.address import validate_address
from kasmm.settle.ccxt_desk import CcxtWithdrawalDesk
from kasmm.settle.destination import FixedAddress
from kasmm.settle.executor import Settler
from kasmm.settle.sdk_node import SdkKaspaNode
from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from tests.emulators.kaspa_node import KaspaNodeEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wallet import KAS_ADDRESS, Stage
from tests.settle_rig import KEY, SECRET, START_KAS, link_node, mexc_client

pytestmark = pytest.mark.anyio

ROOT = Path(__file__).resolve().parents[2]


def ledger_states(path: Path) -> list[tuple[str, str]]:
    """(key, state) of every sweep, read by a connection of its own (what is committed)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        return list(conn.execute("SELECT sweep_key, state FROM settlements"))


async def test_killed_after_the_request_is_resumed_to_confirmed_without_a_second_withdrawal(
    tmp_path: Path,
) -> None:
    ledger_path = tmp_path / "state" / "kasmm.sqlite"
    balances = {"KAS": str(START_KAS), "USDT": "10000"}
    async with MexcEmulator(KEY, SECRET, balances=balances) as emu, KaspaNodeEmulator() as chain:
        emu.wallet.allow(KEY, KAS_ADDRESS)
        link_node(emu.wallet, chain)
        seen_at_kill: list[list[tuple[str, str]]] = []
        child: list[int] = []
        linked = emu.wallet.on_change

        def kill_when_taken() -> None:
            if linked is not None:
                linked()
            if emu.wallet.withdrawals and child and not seen_at_kill:
                seen_at_kill.append(ledger_states(ledger_path))
                os.kill(child[0], signal.SIGKILL)

        emu.wallet.on_change = kill_when_taken
        env = {**os.environ, "PYTHONPATH": str(ROOT), "KASMM_PURE": "1"}
        command = [
            sys.executable,
            "-m",
            "tests.settle_child",
            "--ledger",
            str(ledger_path),
            "--url",
            emu.base_url,
            "--address",
            KAS_ADDRESS,
            "--amount",
            "250",
        ]
        async with await anyio.open_process(command, env=env, cwd=ROOT) as proc:
            child.append(proc.pid)
            with anyio.fail_after(60):
                await proc.wait()
        assert proc.returncode == -signal.SIGKILL
        # killed with the request committed as requested, and taken by the exchange
        ((key, state),) = seen_at_kill[0]
        assert state == "requested"
        (w,) = emu.wallet.withdrawals.values()
        assert w.amount == Decimal(250) and w.client_id is not None

        with Ledger(ledger_path) as ledger:
            book = SettlementBook(ledger)
            (before,) = book.sweeps("acct")
            assert (before.key, before.state, before.withdrawal_id) == (key, "requested", None)
            desk = CcxtWithdrawalDesk(mexc_client(emu.base_url))
            try:
                async with SdkKaspaNode(chain.url, "mainnet") as node:
                    settler = Settler(
                        account="acct",
                        network="mainnet",
                        confirmations=10,
                        book=book,
                        desk=desk,
                        node=node,
                        destination=FixedAddress(validate_address(KAS_ADDRESS, "mainnet")),
                    )
                    (rec,) = await settler.advance_open()
                    assert (rec.state, rec.withdrawal_id) == ("accepted", w.id)
                    for stage in (Stage.PROCESSING, Stage.SENT, Stage.COMPLETED):
                        emu.wallet.advance(w.id, stage)
                    (rec,) = await settler.advance_open()
                    assert rec.state == "sent" and rec.txid == emu.wallet.withdrawals[w.id].txid
                    chain.advance(10)
                    (rec,) = await settler.advance_open()
                    assert rec.state == "confirmed"
            finally:
                await desk.close()
            trail = book.steps(key)
            assert [s.state for s in trail] == ["requested", "accepted", "sent", "confirmed"]
            assert trail[1].detail == {"found_by": "client_id", "withdrawal_id": w.id}
            assert trail[3].detail == {"confirmations": 10, "received": "249"}
        assert len(emu.wallet.withdrawals) == 1
        posts = [r for r in emu.requests if r.path == "/api/v3/capital/withdraw"]
        assert len(posts) == 1
        assert emu.balances()["KAS"][0] == START_KAS - 250
