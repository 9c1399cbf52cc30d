"""plan_reload: the pure diff a reload applies, rule by rule."""

from __future__ import annotations

from pathlib import Path

import pytest

from kasmm.supervisor.plan import DesiredProfile, ReloadPlan, RunningProfile, plan_reload

A, B = Path("/profiles/a.yaml"), Path("/profiles/b.yaml")


def running(**profiles: RunningProfile) -> dict[str, RunningProfile]:
    return profiles


@pytest.mark.parametrize(
    ("case", "now", "wanted", "invalid", "expected"),
    [
        (
            "added -> start",
            {},
            {"p1": DesiredProfile("h1")},
            (),
            ReloadPlan(start=("p1",)),
        ),
        (
            "removed -> stop",
            {"p1": RunningProfile("h1", A)},
            {},
            (),
            ReloadPlan(stop=("p1",)),
        ),
        (
            "disabled -> stop",
            {"p1": RunningProfile("h1", A)},
            {"p1": DesiredProfile("h2", enabled=False)},
            (),
            ReloadPlan(stop=("p1",)),
        ),
        (
            "disabled and not running -> nothing",
            {},
            {"p1": DesiredProfile("h1", enabled=False)},
            (),
            ReloadPlan(),
        ),
        (
            "changed -> restart",
            {"p1": RunningProfile("h1", A)},
            {"p1": DesiredProfile("h2")},
            (),
            ReloadPlan(restart=("p1",)),
        ),
        (
            "same config -> unchanged",
            {"p1": RunningProfile("h1", A)},
            {"p1": DesiredProfile("h1")},
            (),
            ReloadPlan(unchanged=("p1",)),
        ),
        (
            "same config but its task ended -> restart",
            {"p1": RunningProfile("h1", A, ended=True)},
            {"p1": DesiredProfile("h1")},
            (),
            ReloadPlan(restart=("p1",)),
        ),
        (
            "its file is invalid -> kept on its last good version",
            {"p1": RunningProfile("h1", A)},
            {},
            {A},
            ReloadPlan(unchanged=("p1",), kept_last_good=("p1",)),
        ),
        (
            "kept, but its task ended -> restarted on its last good version",
            {"p1": RunningProfile("h1", A, ended=True)},
            {},
            {A},
            ReloadPlan(restart=("p1",), kept_last_good=("p1",)),
        ),
        (
            "another file is invalid -> removed as usual",
            {"p1": RunningProfile("h1", A)},
            {},
            {B},
            ReloadPlan(stop=("p1",)),
        ),
        (
            "an invalid file does not keep a profile another valid file still declares",
            {"p1": RunningProfile("h1", A)},
            {"p1": DesiredProfile("h2")},
            {A},
            ReloadPlan(restart=("p1",)),
        ),
    ],
    ids=lambda value: value if isinstance(value, str) else "",
)
def test_each_rule(
    case: str,
    now: dict[str, RunningProfile],
    wanted: dict[str, DesiredProfile],
    invalid: set[Path],
    expected: ReloadPlan,
) -> None:
    assert plan_reload(now, wanted, invalid) == expected, case


def test_a_mixed_reload_keeps_stable_orders() -> None:
    now = running(
        keep=RunningProfile("k", A),
        gone=RunningProfile("g", A),
        edit=RunningProfile("e1", A),
        off=RunningProfile("o", A),
        bad=RunningProfile("b", B),
    )
    wanted = {
        "new2": DesiredProfile("n2"),
        "edit": DesiredProfile("e2"),
        "keep": DesiredProfile("k"),
        "off": DesiredProfile("o", enabled=False),
        "new1": DesiredProfile("n1"),
    }
    assert plan_reload(now, wanted, {B}) == ReloadPlan(
        start=("new2", "new1"),
        stop=("gone", "off"),
        restart=("edit",),
        unchanged=("keep", "bad"),
        kept_last_good=("bad",),
    )


def test_the_plan_does_not_touch_its_inputs() -> None:
    now = {"p1": RunningProfile("h1", A)}
    wanted = {"p2": DesiredProfile("h2")}
    plan_reload(now, wanted, {A})
    assert now == {"p1": RunningProfile("h1", A)} and wanted == {"p2": DesiredProfile("h2")}
