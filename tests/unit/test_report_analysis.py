"""Report figures without matplotlib: fill summaries, PnL track, drawdown, targets, own quotes."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.commands.report import MISSING_MATPLOTLIB, report_command
from kasmm.core.params import QuotingParams
from kasmm.core.pnl import PnlState, apply_fill
from kasmm.core.types import ClientOrderId, Fill, Side, TradeId
from kasmm.report.analysis import (
    base_share,
    drawdown_series,
    inventory_targets,
    max_drawdown,
    merge_fees,
    pnl_track,
    side_summary,
)
from kasmm.report.gather import select_profiles
from kasmm.report.orders import resting_orders
from kasmm.report.page import e, num, signed
from kasmm.store import EquitySnapshot, Ledger

D = Decimal
T0 = 1_700_000_000.0


def fill(n: int, side: Side, price: str, size: str, fee: str, asset: str, dt: float) -> Fill:
    return Fill(
        trade_id=TradeId(f"t{n}"),
        client_id=ClientOrderId(f"c{n}"),
        side=side,
        price=D(price),
        size=D(size),
        fee=D(fee),
        fee_asset=asset,
        ts=T0 + dt,
        is_maker=n != 3,
    )


FILLS = [
    fill(1, Side.BUY, "0.080", "1000", "0.04", "USDT", 60),
    fill(2, Side.BUY, "0.082", "500", "0.02", "USDT", 120),
    fill(3, Side.SELL, "0.085", "800", "0.034", "USDT", 180),
    fill(4, Side.SELL, "0.079", "200", "2", "KAS", 240),
]


def snap(dt: float, equity: str, mid: str, base: str, quote: str) -> EquitySnapshot:
    return EquitySnapshot(T0 + dt, D(equity), D(mid), D(base), D(quote))


def test_side_summary_hand_computed() -> None:
    buys = side_summary(FILLS, Side.BUY)
    assert (buys.count, buys.maker, buys.volume, buys.notional) == (2, 2, D(1500), D(121))
    assert buys.avg_price == D(121) / D(1500)
    assert dict(buys.fees) == {"USDT": D("0.06")}
    sells = side_summary(FILLS, Side.SELL)
    assert (sells.count, sells.maker, sells.volume, sells.notional) == (2, 1, D(1000), D("83.8"))
    assert sells.avg_price == D("0.0838")
    assert dict(sells.fees) == {"KAS": D(2), "USDT": D("0.034")}
    assert merge_fees(buys, sells) == {"KAS": D(2), "USDT": D("0.094")}
    assert side_summary([], Side.BUY).avg_price is None


def test_pnl_track_matches_the_core_fold_and_counts_only_the_period() -> None:
    opening = (D(1000), D("0.08"))
    everything = pnl_track(FILLS, opening, "USDT", None)
    # opening 1000 @ 0.08; +1000 @ 0.080; +500 @ 0.082 -> 2500 @ 0.0804;
    # -800 @ 0.085 realizes +3.68; -200 @ 0.079 realizes -0.28.
    assert everything.realized == D("3.40")
    assert [p.realized for p in everything.points] == [D(0), D(0), D("3.68"), D("3.40")]
    assert everything.fees == D("0.04") + D("0.02") + D("0.034") + D(2) * D("0.079")
    state = PnlState.opening(*opening)
    for f in FILLS:
        state = apply_fill(state, f, "USDT")
    assert everything.total == state

    period = pnl_track(FILLS, opening, "USDT", T0 + 150)
    assert period.realized == D("3.40")  # both realizing fills fall in the period
    assert len(period.points) == 2
    assert period.fees == D("0.034") + D("0.158")
    assert period.total == state  # the average cost still comes from every fill

    late = pnl_track(FILLS, opening, "USDT", T0 + 200)
    assert late.realized == D("-0.28")


def test_state_at_and_unrealized() -> None:
    track = pnl_track(FILLS, (D(1000), D("0.08")), "USDT", None)
    assert track.state_at(T0).position == D(1000)
    assert track.state_at(T0 + 60).position == D(2000)  # a fill at ts counts at ts
    assert track.state_at(T0 + 150).avg_cost == D("0.0804")
    assert track.unrealized(T0 + 150, D("0.083")) == D(2500) * (D("0.083") - D("0.0804"))
    flat = pnl_track([], None, "USDT", None)
    assert flat.unrealized(T0, D(1)) == 0


def test_drawdown_from_the_running_peak() -> None:
    series = [
        snap(0, "280", "0.08", "1000", "200"),
        snap(90, "282", "0.081", "2000", "120"),
        snap(210, "289.8", "0.084", "1700", "147"),
        snap(270, "279.644", "0.078", "1498", "162.8"),
    ]
    points = drawdown_series(series)
    assert [p.peak for p in points] == [D(280), D(282), D("289.8"), D("289.8")]
    assert [p.drawdown for p in points] == [0, 0, 0, D("10.156")]
    deepest = max_drawdown(points)
    assert deepest is not None and deepest.ts == T0 + 270
    assert deepest.pct == pytest.approx(10.156 / 289.8 * 100)
    assert max_drawdown([]) is None
    assert drawdown_series([snap(0, "-5", "1", "0", "-5")])[0].pct is None


def test_base_share_and_targets_follow_the_quoting_core() -> None:
    s = snap(0, "280", "0.08", "1000", "200")
    assert base_share(s) == pytest.approx(80 / 280)
    assert base_share(snap(0, "0", "0.08", "0", "0")) is None
    share = QuotingParams(strategy="fixed_spread", spread_bps=10, size=D(1), target_share=0.4)
    (t,) = inventory_targets([s], share, "KAS", "USDT")
    assert t.target_share == 0.4
    assert t.target_base == D("0.4") * D(280) / D("0.08")
    absolute = QuotingParams(
        strategy="fixed_spread", spread_bps=10, size=D(1), target_share=None, target_base=D(900)
    )
    (t,) = inventory_targets([s], absolute, "KAS", "USDT")
    assert t.target_base == D(900)
    assert t.target_share == pytest.approx(72 / 280)


def test_resting_orders_from_the_orders_table(tmp_path: Path) -> None:
    path = tmp_path / "kasmm.sqlite"
    with Ledger(path) as ledger:
        ledger.record_order("p", ClientOrderId("c1"), Side.BUY, D("0.0799"), D(10), T0 + 10)
        ledger.record_order_status("p", ClientOrderId("c1"), "open", T0 + 11)
        ledger.record_order_status("p", ClientOrderId("c1"), "filled", T0 + 60)
        ledger.record_order("p", ClientOrderId("c2"), Side.SELL, D("0.0805"), D(10), T0 + 10)
        ledger.record_order_status("p", ClientOrderId("c2"), "cancelled", T0 + 100)
        ledger.record_order("p", ClientOrderId("c3"), Side.SELL, D("0.09"), D(10), T0 + 20)
        ledger.record_order_status("p", ClientOrderId("c3"), "rejected", T0 + 20)
        ledger.record_order("p", ClientOrderId("c4"), Side.BUY, D("0.0790"), D(10), T0 + 250)
        ledger.record_order("q", ClientOrderId("c9"), Side.BUY, D("1"), D(1), T0)
    orders = resting_orders(path, "p", None, T0 + 300)
    assert [(o.side, o.price, o.start, o.end) for o in orders] == [
        (Side.BUY, D("0.0799"), T0 + 10, T0 + 60),
        (Side.SELL, D("0.0805"), T0 + 10, T0 + 100),
        (Side.BUY, D("0.0790"), T0 + 250, T0 + 300),  # still live: rests to the end
    ]
    clipped = resting_orders(path, "p", T0 + 70, T0 + 260)
    assert [(o.price, o.start, o.end) for o in clipped] == [
        (D("0.0805"), T0 + 70, T0 + 100),
        (D("0.0790"), T0 + 250, T0 + 260),
    ]
    assert resting_orders(path, "p", T0 + 400, T0 + 300) == []


def test_select_profiles() -> None:
    assert select_profiles(["a", "b"], None) == (["a", "b"], [])
    assert select_profiles(["a", "b"], ["b", "b"]) == (["b"], [])
    assert select_profiles(["a"], ["a", "zz"]) == (["a"], ["zz"])


def test_number_formatting_and_escaping() -> None:
    assert num(D("1500")) == "1,500"
    assert num(D("121.000")) == "121"
    assert num(D(121) / D(1500)) == "0.08066667"
    assert num(D("-0.000000001")) == "0"
    assert num(D("1E+3")) == "1,000"
    assert signed(D("3.4")) == "+3.4"
    assert signed(D("-0.28")) == "-0.28"
    assert signed(D(0)) == "0"
    assert e('<b a="1">&') == "&lt;b a=&quot;1&quot;&gt;&amp;"


def test_missing_matplotlib_is_a_clear_message(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib now fails
    out = tmp_path / "r.html"
    assert report_command(tmp_path, out) == 2
    err = capsys.readouterr().err
    assert err.strip() == MISSING_MATPLOTLIB
    assert "pip install 'kasmm[report]'" in err
    assert not out.exists()
