"""Settlement in a running supervisor: ``_settlement.yaml`` loaded with the profiles (a bad edit
keeps the last good one and shows as a config error), the gates read from the member bots, the
ledger's sweeps in ``/status`` and the scheduled run handed to the injected settlement."""

from __future__ import annotations

import textwrap
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import anyio
import pytest

from kasmm.core.settlement import Gates
from kasmm.store import AsyncLedger
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SweepRecord
from kasmm.supervisor import Supervisor
from tests.integration.test_supervisor import VenueLog, profile_yaml, write
from tests.support import eventually

pytestmark = pytest.mark.anyio

ENV = {"K": "trade-key", "S": "trade-secret", "WD_KEY": "wd-key-1234", "WD_SECRET": "wd-s-5678"}

MEMBER = """\
name: kas-mexc
enabled: false
venue:
  type: ccxt
  exchange: mexc
  account: mexc-main
  credentials: {api_key: "${K}", secret: "${S}"}
symbol: KAS/USDT
modes:
  passive: {spread_bps: 50, size: 1000, levels: 2}
inventory: {target_share: 0.5}
kill_switch: {max_daily_loss: null, max_drawdown: null}
"""

SETTLEMENT = textwrap.dedent(
    """\
    settlement:
      mexc-main:
        network: mainnet
        destination:
          address: kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73
        withdrawal_credentials:
          api_key: ${WD_KEY}
          secret: ${WD_SECRET}
        node_url: ws://127.0.0.1:17110
        schedule:
          cron: "CRON"
          timezone: UTC
        assets:
          KAS: {keep_at_least: 1000, keep_at_most: 5000, max_sweep: 2000, max_per_day: 4000}
    """
)


async def test_settlement_in_a_running_supervisor(tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write(profiles, "p1", profile_yaml("p1"))
    (profiles / "kas-mexc.yaml").write_text(MEMBER)
    settlement = profiles / "_settlement.yaml"
    settlement.write_text(SETTLEMENT.replace("CRON", "0 3 * * *"))
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    runs: list[tuple[str, Gates]] = []

    async def settle(account: str, gates: Gates) -> str:
        runs.append((account, gates))
        return "planned"

    log = VenueLog()
    sup = Supervisor(
        profiles, venue_factory=log.factory, env=ENV, ledger=AsyncLedger(ledger), settle=settle
    )
    assert sup.settling.watch is not None
    sup.settling.watch.poll_s = 0.05
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sup.issues == []
        doc = sup.status()["settlements"]
        schedule = doc["mexc-main"]["schedule"]
        assert (schedule["cron"], schedule["running"]) == ("0 3 * * *", False)
        assert isinstance(schedule["next_run"], float)

        # A sweep recorded by another process (kasmm settle): shown within a read.
        other = Ledger(tmp_path / "kasmm.sqlite")
        SettlementBook(other).record_requested(
            SweepRecord(
                key="sw-1",
                account="mexc-main",
                exchange="mexc",
                asset="KAS",
                amount=D("1500"),
                fee=D("10"),
                address="kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73",
                network="mainnet",
                client_id="sw-1",
                state="requested",
                requested_ts=sup.wall_clock(),
            )
        )
        await eventually(lambda: sup.status()["settlements"]["mexc-main"]["open"] != [], 10)
        assert sup.status()["settlements"]["mexc-main"]["open"][0]["amount"] == "1500"

        # A run: the only member is disabled (gates nothing); the open sweep is pending.
        assert sup.settling.scheduler.fire("mexc-main")
        await eventually(lambda: len(runs) == 1, 10)
        assert runs[0] == ("mexc-main", Gates(pending=frozenset({"KAS"})))

        # The gates of a live member, read from its runner: fresh, then paused by an operator.
        config = sup.settling.scheduler.config
        assert config is not None
        sup.settling.scheduler.config = replace(config, members={"mexc-main": ("p1",)})
        await eventually(lambda: sup.settling.gates("mexc-main").stale_feeds == (), 10)
        assert sup.settling.gates("mexc-main").halted_profiles == ()
        sup.slots["p1"].pause("alice")
        assert sup.settling.gates("mexc-main").halted_profiles == ("p1",)
        sup.slots["p1"].resume()
        sup.settling.scheduler.config = config

        # A bad edit keeps the last good file and is reported like any config error.
        settlement.write_text(SETTLEMENT.replace("CRON", "0 25 * * *"))
        await sup.reload()
        assert [i.field for i in sup.issues] == ["settlement.mexc-main.schedule.cron"]
        assert any("_settlement.yaml:11:" in e for e in sup.status()["supervisor"]["config_errors"])
        assert sup.settling.scheduler.schedules()["mexc-main"].cron == "0 3 * * *"
        # Fixed: the new schedule, no error.
        settlement.write_text(SETTLEMENT.replace("CRON", "15 4 * * *"))
        await sup.reload()
        assert sup.issues == []
        assert sup.settling.scheduler.schedules()["mexc-main"].cron == "15 4 * * *"
        tg.cancel_scope.cancel()
    other.close()
    ledger.close()
