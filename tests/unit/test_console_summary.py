"""The console's minute summaries and exit table, read from the /status rows."""

from __future__ import annotations

import anyio
import pytest

from kasmm.clock import VirtualClock
from kasmm.supervisor.summary import exit_table, minute_summaries, summary_fields

pytestmark = pytest.mark.anyio

ROW = {
    "name": "kas-usdt-sim",
    "state": "running",
    "mode": "passive",
    "mid": "0.080012",
    "own_bid": "0.079944",
    "own_ask": "0.080056",
    "inventory_base": "50100",
    "net_pnl": "5.92",
    "pnl": {"net": "5.92", "vs_hold": "1.05"},
    "fills": 11,
    "open_orders": 6,
    "halt_reason": None,
    "last_error": None,
}


def test_a_summary_line_has_what_matters_at_a_glance() -> None:
    fields = summary_fields(ROW)
    assert fields == {
        "profile": "kas-usdt-sim",
        "state": "running",
        "mode": "passive",
        "mid": "0.080012",
        "bid": "0.079944",
        "ask": "0.080056",
        "inventory": "50100",
        "net": "5.92",
        "vs_hold": "1.05",
        "fills": 11,
        "orders": 6,
    }
    halted = summary_fields({**ROW, "halt_reason": "max_drawdown: 6 > 5"})
    assert halted["halt"] == "max_drawdown: 6 > 5"


def test_the_exit_table_lines_up_one_row_per_profile() -> None:
    text = exit_table([ROW, {**ROW, "name": "b", "state": "failed", "last_error": "boom"}])
    lines = text.splitlines()
    assert lines[0].split() == [
        "profile",
        "state",
        "mode",
        "fills",
        "net",
        "vs",
        "hold",
        "orders",
        "last",
        "error",
    ]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].split()[:7] == ["kas-usdt-sim", "running", "passive", "11", "5.92", "1.05", "6"]
    assert lines[3].split()[-1] == "boom" and len(lines) == 4


class FakeSupervisor:
    """Records the (virtual) time of every status read; a virtual clock jumps to each sleep's
    end, so the read times are the summary schedule."""

    def __init__(self) -> None:
        self.clock = VirtualClock(5.0)
        self.read_at: list[float] = []

    def status(self) -> dict[str, object]:
        self.read_at.append(self.clock.now())
        return {"profiles": [ROW]}


async def test_summaries_come_once_a_minute_on_the_supervisors_clock() -> None:
    sup = FakeSupervisor()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(minute_summaries, sup, 60.0)  # type: ignore[arg-type]
            while len(sup.read_at) < 3:
                await anyio.lowlevel.checkpoint()
            tg.cancel_scope.cancel()
    assert sup.read_at[:3] == [65.0, 125.0, 185.0]  # a minute after start, then every minute
