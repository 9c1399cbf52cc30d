"""The supervisor's settlement watch: each change of a sweep in the ledger announced once, with
account, asset, amount and txid and never a credential; nothing old announced after a restart."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import anyio
import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from kasmm.alerts.events import Alert
from kasmm.alerts.redact import register_secret
from kasmm.store import AsyncLedger
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlement_resolve import Resolution, ResolvedStep
from kasmm.store.settlement_view import SettlementOverview
from kasmm.store.settlements import SweepRecord
from kasmm.supervisor.settle_watch import Known, SettlementWatch, sweep_changes

pytestmark = pytest.mark.anyio

ADDRESS = "kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73"
TXID = "4b1d6e2f" + "0" * 48 + "deadbeef"
#: A withdrawal secret as it sits in the environment: it must reach no notification.
WD_SECRET = "WDsecret-9f8e7d6c5b4a-never-shown"


def _sweep(key: str = "mexc-main-1", state: str = "requested", ts: float = 1000.0) -> SweepRecord:
    return SweepRecord(
        key=key,
        account="mexc-main",
        exchange="mexc",
        asset="KAS",
        amount=D("1500.5"),
        fee=D("10"),
        address=ADDRESS,
        network="mainnet",
        client_id=key,
        state=state,  # type: ignore[arg-type]
        requested_ts=ts,
        updated_ts=ts,
    )


# --- the pure part --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("known", "record", "wall", "events"),
    [
        # never seen: announced as requested first, whatever it is by now
        ({}, _sweep(), 1001.0, ["settlement_requested"]),
        (
            {},
            replace(_sweep(), state="confirmed", txid=TXID),
            1001.0,
            ["settlement_requested", "settlement_confirmed"],
        ),
        # known: only a change of state
        ({"mexc-main-1": Known("requested")}, _sweep(), 1001.0, []),
        (
            {"mexc-main-1": Known("requested")},
            replace(_sweep(), state="accepted", withdrawal_id="w1"),
            1001.0,
            ["settlement_accepted"],
        ),
        (
            {"mexc-main-1": Known("sent")},
            replace(_sweep(), state="sent", confirmations=5),
            1001.0,
            [],
        ),
        (
            {"mexc-main-1": Known("sent")},
            replace(_sweep(), state="confirmed", txid=TXID),
            1001.0,
            ["settlement_confirmed"],
        ),
        (
            {"mexc-main-1": Known("accepted")},
            replace(_sweep(), state="failed", reason="address not whitelisted"),
            1001.0,
            ["settlement_failed"],
        ),
        # the answer was lost: requested without a withdrawal id past the grace, told once
        ({"mexc-main-1": Known("requested")}, _sweep(), 1000.0 + 119, []),
        ({"mexc-main-1": Known("requested")}, _sweep(), 1000.0 + 120, ["settlement_pending"]),
        ({"mexc-main-1": Known("requested", pending_told=True)}, _sweep(), 5000.0, []),
        # found by its id meanwhile: not pending
        ({"mexc-main-1": Known("requested")}, replace(_sweep(), withdrawal_id="w1"), 5000.0, []),
    ],
)
def test_sweep_changes(
    known: dict[str, Known], record: SweepRecord, wall: float, events: list[str]
) -> None:
    memory, out = sweep_changes(known, (record,), wall, 120.0)
    assert [a.event for a in out] == events
    assert memory[record.key].state == record.state
    # announced again with nothing changed: nothing
    assert sweep_changes(memory, (record,), wall, 120.0)[1] == []


_BY = ResolvedStep("alice", "spent from the wallet early")


@pytest.mark.parametrize(
    ("known", "record", "resolved", "events", "kind"),
    [
        # an operator's step: announced as a resolution, not as the state's own event
        (
            {"mexc-main-1": Known("sent")},
            replace(_sweep(), state="confirmed", txid=TXID),
            {("mexc-main-1", "confirmed"): _BY},
            ["settlement_resolved"],
            "settlement_confirmed",
        ),
        (
            {"mexc-main-1": Known("requested")},
            replace(_sweep(), state="failed", reason="resolved by alice: x"),
            {("mexc-main-1", "failed"): _BY},
            ["settlement_resolved"],
            "settlement_failed",
        ),
        (  # moved to accepted: logged, no notification (as an accepted sweep)
            {"mexc-main-1": Known("requested")},
            replace(_sweep(), state="accepted", withdrawal_id="w1"),
            {("mexc-main-1", "accepted"): _BY},
            ["settlement_resolved"],
            None,
        ),
        (  # resolved to accepted, then confirmed by the node: the confirmation is the node's
            {"mexc-main-1": Known("accepted")},
            replace(_sweep(), state="confirmed", txid=TXID),
            {("mexc-main-1", "accepted"): _BY},
            ["settlement_confirmed"],
            "settlement_confirmed",
        ),
        (  # first seen already resolved
            {},
            replace(_sweep(), state="failed", reason="resolved by alice: x"),
            {("mexc-main-1", "failed"): _BY},
            ["settlement_requested", "settlement_resolved"],
            "settlement_failed",
        ),
    ],
)
def test_a_resolution_is_announced_once_as_such(
    known: dict[str, Known],
    record: SweepRecord,
    resolved: dict[tuple[str, str], ResolvedStep],
    events: list[str],
    kind: str | None,
) -> None:
    memory, out = sweep_changes(known, (record,), 1001.0, 120.0, resolved)
    assert [a.event for a in out] == events
    last = out[-1].alert
    assert (last.kind if last is not None else None) == kind
    if events[-1] == "settlement_resolved" and last is not None:
        assert "alice" in last.body and "spent from the wallet early" in last.body
    assert sweep_changes(memory, (record,), 1001.0, 120.0, resolved)[1] == []


# --- against the ledger ---------------------------------------------------------------------


class Wall:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_changes_in_the_ledger_are_announced_once_with_their_fields(
    tmp_path: Path,
) -> None:
    register_secret(WD_SECRET)
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(ledger)
    old = replace(_sweep("old-1", ts=500.0))
    assert book.record_requested(old)
    book.advance("old-1", "confirmed", 600.0, txid="aa" * 32, confirmations=100)
    published: list[Alert] = []
    wall = Wall()
    watch = SettlementWatch(
        AsyncLedger(ledger).settlement_overview, published.append, wall_clock=wall
    )
    assert await watch.poll() == []  # the first read only learns
    assert published == []

    assert book.record_requested(_sweep(ts=1000.0))
    wall.now = 1001.0
    await watch.poll()
    book.advance("mexc-main-1", "accepted", 1002.0, withdrawal_id="w-77")
    book.advance("mexc-main-1", "sent", 1003.0, txid=TXID)
    wall.now = 1004.0
    with capture_logs() as logs:
        await watch.poll()
    book.advance("mexc-main-1", "confirmed", 1010.0, confirmations=100)
    wall.now = 1011.0
    await watch.poll()
    await watch.poll()  # nothing new: nothing more

    assert [a.kind for a in published] == ["settlement_requested", "settlement_confirmed"]
    requested, confirmed = published
    for alert in published:
        assert "mexc-main" in alert.body and "1500.5 KAS" in alert.body
    assert ADDRESS in requested.body
    assert TXID in confirmed.body and "100 confirmations" in confirmed.body
    # two steps between two reads: the state it is in is logged (the ledger keeps the trail)
    assert [(e["event"], e["state"]) for e in logs] == [("settlement_seen", "sent")]
    assert logs[0]["txid"] == TXID
    overview = watch.overview
    assert overview is not None and overview.open == ()
    assert overview.reached[("mexc-main", "KAS", "confirmed")] == 2
    assert overview.last_confirmed[("mexc-main", "KAS")] == 1010.0

    # A restart (a new watch) announces nothing old.
    again: list[Alert] = []
    restarted = SettlementWatch(
        AsyncLedger(ledger).settlement_overview, again.append, wall_clock=wall
    )
    await restarted.poll()
    await restarted.poll()
    assert again == []
    ledger.close()


async def test_a_failure_quoting_the_withdrawal_key_is_redacted(tmp_path: Path) -> None:
    register_secret(WD_SECRET)
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(ledger)
    published: list[Alert] = []
    watch = SettlementWatch(
        AsyncLedger(ledger).settlement_overview, published.append, wall_clock=Wall()
    )
    await watch.poll()
    book.record_requested(_sweep())
    # ccxt's error texts quote the signed request, key included
    reason = f"mexc GET https://api.mexc.com/api/v3/capital/withdraw?apiKey={WD_SECRET}: 30004"
    book.advance("mexc-main-1", "failed", 1001.0, reason=reason)
    with capture_logs() as logs:
        await watch.poll()
    assert [a.kind for a in published] == ["settlement_requested", "settlement_failed"]
    failed = published[1]
    assert "30004" in failed.body and "1500.5 KAS" in failed.body
    text = " ".join(f"{a.title} {a.body}" for a in published) + repr(logs)
    assert WD_SECRET not in text
    assert "**redacted**" in failed.body
    ledger.close()


async def test_a_resolution_in_the_ledger_is_announced_once(tmp_path: Path) -> None:
    register_secret(WD_SECRET)
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(ledger)
    published: list[Alert] = []
    wall = Wall()
    watch = SettlementWatch(
        AsyncLedger(ledger).settlement_overview, published.append, wall_clock=wall
    )
    book.record_requested(_sweep())
    book.advance("mexc-main-1", "accepted", 1000.5, withdrawal_id="w-1")
    book.advance("mexc-main-1", "sent", 1000.6, txid=TXID)
    await watch.poll()  # learns the stuck sweep
    why = f"the node lost it; key {WD_SECRET} must never show"
    book.resolve(Resolution("mexc-main-1", "confirmed", why, "alice"), 1001.0)
    wall.now = 1002.0
    with capture_logs() as logs:
        await watch.poll()
        await watch.poll()
    (alert,) = published
    assert alert.kind == "settlement_confirmed" and "marked confirmed by alice" in alert.title
    assert TXID in alert.body and "not by the node" in alert.body
    assert WD_SECRET not in alert.body + repr(logs)
    (seen,) = logs
    assert (seen["event"], seen["resolved_by"], seen["state"]) == (
        "settlement_seen",
        "alice",
        "confirmed",
    )
    ledger.close()


async def test_a_lost_answer_is_announced_as_pending_once(tmp_path: Path) -> None:
    ledger = Ledger(tmp_path / "kasmm.sqlite")
    book = SettlementBook(ledger)
    published: list[Alert] = []
    wall = Wall()
    watch = SettlementWatch(
        AsyncLedger(ledger).settlement_overview,
        published.append,
        wall_clock=wall,
        pending_after_s=60.0,
    )
    await watch.poll()
    book.record_requested(_sweep())
    wall.now = 1001.0
    await watch.poll()
    wall.now = 1100.0
    await watch.poll()
    wall.now = 1200.0
    await watch.poll()
    assert [a.kind for a in published] == ["settlement_requested", "settlement_pending"]
    assert "looked up" in published[1].body and "never sent again" in published[1].body
    ledger.close()


async def test_the_watch_survives_a_failing_read() -> None:
    calls = 0
    enough = anyio.Event()

    async def read(_since: float | None) -> SettlementOverview:
        nonlocal calls
        calls += 1
        if calls == 3:
            enough.set()
        raise OSError("disk gone")

    watch = SettlementWatch(read, lambda _a: None, poll_s=0.0)
    with capture_logs() as logs:
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch.run)
            await enough.wait()
            tg.cancel_scope.cancel()
    assert {e["event"] for e in logs} == {"settlement_watch_failed"}
    assert "disk gone" in logs[0]["error"]


# --- the invariant: whatever the reads see, each sweep is announced once per step ------------

_PATHS: list[list[str]] = [
    ["requested"],
    ["requested", "accepted"],
    ["requested", "accepted", "sent"],
    ["requested", "accepted", "sent", "confirmed"],
    ["requested", "sent", "confirmed"],
    ["requested", "failed"],
    ["requested", "accepted", "failed"],
    ["requested", "accepted", "sent", "failed"],
]


@given(
    paths=st.lists(st.sampled_from(_PATHS), min_size=1, max_size=4),
    reads=st.lists(st.lists(st.integers(0, 3), min_size=1, max_size=4), max_size=8),
)
def test_each_sweep_is_announced_once_and_its_end_once(
    paths: list[list[str]], reads: list[list[int]]
) -> None:
    """However the reads interleave with the sweeps' progress (a read sees each sweep at some
    step, never going back), requested is announced exactly once per sweep seen, and a
    confirmation or failure exactly once if and only if the last read saw it."""
    position = [0] * len(paths)
    known: dict[str, Known] = {}
    events: list[tuple[str, str]] = []
    last_seen: dict[str, str] = {}
    for read in [*reads, [3] * len(paths)]:
        rows = []
        for i, path in enumerate(paths):
            position[i] = min(len(path) - 1, max(position[i], read[i % len(read)]))
            state = path[position[i]]
            key = f"sw-{i}"
            rows.append(replace(_sweep(key), state=state, withdrawal_id="w"))  # type: ignore[arg-type]
            last_seen[key] = state
        known, out = sweep_changes(known, tuple(rows), 1001.0, 120.0)
        events.extend((a.event, a.record.key) for a in out)
    for key, state in last_seen.items():
        mine = [e for e, k in events if k == key]
        assert mine.count("settlement_requested") == 1
        for end in ("confirmed", "failed"):
            assert mine.count(f"settlement_{end}") == (1 if state == end else 0)
