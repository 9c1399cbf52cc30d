"""What the after-quoting stages hold reaches operators: ``/status``'s ``shaping``, the
``kasmm top`` detail pane and the metrics."""

from __future__ import annotations

from typing import Any, cast

from kasmm.bot.stats import BotState
from kasmm.bot.view import BotView, build_view
from kasmm.console.details import profile_detail
from kasmm.core.types import Side
from kasmm.obs.families import Families, MetricBackend
from kasmm.obs.metrics import SupervisorCollector
from kasmm.supervisor.status import view_fields
from tests.unit.test_engine_shaping import engine, fill, resting, step

LABELS = ("p1", "sim", "KAS/USDT")


def metrics(view: BotView) -> dict[tuple[str, str], float]:
    backend = MetricBackend()
    SupervisorCollector(cast(Any, None))._bot(Families(backend), LABELS, view)
    out: dict[tuple[str, str], float] = {}
    for family in backend.metrics:
        for s in family.samples:
            if s.name in (
                "kasmm_hanging_orders",
                "kasmm_fill_cooldown_seconds",
                "kasmm_ping_pong_balance",
                "kasmm_price_band",
            ):
                key = s.labels.get("side") or s.labels.get("bound") or ""
                out[(s.name, key)] = s.value
    return out


def shaped_view() -> BotView:
    e = engine(
        pricing={"price_band": {"floor": "0.07", "ceiling": "0.09"}},
        after_fill={
            "filled_order_delay_s": 10,
            "ping_pong": True,
            "hanging_orders": {"enabled": True},
        },
    )
    step(e, 1.0)
    fill(e, resting(e, Side.BUY)[0], 2.0)
    step(e, 2.5)
    return build_view(e, BotState.QUOTING, 4.0, 0)


def test_status_console_and_metrics_show_the_shaping_state() -> None:
    view = shaped_view()
    fields = view_fields(view, 4.0)
    assert fields["shaping"] == {
        "hanging_orders": 1,
        "bid_cooldown_s": 8.0,
        "ask_cooldown_s": 0.0,
        "ping_pong_balance": 1,
        "band_floor": "0.07",
        "band_ceiling": "0.09",
    }
    row = {"name": "p1", "symbol": "KAS/USDT", "venue": "sim", "state": "quoting",
           "tick": "0.00001", "lot": "1", **fields}  # fmt: skip
    lines = profile_detail({"supervisor": {"pid": 1}, "profiles": [row]}, row)
    assert "band 0.07000 .. 0.09000  cooldown bid 8.0s  ping-pong 1  hanging orders 1" in lines
    assert metrics(view) == {
        ("kasmm_hanging_orders", ""): 1.0,
        ("kasmm_fill_cooldown_seconds", "buy"): 8.0,
        ("kasmm_fill_cooldown_seconds", "sell"): 0.0,
        ("kasmm_ping_pong_balance", ""): 1.0,
        ("kasmm_price_band", "floor"): 0.07,
        ("kasmm_price_band", "ceiling"): 0.09,
    }


def test_nothing_is_shown_with_every_setting_off() -> None:
    e = engine()
    step(e, 1.0)
    view = build_view(e, BotState.QUOTING, 1.0, 0)
    assert view_fields(view, 1.0)["shaping"] is None
    assert metrics(view) == {}
    row = {"name": "p1", "state": "quoting", **view_fields(view, 1.0)}
    assert not any(line.startswith("band ") for line in profile_detail({}, row))
