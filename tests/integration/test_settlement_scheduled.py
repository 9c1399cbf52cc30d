"""A scheduled settlement's real path: the supervisor's ``settle`` (the settlement service over
ccxt against the MEXC emulator and the SDK against the loopback node), its gates, and the
ledger watch announcing each sweep through the notifier, the withdrawal key (in the
environment) never in a message."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal as D
from pathlib import Path

import anyio
import pytest

from kasmm.alerts.notifier import Notifier
from kasmm.config.loader import load_paths
from kasmm.config.notify import Level, NotifyFile
from kasmm.core.settlement import Gates
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.state_dir import prepare_state_dir
from kasmm.supervisor.settle_wiring import scheduled_settle
from kasmm.supervisor.settling import Settling
from tests.emulators.kaspa_node import KaspaNodeEmulator
from tests.emulators.mexc import MexcEmulator
from tests.emulators.wallet import KAS_ADDRESS
from tests.integration.test_settle_cli import (
    ACCOUNT,
    KEY,
    SECRET,
    Chain,
    _profile,
    _settlement,
)
from tests.support import eventually

pytestmark = pytest.mark.anyio

HOOK = "json://127.0.0.1:9/hook/settle-canary-77"


class Sender:
    """Records what would reach the phone."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str]] = []

    def __call__(self, url: str, title: str, body: str, level: Level, timeout_s: float) -> None:
        self.sent.append((title, body))


class Rig:
    def __init__(self, emu: MexcEmulator, chain: Chain, profiles: Path, state: Path) -> None:
        self.emu, self.chain, self.profiles, self.state = emu, chain, profiles, state


@pytest.fixture
async def rig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Rig]:
    # The withdrawal key lives in the environment, as in production.
    for name, value in (
        ("T_KEY", KEY),
        ("T_SECRET", SECRET),
        ("WD_KEY", KEY),
        ("WD_SECRET", SECRET),
    ):
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("CREDENTIALS_DIRECTORY", raising=False)
    balances = {"KAS": "300000", "USDT": "10000"}
    async with MexcEmulator(KEY, SECRET, balances=balances) as emu, KaspaNodeEmulator() as node:
        emu.set_mid("0.1", 20, 5, 50000)
        emu.wallet.allow(KEY, KAS_ADDRESS)
        profiles = tmp_path / "profiles"
        profiles.mkdir()
        profile = _profile(emu.base_url)
        if "kill_switch" not in profile:  # a live profile declares its loss limits
            profile += "kill_switch: {max_daily_loss: null, max_drawdown: null}\n"
        (profiles / "mexc-kas.yaml").write_text(profile)
        (profiles / "_settlement.yaml").write_text(_settlement(node.url, max_per_day=100000))
        chain = Chain(emu, node)
        async with anyio.create_task_group() as tg:
            tg.start_soon(chain.run)
            yield Rig(emu, chain, profiles, prepare_state_dir(tmp_path / "state"))
            tg.cancel_scope.cancel()


async def test_a_scheduled_run_sweeps_and_every_step_is_announced_without_the_key(
    rig: Rig,
) -> None:
    sender = Sender()
    notifier = Notifier(sender=sender, env={"HOOK": HOOK})
    notifier.configure(
        NotifyFile.model_validate({"targets": [{"name": "phone", "url": "${HOOK}"}], "retries": 0})
    )
    ledger = Ledger(rig.state / "kasmm.sqlite")
    settling = Settling({}, notifier, AsyncLedger(ledger), watch_poll_s=0.05)
    load = load_paths([rig.profiles])
    assert load.issues == []
    assert (
        await settling.reload(rig.profiles, {n: lp.profile for n, lp in load.profiles.items()})
        == []
    )
    settle = scheduled_settle(settling, rig.state)
    assert settling.watch is not None
    async with anyio.create_task_group() as tg:
        await tg.start(notifier.run)
        await settling.start(tg)
        await eventually(lambda: settling.overview is not None, 10)

        # Gated: a halted member holds the sweep; nothing leaves the exchange.
        held = await settle(ACCOUNT, Gates(halted_profiles=("mexc-kas",)))
        assert held.requested == ()  # type: ignore[attr-defined]
        assert rig.emu.wallet.withdrawals == {}

        # Its member is not run here, so the supervisor's own gates would hold it too.
        assert settling.gates(ACCOUNT).stale_feeds == ("mexc-kas",)
        # Not gated (a live, fresh member): the run requests the sweep; the next one (after
        # the chain confirms) moves it to confirmed. One withdrawal.
        run = await settle(ACCOUNT, Gates())
        assert [r.amount for r in run.requested] == [D(100000)]  # type: ignore[attr-defined]
        rig.chain.settle_all()  # the exchange sends it, the chain confirms it
        again = await settle(ACCOUNT, Gates())  # resumes it; the day's limit holds the rest
        assert [r.state for r in again.advanced] == ["confirmed"]  # type: ignore[attr-defined]
        assert again.requested == ()  # type: ignore[attr-defined]
        assert [r.state for r in SettlementBook(ledger).sweeps(ACCOUNT)] == ["confirmed"]
        assert len(rig.emu.wallet.withdrawals) == 1
        await eventually(lambda: any("confirmed" in title for title, _body in sender.sent), 10)
        tg.cancel_scope.cancel()
    await notifier.aclose()
    titles = [title for title, _body in sender.sent]
    assert titles[0].startswith("kasmm: settlement of 100000 KAS requested (mexc-main)")
    assert titles[-1].startswith("kasmm: settlement of 100000 KAS confirmed (mexc-main)")
    confirmed = sender.sent[-1][1]
    (w1,) = rig.emu.wallet.withdrawals.values()
    assert w1.txid is not None and w1.txid in confirmed
    everything = " ".join(t + b for t, b in sender.sent)
    assert KEY not in everything and SECRET not in everything
    ledger.close()
