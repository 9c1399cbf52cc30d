"""A backtest path measures the markout of its fills: the engine's figures equal a brute-force
recomputation from the events the path handled, and the result carries them (per path, and
their mean and std over paths)."""

from __future__ import annotations

import math
from decimal import Decimal

import pytest

from kasmm.backtest import run_backtest
from kasmm.backtest.driver import BacktestDriver, Request
from kasmm.backtest.engine import build_path
from kasmm.backtest.result import MARKOUT_HORIZONS_S, PathResult, markout_fields
from kasmm.commands.backtest import TableFormat, path_row, run_row
from kasmm.core.markout import HorizonMarkout
from kasmm.core.quoting import QuoteDecision
from kasmm.core.types import BookUpdated, OrderFilled, Side, VenueEvent
from kasmm.obs.money import fixed
from tests.support import demo_profile, path_spec


class Recorder:
    """The books' mids and the fills, each at the time the engine handled it."""

    def __init__(self) -> None:
        self.driver: BacktestDriver | None = None
        self.mids: list[tuple[float, Decimal]] = []
        self.fills: list[tuple[float, Side, Decimal, Decimal]] = []

    def request(self, request: Request) -> None:
        pass

    def handled(self, at: float, event: VenueEvent, decision: QuoteDecision | None) -> None:
        assert self.driver is not None
        now = self.driver.meter.last_event_at  # the engine's now for this event
        if isinstance(event, BookUpdated) and event.book.mid is not None:
            self.mids.append((now, event.book.mid))
        elif isinstance(event, OrderFilled):
            f = event.fill
            self.fills.append((now, f.side, f.price, f.size))


def brute_force(rec: Recorder, horizon: float) -> HorizonMarkout:
    """Each fill against the mid of the first book at or after its time + ``horizon``."""
    fills, bps, size_bps, size, quote = 0, 0.0, 0.0, Decimal(0), Decimal(0)
    for at, side, price, qty in rec.fills:
        later = next((mid for t, mid in rec.mids if t >= at + horizon), None)
        if later is None:
            continue
        move = (later - price) if side is Side.BUY else (price - later)
        b = float(move / price) * 1e4
        fills, bps, size_bps = fills + 1, bps + b, size_bps + float(qty) * b
        size, quote = size + qty, quote + move * qty
    return HorizonMarkout(horizon, fills, bps, size_bps, size, quote)


def test_the_engines_markout_equals_a_brute_force_recomputation() -> None:
    rec = Recorder()
    driver = build_path(path_spec(demo_profile(), 300.0), observer=rec)
    rec.driver = driver
    driver.run()
    got = driver.view().markout
    assert len(rec.fills) > 20  # the demo trades
    for m in got:
        want = brute_force(rec, m.horizon_s)
        assert (m.fills, m.size, m.quote) == (want.fills, want.size, want.quote)
        assert m.bps_sum == pytest.approx(want.bps_sum, rel=1e-12, abs=1e-9)
        assert m.size_bps_sum == pytest.approx(want.size_bps_sum, rel=1e-12, abs=1e-9)
    # Fills in the last seconds have no later book: fewer marked at 10 s than at 1 s.
    short, long = got
    assert 0 < long.fills <= short.fills <= len(rec.fills)


def test_the_result_carries_the_markout_per_path_and_over_paths() -> None:
    result = run_backtest(demo_profile(), paths=2, horizon_s=120.0, workers=1)
    run = result.run
    for path in run.paths:
        assert path.markout_1s_fills > 0 and path.markout_10s_fills > 0
        assert path.markout_1s_bps is not None and math.isfinite(path.markout_1s_bps)
        assert path.markout_10s_quote is not None
    values = [p.markout_1s_bps for p in run.paths]
    stat = run.stat("markout_1s_bps")
    assert stat is not None and stat.mean == pytest.approx(sum(values) / 2)  # type: ignore[arg-type]
    fmt = TableFormat.of(result)
    assert run_row(run, fmt)["markout 1s bps"] == fixed(stat.mean, 2)
    assert path_row(run.paths[1], fmt)["markout 10s bps"] == fixed(run.paths[1].markout_10s_bps, 2)
    doc = result.to_json()["runs"][0]
    assert doc["summary"]["markout_10s_quote"]["std"] >= 0.0
    assert {"markout_1s_bps", "markout_10s_mean_bps"} <= set(doc["paths"][0])


def test_markout_fields_of_a_path_without_marked_fills_are_none() -> None:
    assert MARKOUT_HORIZONS_S == (1.0, 10.0)
    empty = markout_fields((HorizonMarkout(1.0), HorizonMarkout(10.0)))
    assert empty["markout_1s_fills"] == 0 and empty["markout_1s_bps"] is None
    assert markout_fields(())["markout_10s_quote"] is None
    m = HorizonMarkout(1.0, 2, -4.0, -10.0, Decimal(5), Decimal("-0.25"))
    fields = markout_fields((m,))
    assert (fields["markout_1s_fills"], fields["markout_1s_quote"]) == (2, -0.25)
    assert fields["markout_1s_bps"] == -2.0 and fields["markout_1s_mean_bps"] == -2.0
    assert fields["markout_10s_fills"] == 0
    assert set(fields) <= set(PathResult.__dataclass_fields__)
