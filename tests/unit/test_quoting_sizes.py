"""Level size growth (``level_size_step``): the stage and the pipeline's sizes with it."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.core.level_sizes import level_sizes, usable_step
from kasmm.core.quoting import compute_quotes
from tests.unit.test_quoting import fixed, make_state

D = Decimal


@pytest.mark.parametrize(
    ("size", "step", "pct", "levels", "expected"),
    [
        ("1500", "0", False, 3, ("1500", "1500", "1500")),
        ("1500", "250", False, 3, ("1500", "1750", "2000")),  # added
        ("1500", "10", True, 4, ("1500", "1650", "1815", "1996.5")),  # compounded
        ("1", "100", True, 3, ("1", "2", "4")),
        ("2", "0.5", False, 1, ("2",)),  # level 0 is always the size
    ],
)
def test_level_sizes(
    size: str, step: str, pct: bool, levels: int, expected: tuple[str, ...]
) -> None:
    assert level_sizes(D(size), D(step), pct, levels) == tuple(map(D, expected))


@pytest.mark.parametrize(
    ("step", "ok"), [("0", True), ("2.5", True), ("-1", False), ("NaN", False), ("Infinity", False)]
)
def test_usable_step(step: str, ok: bool) -> None:
    assert usable_step(D(step)) is ok


@pytest.mark.parametrize(
    ("kw", "sizes"),
    [
        ({}, ("1.00", "1.00", "1.00")),
        ({"level_size_step": D("0.5")}, ("1.00", "1.50", "2.00")),
        ({"level_size_step": D("33"), "level_size_step_pct": True}, ("1.00", "1.33", "1.76")),
        # in quote: 100 cash a level, then +50 each, in base at the level's... mid (100)
        ({"size": D(100), "size_unit": "quote", "level_size_step": D(50)},
         ("1.00", "1.50", "2.00")),
    ],
)  # fmt: skip
def test_compute_quotes_grows_each_level(kw: dict[str, object], sizes: tuple[str, ...]) -> None:
    """Each level floored to the lot on its own (1.7689 -> 1.76), within ample budgets."""
    state = make_state(base="100", quote="10000")
    params = fixed(levels=3, level_step_bps=10.0, skew_strength=0.0, **kw)
    q = compute_quotes(params, state).quotes
    assert tuple(str(o.size) for o in q.bids) == sizes
    assert tuple(str(o.size) for o in q.asks) == sizes


def test_a_budget_cuts_the_grown_levels_best_first() -> None:
    """2.5 base to sell over levels of 1, 1.5 and 2: nothing is left for the deepest."""
    state = make_state(base="2.5", quote="10000")
    params = fixed(
        levels=3,
        level_step_bps=10.0,
        skew_strength=0.0,
        level_size_step=D("0.5"),
        min_share=None,
        max_share=None,
    )
    asks = compute_quotes(params, state).quotes.asks
    assert [str(o.size) for o in asks] == ["1.00", "1.50"]  # 0 left for the third


@pytest.mark.parametrize("step", ["-1", "NaN"])
def test_an_unusable_step_is_bad_params(step: str) -> None:
    assert compute_quotes(fixed(level_size_step=D(step)), make_state()).reason == "bad_params"
