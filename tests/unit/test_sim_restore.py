"""A simulated account resuming its ledger: opening balances, fills settled on them, the restore."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from kasmm.clock import VirtualClock
from kasmm.config.schema import AS2008Market, SimVenueConfig
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.journal import BotJournal
from kasmm.limiter import TokenBucket
from kasmm.store import AsyncLedger, Ledger
from kasmm.store.balances import settle_fills
from kasmm.venues.guard import TimeoutVenue
from kasmm.venues.limited import RateLimitedVenue
from kasmm.venues.sim import SimVenue
from kasmm.venues.sim.account import simulated_account

D = Decimal


def fill(
    n: int, side: Side, price: str, size: str, fee: str = "0", fee_asset: str = "USDT"
) -> Fill:
    return Fill(
        trade_id=TradeId(f"t-{n}"),
        client_id=ClientOrderId(f"c-{n}"),
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        fee_asset=fee_asset,
        ts=float(n),
    )


FILLS = [
    fill(1, Side.BUY, "0.08", "1000", "0.08"),  # pays 80 + 0.08 USDT
    fill(2, Side.SELL, "0.09", "400", "-0.0036"),  # receives 36 + a 0.0036 rebate
    fill(3, Side.BUY, "0.07", "100", "0.5", fee_asset="KAS"),  # fee taken from the base
    fill(4, Side.SELL, "0.07", "10", "0.01", fee_asset="MX"),  # fee in a third asset
]


def test_fills_settle_like_the_simulator() -> None:
    opening = {"KAS": D(5000), "USDT": D(400), "MX": D(1)}
    assert settle_fills(opening, FILLS, "KAS", "USDT") == {
        "KAS": D(5000) + 1000 - 400 + 100 - D("0.5") - 10,
        "USDT": D(400) - 80 - D("0.08") + 36 + D("0.0036") - 7 + D("0.7"),
        "MX": D("0.99"),
    }
    assert settle_fills({}, [], "KAS", "USDT") == {"KAS": 0, "USDT": 0}


def test_opening_balances_are_stored_once_and_fills_settle_on_them(tmp_path: Path) -> None:
    with Ledger(tmp_path / "l.sqlite") as ledger:
        assert ledger.implied_balances("p", "KAS", "USDT") is None
        assert ledger.record_opening_balances("p", {"KAS": D(5000), "USDT": D("400.5")}, 1.0)
        assert not ledger.record_opening_balances("p", {"KAS": D(1), "USDT": D(1)}, 2.0)
        assert ledger.implied_balances("p", "KAS", "USDT") == {"KAS": D(5000), "USDT": D("400.5")}
        for f in FILLS[:2]:
            ledger.record_fill("p", f)
        ledger.record_fill("other", FILLS[2])  # another profile's fill is not this account's
        assert ledger.implied_balances("p", "KAS", "USDT") == {
            "KAS": D(5600),
            "USDT": D("400.5") - D("80.08") + D("36.0036"),
        }
        assert ledger.implied_balances("other", "KAS", "USDT") is None


def sim_venue(clock: VirtualClock, **config: object) -> RateLimitedVenue:
    """A sim venue behind the decorators ``build_venue`` puts around it."""
    cfg = SimVenueConfig.model_validate({"type": "sim", "seed": 1, **config})
    inner = SimVenue(cfg, "KAS/USDT", clock)
    return RateLimitedVenue(TimeoutVenue(inner, 5.0), TokenBucket(100, 100, clock))


@pytest.mark.anyio
async def test_a_fresh_ledger_keeps_the_configured_balances_a_restart_resumes_the_ledger(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(0.0)
    with Ledger(tmp_path / "l.sqlite") as sync_ledger:
        journal = BotJournal("p", "USDT", AsyncLedger(sync_ledger))
        first = sim_venue(clock, balances={"KAS": 5000, "USDT": 400})
        await first.connect()
        assert await journal.restore_simulated_balances(first, "KAS", "USDT", 10.0) is None
        assert sync_ledger.implied_balances("p", "KAS", "USDT") == {"KAS": D(5000), "USDT": D(400)}
        for f in FILLS[:2]:
            assert await journal.fill(f)

        # The restart's configuration says otherwise: the ledger wins.
        second = sim_venue(clock, balances={"KAS": 1, "USDT": 1})
        await second.connect()
        with capture_logs() as logs:
            restored = await journal.restore_simulated_balances(second, "KAS", "USDT", 20.0)
        expected = {"KAS": D(5600), "USDT": D(400) - D("80.08") + D("36.0036")}
        assert restored == expected
        balances = await second.fetch_balances()
        assert {a: balances.total(a) for a in ("KAS", "USDT")} == expected
        (log,) = [e for e in logs if e["event"] == "balances_restored"]
        assert log["balances"] == {"KAS": "5600", "USDT": "355.9236"}
        assert log["configured"] == {"KAS": "1", "USDT": "1"}


@pytest.mark.anyio
async def test_no_restore_without_ledger_for_as2008_or_for_a_real_exchange(
    tmp_path: Path,
) -> None:
    clock = VirtualClock(0.0)
    plain = sim_venue(clock)
    await plain.connect()
    assert (
        await BotJournal("p", "USDT", None).restore_simulated_balances(plain, "KAS", "USDT", 0.0)
        is None
    )

    as_venue = sim_venue(clock, market=AS2008Market(model="as2008"))
    await as_venue.connect()
    inner = simulated_account(as_venue)
    assert inner is not None and inner.starting_balances() is None
    with pytest.raises(RuntimeError):
        inner.restore_balances({"KAS": D(1)})

    class Exchange:  # no simulated account anywhere behind it
        inner = None

    with Ledger(tmp_path / "l.sqlite") as sync_ledger:
        journal = BotJournal("p", "USDT", AsyncLedger(sync_ledger))
        assert await journal.restore_simulated_balances(as_venue, "XYZ", "USD", 0.0) is None
        assert await journal.restore_simulated_balances(Exchange(), "KAS", "USDT", 0.0) is None
        assert sync_ledger.implied_balances("p", "KAS", "USDT") is None  # nothing recorded
