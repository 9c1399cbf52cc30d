"""From ``_settlement.yaml`` and profiles to a plan (kasmm.config.settlement_inputs): which
profiles and modes count, unmarked markets as stale feeds, and one plan end to end."""

from __future__ import annotations

from decimal import Decimal as D
from pathlib import Path
from typing import Any

from kasmm.config.schema import Profile
from kasmm.config.settlement_inputs import account_needs, plan_inputs, profile_needs
from kasmm.config.settlement_load import load_settlement
from kasmm.core.settlement import Gates, Hold, Sweep, TopUp, WithdrawTerms, plan_settlement
from kasmm.core.types import Balance, Balances

EXAMPLE = Path(__file__).resolve().parent.parent.parent / "profiles" / "_settlement.yaml.example"


def _profile(name: str, symbol: str = "KAS/USDT", **extra: Any) -> Profile:
    data: dict[str, Any] = {
        "name": name,
        "venue": {
            "type": "ccxt",
            "exchange": "mexc",
            "account": "mexc-main",
            "credentials": {"api_key": "${K}", "secret": "${S}"},
        },
        "symbol": symbol,
        "modes": {"passive": {"spread_bps": 50, "size": 1000, "levels": 2}},
        "inventory": {"target_share": 0.5},
    }
    data.update(extra)
    return Profile.model_validate(data)


def test_the_larger_mode_counts() -> None:
    modes = {
        "passive": {"spread_bps": 50, "size": 1000, "levels": 2},
        "aggressive": {"spread_bps": 20, "size": 3000, "levels": 3},
    }
    need = profile_needs(_profile("p", modes=modes), D("0.1"))
    assert need.amounts == {"KAS": D(9000), "USDT": D(900)}


def test_disabled_profiles_need_nothing_and_unmarked_symbols_are_reported() -> None:
    profiles = [
        _profile("a"),
        _profile("b", enabled=False),
        _profile("c", symbol="KAS/USDC"),
        _profile("d", symbol="KAS/USDC"),
    ]
    need, unmarked = account_needs(profiles, {"KAS/USDT": D("0.1"), "KAS/USDC": D(0)})
    assert need.amounts == {"KAS": D(2000), "USDT": D(200)}
    assert unmarked == ("KAS/USDC",)


def test_plan_from_the_example_end_to_end() -> None:
    loaded = load_settlement(EXAMPLE)
    assert loaded.settlement is not None
    acct = loaded.settlement.settlement["mexc-main"]
    profiles = [_profile("a", inventory={"target_base": 60000})]
    inputs = plan_inputs(
        acct,
        profiles,
        balances=Balances({"KAS": Balance(D(300000), D(2000)), "USDT": Balance(D(500))}),
        marks={"KAS/USDT": D("0.1")},
        terms={
            "KAS": WithdrawTerms(enabled=True, step=D("0.00000001"), min_amount=D(10), fee=D(1))
        },
        swept_today={"KAS": D(100000)},
        gates=Gates(),
    )
    plan = plan_settlement(inputs)
    kas, usdt = plan.assets
    assert (kas.need, kas.floor, kas.ceiling) == (D(60000), D(60000), D(200000))
    # the day limit (150000) leaves 50000 after today's 100000
    assert kas.action == Sweep(D(50000), D(1), ("per_day",))
    assert (usdt.need, usdt.floor) == (D(200), D(2000))
    assert usdt.action == TopUp(D(1500), "below_band")


def test_an_unmarked_market_holds_sweeps() -> None:
    loaded = load_settlement(EXAMPLE)
    assert loaded.settlement is not None
    inputs = plan_inputs(
        loaded.settlement.settlement["mexc-main"],
        [_profile("a")],
        balances=Balances({"KAS": Balance(D(900000)), "USDT": Balance(D(5000))}),
        marks={},
        terms={"KAS": WithdrawTerms(enabled=True, step=D(1))},
        swept_today={},
        gates=Gates(halted_profiles=()),
    )
    assert inputs.gates.stale_feeds == ("KAS/USDT",)
    kas, _usdt = plan_settlement(inputs).assets
    assert kas.action == Hold("feed_stale", D(700000))
