"""A supervisor shares market data between its profiles: a thin simulated venue references two
other simulated markets the supervisor trades (KAS/USDC converted through USDC/USDT); their
venues publish, the thin bot prices off them, /status shows each market, and when the
referenced profile stops the reference goes stale and the thin bot pauses."""

from __future__ import annotations

import textwrap
from pathlib import Path
from typing import Any

import anyio
import pytest

from kasmm.obs.metrics import render
from kasmm.supervisor import Supervisor
from tests.support import eventually

pytestmark = pytest.mark.anyio


def sim_profile(name: str, symbol: str, s0: str, extra: str = "") -> str:
    base, quote = symbol.split("/")
    return textwrap.dedent(
        f"""\
        name: {name}
        venue:
          type: sim
          market: {{s0: "{s0}", sigma_bps: 1, book_interval_s: 0.05, taker_rate_per_s: 0.5}}
          balances: {{{base}: "50000", {quote}: "50000"}}
        symbol: {symbol}
        modes:
          passive: {{spread_bps: 40, size: 100, levels: 1}}
        refresh: {{fallback_interval_s: 0.2}}
        """
    ) + textwrap.dedent(extra)


REFERENCE = """\
reference:
  sources:
    - exchange: sim
      symbol: KAS/USDC
      via: {exchange: sim, symbol: USDC/USDT}
  max_age_s: 0.5
"""


@pytest.fixture
def world(tmp_path: Path) -> Path:
    (tmp_path / "thin.yaml").write_text(sim_profile("thin", "KAS/USDT", "0.08", REFERENCE))
    (tmp_path / "deep.yaml").write_text(sim_profile("deep", "KAS/USDC", "0.08"))
    (tmp_path / "conv.yaml").write_text(sim_profile("conv", "USDC/USDT", "1"))
    return tmp_path


async def test_a_thin_profile_prices_off_markets_its_supervisor_trades(world: Path) -> None:
    sup = Supervisor(world)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sorted(sup.slots) == ["conv", "deep", "thin"]

        def reference() -> object:
            bot = sup.slots["thin"].bot
            return None if bot is None else bot.view().reference

        await eventually(lambda: getattr(reference(), "price", None) is not None, within_s=10)
        ref = reference()
        assert "sim:KAS/USDC" in ref.source and "sim:USDC/USDT" in ref.source  # type: ignore[attr-defined]

        markets = sup.status()["markets"]
        assert set(markets) == {"sim:KAS/USDT", "sim:KAS/USDC", "sim:USDC/USDT"}
        for key in ("sim:KAS/USDC", "sim:USDC/USDT"):  # read by thin, published by a venue
            row = markets[key]
            assert (row["source"], row["feed"], row["subscribers"]) == ("venue", "venue", 1)
            assert 0 <= row["age_s"] < 2
        assert markets["sim:KAS/USDT"]["subscribers"] == 0  # thin publishes; nobody reads
        rows = {r["name"]: r for r in sup.status()["profiles"]}
        assert rows["thin"]["market"] == "sim:KAS/USDT"

        # The referenced market's profile stops: its book ages past max_age_s, thin pauses.
        # (Its file goes away; thin's reference is now refused, so thin keeps its last good
        # version running, as for any file that stopped validating.)
        (world / "deep.yaml").unlink()
        await sup.reload()
        assert "deep" not in sup.slots and "thin" in sup.slots
        await eventually(
            lambda: getattr(reference(), "problem", None) == "reference_stale", within_s=10
        )
        assert sup.status()["markets"]["sim:KAS/USDC"]["age_s"] > 0.5
        tg.cancel_scope.cancel()


EXAMPLES = Path(__file__).resolve().parents[2] / "profiles"


async def test_the_deep_and_thin_examples_share_a_world_and_the_thin_one_prices_off_the_deep(
    tmp_path: Path,
) -> None:
    for example in ("sim-deep-kas-usdt.yaml", "sim-thin-kas-usdt.yaml"):
        (tmp_path / example).write_text((EXAMPLES / example).read_text())
    sup = Supervisor(tmp_path)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        assert sorted(sup.slots) == ["sim-deep-kas-usdt", "sim-thin-kas-usdt"]
        assert sup.worlds is not None and "kas" in sup.worlds  # one latent price for both

        def reference() -> object:
            bot = sup.slots["sim-thin-kas-usdt"].bot
            return None if bot is None else bot.view().reference

        await eventually(lambda: getattr(reference(), "price", None) is not None, within_s=10)
        assert getattr(reference(), "source", None) == "sim-deep:KAS/USDT"
        markets = sup.status()["markets"]
        deep, thin = markets["sim-deep:KAS/USDT"], markets["sim-thin:KAS/USDT"]
        assert (deep["source"], deep["subscribers"]) == ("venue", 1)  # the thin bot reads it
        assert (thin["source"], thin["subscribers"]) == ("venue", 0)
        # What priced the thin bot is in its status row and in the metrics.
        await eventually(lambda: thin_row(sup)["price_source"] == "sim-deep:KAS/USDT")
        row = thin_row(sup)["reference"]
        assert row["source"] == "sim-deep:KAS/USDT" and row["problem"] is None
        assert 0 <= row["age_s"]["sim-deep:KAS/USDT"] < 2 and row["deviation_pct"] < 1
        text = render(sup.metrics_registry)[0].decode()
        labels = 'profile="sim-thin-kas-usdt",symbol="KAS/USDT",venue="sim-thin"'
        assert f"kasmm_reference_price{{{labels}}} 0.0" in text
        assert f'kasmm_reference_age_seconds{{market="sim-deep:KAS/USDT",{labels}}}' in text
        tg.cancel_scope.cancel()


def thin_row(sup: Supervisor) -> dict[str, Any]:
    rows = {r["name"]: r for r in sup.status()["profiles"]}
    row: dict[str, Any] = rows["sim-thin-kas-usdt"]
    return row
