"""The ``hedge:`` profile block: its fields, and the checks that need every profile."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from kasmm.config import checks
from kasmm.config.loader import load_paths
from kasmm.config.schema import Profile
from tests.support import make_profile

RULE = {"base": "5000"}


def _hedged(name: str, target: str, **overrides: Any) -> Profile:
    return make_profile(
        name=name, hedge={"profile": target, "max_unhedged_base": RULE}, **overrides
    )


def test_defaults_and_exact_amounts() -> None:
    hedge = _hedged("a", "b").hedge
    assert hedge is not None
    assert (hedge.window_ms, hedge.retry_s, hedge.max_slippage_bps) == (200.0, 2.0, 20.0)
    assert hedge.min_base == Decimal(0)
    assert hedge.max_unhedged_base.base == Decimal("5000")
    assert hedge.max_unhedged_base.action == "pause"


@pytest.mark.parametrize(
    "bad",
    [
        {"profile": "b"},  # the residual rule is required
        {"profile": "b", "max_unhedged_base": {"base": "0"}},
        {"profile": "b", "max_unhedged_base": RULE, "max_slippage_bps": 0},
        {"profile": "b", "max_unhedged_base": RULE, "window_ms": -1},
        {"profile": "b", "max_unhedged_base": RULE, "retry_s": 0},
        {"profile": "b", "max_unhedged_base": RULE, "min_base": "-1"},
        {"profile": "b", "max_unhedged_base": {"base": "1", "action": "stop"}},
        {"profile": "b", "max_unhedged_base": RULE, "unknown": 1},
    ],
)
def test_structural_errors(bad: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        make_profile(name="a", hedge=bad)


def test_self_hedge_is_refused_on_the_field() -> None:
    assert checks.run_checks(_hedged("a", "a")) == [
        (("hedge", "profile"), "a profile cannot hedge onto itself; name another one")
    ]


def test_min_base_must_stay_below_the_residual_limit() -> None:
    p = make_profile(
        name="a", hedge={"profile": "b", "min_base": "5000", "max_unhedged_base": RULE}
    )
    assert checks.run_checks(p) == [
        (
            ("hedge", "min_base"),
            "min_base (5000) must be below max_unhedged_base.base (5000): a net carried below "
            "min_base would trip the residual rule for good",
        )
    ]


def _find(profiles: list[Profile], invalid: tuple[str, ...] = ()) -> dict[str, str]:
    return dict(checks.hedge_problems(profiles, invalid))


def test_valid_pair_passes() -> None:
    assert _find([_hedged("a", "b"), make_profile(name="b")]) == {}
    # Two profiles may hedge onto the same target.
    assert _find([_hedged("a", "b"), _hedged("c", "b"), make_profile(name="b")]) == {}


def test_unknown_and_invalid_targets() -> None:
    assert _find([_hedged("a", "zz")]) == {"a": "hedge profile 'zz' is not defined"}
    assert _find([_hedged("a", "zz")], ("zz",)) == {
        "a": "hedge profile 'zz' has errors (see its file)"
    }


def test_other_base_is_refused() -> None:
    other = make_profile(name="b", symbol="BTC/USDT", venue={"type": "sim", "balances": {
        "BTC": "1", "USDT": "1000"}})  # fmt: skip
    assert "whose base asset is not KAS" in _find([_hedged("a", "b"), other])["a"]


def test_disabled_target_is_refused_and_disabled_hedger_is_not_checked() -> None:
    off = make_profile(name="b", enabled=False)
    assert _find([_hedged("a", "b"), off]) == {
        "a": "hedge profile 'b' is disabled (enabled: false)"
    }
    assert _find([_hedged("a", "zz", enabled=False)]) == {}


def test_chains_and_cycles_are_refused() -> None:
    chain = _find([_hedged("a", "b"), _hedged("b", "c"), make_profile(name="c")])
    assert chain == {"a": "hedge profile 'b' hedges onto 'c' itself: a hedge target cannot "
                     "hedge (no chains or cycles)"}  # fmt: skip
    cycle = _find([_hedged("a", "b"), _hedged("b", "a")])
    assert set(cycle) == {"a", "b"}
    assert "(a cycle)" in cycle["a"]


PROFILE = """\
venue: {{type: sim}}
symbol: {symbol}
modes:
  passive: {{spread_bps: 40, size: 1000}}
"""


def test_loader_refuses_the_hedger_at_its_field(tmp_path: Path) -> None:
    (tmp_path / "thin.yaml").write_text(
        PROFILE.format(symbol="KAS/USDT")
        + "hedge:\n  profile: deep\n  max_unhedged_base: {base: 100}\n"
    )
    (tmp_path / "deep.yaml").write_text(PROFILE.format(symbol="KAS/USDT"))
    load = load_paths([tmp_path])
    assert sorted(load.profiles) == ["deep", "thin"]
    assert load.issues == []

    (tmp_path / "deep.yaml").write_text(
        PROFILE.format(symbol="KAS/USDT").replace("venue:", "enabled: false\nvenue:")
    )
    load = load_paths([tmp_path])
    assert sorted(load.profiles) == ["deep"]
    [issue] = load.issues
    assert (issue.path.name, issue.line, issue.col, issue.field) == (
        "thin.yaml",
        6,
        12,
        "hedge.profile",
    )
    assert str(issue).endswith(
        "thin: hedge.profile: hedge profile 'deep' is disabled (enabled: false)"
    )


def test_loader_names_a_target_with_errors(tmp_path: Path) -> None:
    (tmp_path / "thin.yaml").write_text(
        PROFILE.format(symbol="KAS/USDT")
        + "hedge:\n  profile: deep\n  max_unhedged_base: {base: 100}\n"
    )
    (tmp_path / "deep.yaml").write_text(PROFILE.format(symbol="KAS/USDT") + "mode: fast\n")
    load = load_paths([tmp_path])
    assert load.profiles == {}
    messages = {(i.path.name, i.field): i.message for i in load.issues}
    assert (
        messages[("thin.yaml", "hedge.profile")] == "hedge profile 'deep' has errors (see its file)"
    )


def test_hedge_params_in_the_cores_units() -> None:
    from kasmm.config.to_core import hedge_params

    assert hedge_params(make_profile(name="b")) is None
    params = hedge_params(
        make_profile(
            name="a",
            hedge={
                "profile": "b",
                "window_ms": 250,
                "min_base": "12.5",
                "max_slippage_bps": 7.5,
                "retry_s": 3,
                "max_unhedged_base": {"base": "900", "action": "halt"},
            },
        )
    )
    assert params is not None
    assert (params.window_s, params.retry_s, params.action) == (0.25, 3.0, "halt")
    assert (params.min_base, params.max_slippage_bps, params.max_unhedged_base) == (
        Decimal("12.5"),
        Decimal("7.5"),
        Decimal("900"),
    )
