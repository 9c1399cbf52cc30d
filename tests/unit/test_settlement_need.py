"""What the running profiles need on the exchange (kasmm.core.settlement_need), rule by rule."""

from __future__ import annotations

from decimal import Decimal as D

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kasmm.core.params import QuotingParams
from kasmm.core.settlement_need import AssetNeeds, account_need, profile_need


def _params(**kw: object) -> QuotingParams:
    base: dict[str, object] = {"strategy": "fixed_spread", "spread_bps": 50.0, "size": D(100)}
    base.update(kw)
    return QuotingParams(**base)  # type: ignore[arg-type]


# case -> (params overrides, mark, KAS need, USDT need)
CASES: dict[str, tuple[dict[str, object], D, D, D]] = {
    "one level, no target: the two ladders": (
        {"target_share": None},
        D("0.1"),
        D(100),
        D(10),
    ),
    "three levels add up": ({"target_share": None, "levels": 3}, D("0.1"), D(300), D(30)),
    "level step added per level": (
        {"target_share": None, "levels": 3, "level_size_step": D(50)},
        D("0.1"),
        D(450),  # 100 + 150 + 200
        D(45),
    ),
    "level step as a compounded percentage": (
        {"target_share": None, "levels": 2, "level_size_step": D(10), "level_size_step_pct": True},
        D(1),
        D(210),  # 100 + 110
        D(210),
    ),
    "size in quote is divided by the mark": (
        {"target_share": None, "size": D(10), "size_unit": "quote", "levels": 2},
        D("0.1"),
        D(200),
        D(20),
    ),
    "share 0.5 holds both ladders at the target": ({}, D("0.1"), D(100), D(10)),
    "share 0.25: the quote side decides the value": (
        {"target_share": 0.25},
        D(1),
        # W = max(100 / 0.25, 100 / 0.75) = 400: 100 base, 300 quote
        D(100),
        D(300),
    ),
    "share 0.8: the base side decides the value": (
        {"target_share": 0.8},
        D(1),
        # W = max(100 / 0.8, 100 / 0.2) = 500: 400 base, 100 quote
        D(400),
        D(100),
    ),
    "share 0 needs just the ladders": ({"target_share": 0.0}, D(1), D(100), D(100)),
    "share 1 needs just the ladders": ({"target_share": 1.0}, D(1), D(100), D(100)),
    "target base above the ladder wins": (
        {"target_base": D(5000)},
        D("0.1"),
        D(5000),
        D(10),
    ),
    "target base below the ladder: the ladder": ({"target_base": D(50)}, D("0.1"), D(100), D(10)),
    "min_base adds the full ask ladder on top": (
        {"target_share": None, "min_base": D(1000)},
        D("0.1"),
        D(1100),
        D(10),
    ),
    "min_base below a larger target: the target": (
        {"target_base": D(5000), "min_base": D(1000)},
        D("0.1"),
        D(5000),
        D(10),
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_profile_need(case: str) -> None:
    overrides, mark, kas, usdt = CASES[case]
    need = profile_need(_params(**overrides), "KAS", "USDT", mark)
    assert need.of("KAS") == kas
    assert need.of("USDT") == usdt


@pytest.mark.parametrize("mark", [D(0), D(-1), D("NaN"), D("Infinity")])
def test_a_mark_that_cannot_value_is_refused(mark: D) -> None:
    with pytest.raises(ValueError, match="mark"):
        profile_need(_params(), "KAS", "USDT", mark)


def test_same_base_and_quote_is_refused() -> None:
    with pytest.raises(ValueError, match="differ"):
        profile_need(_params(), "KAS", "KAS", D(1))


def test_account_need_adds_profiles_on_shared_assets() -> None:
    kas_usdt = AssetNeeds({"KAS": D(100), "USDT": D(10)})
    kas_usdc = AssetNeeds({"KAS": D(50), "USDC": D(5)})
    btc_usdt = AssetNeeds({"BTC": D(1), "USDT": D(7)})
    total = account_need([kas_usdt, kas_usdc, btc_usdt])
    assert total.amounts == {"KAS": D(150), "USDT": D(17), "USDC": D(5), "BTC": D(1)}
    assert total.of("ETH") == 0
    assert account_need([]).amounts == {}


@settings(max_examples=300, deadline=None)
@given(
    size=st.decimals(min_value="0.01", max_value=10**6, places=2),
    levels=st.integers(1, 20),
    mark=st.decimals(min_value="0.0001", max_value=1000, places=4),
    share=st.none() | st.floats(0, 1),
    target_base=st.none() | st.decimals(min_value=0, max_value=10**7, places=2),
    min_base=st.none() | st.decimals(min_value=0, max_value=10**7, places=2),
)
def test_the_need_always_covers_both_full_ladders(
    size: D, levels: int, mark: D, share: float | None, target_base: D | None, min_base: D | None
) -> None:
    params = _params(
        size=size, levels=levels, target_share=share, target_base=target_base, min_base=min_base
    )
    need = profile_need(params, "KAS", "USDT", mark)
    ladder = size * levels
    # (a share target's value is computed with a division: allow its last-digit rounding)
    slack = D("1e-20") * (1 + ladder * mark)
    assert need.of("KAS") >= ladder - slack
    assert need.of("USDT") >= ladder * mark - slack
    if target_base is not None:
        assert need.of("KAS") >= target_base
    if min_base is not None:
        assert need.of("KAS") >= min_base + ladder
