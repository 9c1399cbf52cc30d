"""The markout series of a bot's view: ``kasmm_markout_bps``, ``_quote`` and ``_fills_total``
per ``horizon``, exported once a fill is marked (the counter from 0)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from kasmm.bot.stats import BotState
from kasmm.bot.view import BotView, build_view
from kasmm.core.types import Side
from kasmm.obs.families import Families, MetricBackend
from kasmm.obs.kpi_series import fill_kpis
from tests.unit.test_engine_markout import book, engine, own_fill

D = Decimal
LABELS = ("p1", "sim", "KAS/USDT")


def samples(view: BotView) -> dict[tuple[str, str], float]:
    """``(name, horizon) -> value`` of the markout samples ``fill_kpis`` adds."""
    backend = MetricBackend()
    fill_kpis(Families(backend), LABELS, view)
    out: dict[tuple[str, str], float] = {}
    for family in backend.metrics:
        for s in family.samples:
            if s.name.startswith("kasmm_markout"):
                assert (s.labels["profile"], s.labels["venue"]) == ("p1", "sim")
                out[(s.name, s.labels["horizon"])] = s.value
    return out


def test_markout_series_follow_the_view() -> None:
    e = engine()
    e.on_book(book("0.07990", "0.08010"), 0.0)
    assert samples(build_view(e, BotState.QUOTING, 0.0, 0)) == {
        ("kasmm_markout_fills_total", "1s"): 0.0,
        ("kasmm_markout_fills_total", "10s"): 0.0,
    }  # no markout yet: no "0 bps" that would read as "no adverse selection"
    e.on_fill(own_fill(e, Side.BUY, "0.07990", 1000, "t1"), 0.0)
    e.on_fill(own_fill(e, Side.BUY, "0.08000", 3000, "t2"), 0.0)
    e.on_book(book("0.07970", "0.07990"), 1.0)  # mid 0.0798: both buys marked down
    got = samples(build_view(e, BotState.QUOTING, 1.0, 0))
    one = -0.0001 / 0.0799 * 1e4
    three = -0.0002 / 0.08 * 1e4
    assert got[("kasmm_markout_fills_total", "1s")] == 2.0
    assert got[("kasmm_markout_bps", "1s")] == pytest.approx((1000 * one + 3000 * three) / 4000)
    assert got[("kasmm_markout_quote", "1s")] == pytest.approx(-0.1 - 0.6)
    assert ("kasmm_markout_bps", "10s") not in got
    assert got[("kasmm_markout_fills_total", "10s")] == 0.0
