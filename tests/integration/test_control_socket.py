"""The operator's control socket on a running supervisor (sim profiles, real ledger, real socket).

Each action's effect is awaited as an event (a state, a log line, a ledger row); the absence of
quoting while paused is shown by the bot being stopped and no new venue built, never by a sleep.
"""

from __future__ import annotations

import os
import stat
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from structlog.testing import capture_logs

from kasmm.bot.stats import BotState
from kasmm.commands.settle_gates import halted_profiles, supervisor_states
from kasmm.daemon.control_socket import (
    ControlSocketError,
    send_request,
    serve_control_socket,
    socket_candidates,
    socket_path,
)
from kasmm.shard import Shard
from kasmm.store import AsyncLedger, Ledger
from kasmm.supervisor import Supervisor, supervise
from tests.integration.test_supervisor import VenueLog, profile_yaml, write
from tests.support import eventually, halting_profile

pytestmark = pytest.mark.anyio


@contextmanager
def opened_ledger(state: Path) -> Iterator[AsyncLedger]:
    state.mkdir(exist_ok=True, mode=0o700)
    with Ledger(state / "kasmm.sqlite") as ledger:
        yield AsyncLedger(ledger)


@asynccontextmanager
async def running(
    profiles: Path, state: Path, ledger: AsyncLedger, log: VenueLog
) -> AsyncIterator[tuple[Supervisor, Path]]:
    """A supervisor with its control socket at ``state/control.sock``."""
    sock = socket_path(state, None)
    sup = Supervisor(profiles, venue_factory=log.factory, ledger=ledger)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(
                profiles, supervisor=sup, watch=False, control_socket=sock, task_status=task_status
            )
        )
        yield sup, sock
        tg.cancel_scope.cancel()


async def ask(sock: Path, **request: Any) -> dict[str, Any]:
    return await anyio.to_thread.run_sync(lambda: send_request(sock, request))


async def test_socket_is_private_answers_bad_requests_and_is_removed_on_exit(
    tmp_path: Path,
) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    state = tmp_path / "state"
    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, VenueLog()) as (_sup, sock):
            assert stat.S_IMODE(os.stat(sock).st_mode) == 0o600
            assert stat.S_ISSOCK(os.stat(sock).st_mode)
            raw = await anyio.to_thread.run_sync(lambda: _raw(sock, b"{nope\n[1]\n"))
            assert raw[0].startswith('{"ok": false, "error": "invalid JSON')
            assert raw[1] == '{"ok": false, "error": "a request is a JSON object"}'
            assert await ask(sock, action="explode", profile="p1") == {
                "ok": False,
                "error": "action must be one of reset, pause, resume, mode, reload, not 'explode'",
            }
            assert await ask(sock, action="pause", profile="nobody") == {
                "ok": False,
                "error": "unknown profile 'nobody': not run by this supervisor",
            }
            answer = await ask(sock, action="mode", profile="p1", mode="turbo")
            assert answer["ok"] is False and "mode must be one of" in answer["error"]
            assert (await ask(sock, action="resume", profile="p1"))["error"] == "p1 is not paused"
            assert (await ask(sock, action="reset", profile="p1"))["error"] == "p1 is not halted"
            assert (await ask(sock, action="pause"))["error"] == "pause needs a profile"
        assert not sock.exists()
    with pytest.raises(ControlSocketError, match="no supervisor socket"):
        send_request(sock, {"action": "reload"})


def _raw(sock: Path, data: bytes) -> list[str]:
    import socket as s

    with s.socket(s.AF_UNIX, s.SOCK_STREAM) as conn:
        conn.connect(str(sock))
        conn.sendall(data)
        out = b""
        while out.count(b"\n") < data.count(b"\n"):
            out += conn.recv(4096)
    return out.decode().splitlines()


async def test_pause_cancels_orders_and_holds_until_resume_across_reload_and_restart(
    tmp_path: Path,
) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    write(tmp_path, "p2", profile_yaml("p2"))
    state = tmp_path / "state"
    log = VenueLog()
    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, log) as (sup, sock):
            venue = log.last("p1")
            assert venue.open_order_count > 0
            answer = await ask(sock, action="pause", profile="p1", operator="alice")
            assert answer == {
                "ok": True,
                "message": "p1 paused by alice: its orders are being cancelled",
            }
            runner = sup.slots["p1"]
            await eventually(lambda: runner.state == "paused")
            assert runner.bot is not None and runner.bot.state is BotState.STOPPED
            assert venue.open_order_count == 0
            assert len(log.venues["p1"]) == 1  # no new bot while paused
            row = next(r for r in sup.status()["profiles"] if r["name"] == "p1")
            assert row["state"] == "paused" and row["paused_by"] == "alice"
            assert sup.slots["p2"].state == "quoting"  # the others trade on
            again = await ask(sock, action="pause", profile="p1")
            assert again == {"ok": False, "error": "p1 is already paused (by alice)"}

            # A reload that restarts p1 (its file changed) keeps it paused.
            write(tmp_path, "p1", profile_yaml("p1", spread=30.0))
            assert (await ask(sock, action="reload", operator="alice"))["ok"]
            assert sup.slots["p1"] is not runner
            await eventually(lambda: sup.slots["p1"].state == "paused")
            assert len(log.venues["p1"]) == 1

        # A restart on the same ledger starts it paused too.
        async with running(tmp_path, state, ledger, log) as (sup, sock):
            assert sup.slots["p1"].state == "paused" and sup.slots["p1"].paused_by == "alice"
            assert len(log.venues["p1"]) == 1
            answer = await ask(sock, action="resume", profile="p1", operator="bob")
            assert answer == {"ok": True, "message": "p1 resumed by bob"}
            await eventually(lambda: sup.slots["p1"].state == "quoting")
            assert len(log.venues["p1"]) == 2
            assert log.last("p1").open_order_count > 0
        events = [
            (e.kind, e.details["operator"])
            for e in await ledger.risk_events("p1")
            if e.rule == "operator"
        ]
        assert events == [("trip", "alice"), ("clear", "bob")]


async def test_mode_switch_is_an_override_recorded_as_the_operators(tmp_path: Path) -> None:
    write(tmp_path, "p1", profile_yaml("p1"))
    state = tmp_path / "state"
    log = VenueLog()
    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, log) as (sup, sock):
            runner = sup.slots["p1"]
            assert runner.bot is not None and runner.bot.mode == "passive"
            answer = await ask(sock, action="mode", profile="p1", mode="aggressive")
            assert answer == {"ok": True, "message": f"p1 switched to aggressive by {_me()}"}
            await eventually(lambda: runner.bot is not None and runner.bot.mode == "aggressive")
            assert runner.mode_override == "aggressive"
            assert sup.make_bot(runner).mode == "aggressive"  # a restarted bot keeps it
        changes = [(m.mode, m.source) for m in await ledger.mode_changes("p1")]
        assert ("aggressive", "operator") in changes
        actions = [
            (a.operator, a.action, a.profile, a.details["mode"])
            for a in ledger.ledger.operator_actions()
        ]
        assert actions == [(_me(), "mode", "p1", "aggressive")]


async def test_reset_clears_a_halt_through_the_ledger(tmp_path: Path) -> None:
    write(tmp_path, "dd", halting_profile("dd"))
    state = tmp_path / "state"
    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, VenueLog()) as (sup, sock):
            await eventually(lambda: _row(sup, "dd")["state"] == "halted", within_s=30)
            row = _row(sup, "dd")
            assert row["halt_reason"].startswith("max_drawdown: ")
            assert row["engaged"][0]["rule"] == "max_drawdown"
            with capture_logs() as logs:
                answer = await ask(sock, action="reset", profile="dd", operator="carol")
                assert answer["ok"], answer
                await eventually(
                    lambda: any(
                        e["event"] == "trading_state_changed" and e.get("previous") == "halted"
                        for e in logs
                    ),
                    within_s=10,
                )
        reset = [e for e in await ledger.risk_events("dd") if e.kind == "reset"]
        assert [e.details["operator"] for e in reset] == ["carol"]
        assert [(a.operator, a.action, a.profile) for a in ledger.ledger.operator_actions()] == [
            ("carol", "reset", "dd")
        ]


async def test_the_status_query_shows_a_halt_to_kasmm_settle(tmp_path: Path) -> None:
    """The read-only ``status`` query answers /status's document; settle's halted-profile gate
    reads a running supervisor through it (and the ledger's latched halt on its own)."""
    write(tmp_path, "dd", halting_profile("dd"))
    write(tmp_path, "p1", profile_yaml("p1"))
    state = tmp_path / "state"
    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, VenueLog()) as (sup, sock):
            await eventually(lambda: _row(sup, "dd")["state"] == "halted", within_s=30)
            answer = await ask(sock, action="status")
            assert answer["ok"] is True
            names = [row["name"] for row in answer["status"]["profiles"]]
            assert names == ["dd", "p1"]
            states = await anyio.to_thread.run_sync(supervisor_states, state)
            assert states["dd"] == "halted" and states["p1"] != "halted"
            held = await anyio.to_thread.run_sync(
                lambda: halted_profiles(ledger.ledger, state, ["dd", "p1", "elsewhere"])
            )
            assert held == ("dd",)
        assert supervisor_states(state) == {}  # no supervisor: the ledger alone decides
        assert halted_profiles(ledger.ledger, state, ["dd", "p1"]) == ("dd",)


def test_a_client_finds_the_socket_of_a_profiles_shard(tmp_path: Path) -> None:
    from kasmm.shard import shard_of

    for i in range(3):
        socket_path(tmp_path, Shard(i, 3)).touch()
    mine = socket_path(tmp_path, Shard(shard_of("p1", 3), 3))
    assert socket_candidates(tmp_path, "p1") == [mine]
    assert len(socket_candidates(tmp_path, None)) == 3
    socket_path(tmp_path, None).touch()
    assert socket_candidates(tmp_path, "p1") == [tmp_path / "control.sock", mine]


def _row(sup: Supervisor, name: str) -> dict[str, Any]:
    return next(r for r in sup.status()["profiles"] if r["name"] == name)


def _me() -> str:
    import getpass

    return getpass.getuser()


async def test_a_second_supervisor_never_takes_over_a_live_socket(tmp_path: Path) -> None:
    """Regression: a supervisor of another profile directory sharing the state directory
    renamed its own socket over the running one's, so `kasmm pause` reached the wrong
    supervisor, and the first could not be acted on again. Now the later one leaves a socket
    that answers alone (and says so); a socket nobody answers on (a crash's) is still
    replaced."""
    write(tmp_path, "p1", profile_yaml("p1"))
    state = tmp_path / "state"
    reached: list[Mapping[str, Any]] = []

    async def intruder(message: Mapping[str, Any], peer: str) -> dict[str, Any]:
        reached.append(message)
        return {"ok": True, "message": "the intruder answered"}

    with opened_ledger(state) as ledger:
        async with running(tmp_path, state, ledger, VenueLog()) as (_sup, sock):
            inode = os.stat(sock).st_ino
            with capture_logs() as logs:
                async with anyio.create_task_group() as tg:
                    await tg.start(
                        lambda *, task_status: serve_control_socket(
                            sock, intruder, task_status=task_status
                        )
                    )
                    answer = await ask(sock, action="resume", profile="p1")
                    tg.cancel_scope.cancel()
            assert answer == {"ok": False, "error": "p1 is not paused"}  # the first answered
            assert not reached
            assert os.stat(sock).st_ino == inode
            assert [e["path"] for e in logs if e["event"] == "control_socket_in_use"] == [str(sock)]
        assert not sock.exists()

    # What a crash leaves: a socket file nobody listens on. It is replaced.
    import socket as s

    with s.socket(s.AF_UNIX, s.SOCK_STREAM) as dead:
        dead.bind(str(sock))
    assert stat.S_ISSOCK(os.stat(sock).st_mode)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: serve_control_socket(sock, intruder, task_status=task_status)
        )
        assert (await ask(sock, action="reload")) == {
            "ok": True,
            "message": "the intruder answered",
        }
        tg.cancel_scope.cancel()
    assert not sock.exists()
