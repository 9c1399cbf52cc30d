"""The profile directory vanishing, coming back, or being swapped under a running supervisor."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import anyio
import pytest
from structlog.testing import capture_logs

from kasmm.supervisor import Supervisor, supervise
from tests.integration.test_supervisor import VenueLog, profile_yaml, write
from tests.support import eventually


def running(sup: Supervisor, log: VenueLog, name: str) -> bool:
    """``name`` has a slot and its newest venue has its four quotes up."""
    return name in sup.slots and bool(log.venues[name]) and log.last(name).open_order_count == 4


@pytest.mark.anyio
async def test_a_deleted_directory_keeps_profiles_running_and_a_recreated_one_is_followed(
    tmp_path: Path,
) -> None:
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    for name in ("p1", "p2"):
        write(profiles, name, profile_yaml(name))
    log = VenueLog()
    sup = Supervisor(profiles, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(profiles, supervisor=sup, task_status=task_status)
        )
        with capture_logs() as logs:
            shutil.rmtree(profiles)
            await eventually(lambda: sup.status()["supervisor"]["directory_missing"], 10)
        missing = [e for e in logs if e["event"] == "profile_dir_missing"]
        assert len(missing) == 1 and missing[0]["log_level"] == "error"
        # The running profiles keep running, untouched, and the supervisor stays healthy.
        assert sorted(sup.slots) == ["p1", "p2"]
        assert all(len(log.venues[n]) == 1 and running(sup, log, n) for n in ("p1", "p2"))
        healthy, reason = sup.health()
        assert healthy and "missing" in reason
        # Recreated the plain way (mkdir, then the files): followed again, a new file included.
        profiles.mkdir()
        for name in ("p1", "p2", "p3"):
            write(profiles, name, profile_yaml(name))
        await eventually(lambda: all(running(sup, log, n) for n in ("p1", "p2", "p3")), 10)
        assert not sup.status()["supervisor"]["directory_missing"]
        # ... and the new directory is watched: an edit in it is picked up.
        write(profiles, "p3", profile_yaml("p3", spread=30))
        await eventually(lambda: len(log.venues["p3"]) == 2 and running(sup, log, "p3"), 10)
        tg.cancel_scope.cancel()
    assert sup.exit_code == 0


@pytest.mark.anyio
async def test_a_swapped_release_symlink_runs_the_new_release(tmp_path: Path) -> None:
    release1, release2 = tmp_path / "release1", tmp_path / "release2"
    release1.mkdir()
    release2.mkdir()
    write(release1, "p1", profile_yaml("p1"))
    write(release1, "p2", profile_yaml("p2"))
    write(release2, "p1", profile_yaml("p1"))  # unchanged by the release
    write(release2, "p2", profile_yaml("p2", spread=30))  # changed
    write(release2, "p3", profile_yaml("p3"))  # new
    current = tmp_path / "current"
    current.symlink_to("release1")
    log = VenueLog()
    sup = Supervisor(current, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(
            lambda *, task_status: supervise(current, supervisor=sup, task_status=task_status)
        )
        assert sorted(sup.slots) == ["p1", "p2"]
        # `ln -sfn release2 current`: a new link renamed over the old one.
        tmp_link = tmp_path / "current.tmp"
        tmp_link.symlink_to("release2")
        os.replace(tmp_link, current)
        await eventually(lambda: running(sup, log, "p3"), 10)
        await eventually(lambda: len(log.venues["p2"]) == 2 and running(sup, log, "p2"), 10)
        assert len(log.venues["p1"]) == 1  # the same profile in the new release: untouched
        # The new release's directory is the one watched now.
        write(release2, "p1", profile_yaml("p1", spread=25))
        await eventually(lambda: len(log.venues["p1"]) == 2 and running(sup, log, "p1"), 10)
        tg.cancel_scope.cancel()
    assert sup.exit_code == 0


@pytest.mark.anyio
async def test_a_reload_while_the_directory_is_missing_changes_nothing(tmp_path: Path) -> None:
    """SIGHUP (or --no-watch) with the directory gone: the same as the watcher's view."""
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    write(profiles, "p1", profile_yaml("p1"))
    log = VenueLog()
    sup = Supervisor(profiles, venue_factory=log.factory)
    async with anyio.create_task_group() as tg:
        await tg.start(sup.run)
        profiles.rename(tmp_path / "elsewhere")
        with capture_logs() as logs:
            first = await sup.reload()
            second = await sup.reload()
        assert first.stopped == [] and second.stopped == []
        assert [e["event"] for e in logs].count("profile_dir_missing") == 1  # once, not per reload
        assert running(sup, log, "p1") and len(log.venues["p1"]) == 1
        status = sup.status()["supervisor"]
        assert status["directory_missing"] is True
        assert any("no such file or directory" in e for e in status["config_errors"])
        (tmp_path / "elsewhere").rename(profiles)
        with capture_logs() as logs:
            back = await sup.reload()
        assert back.unchanged == ["p1"]
        events = [e["event"] for e in logs]
        assert "profile_dir_restored" in events and "profile_dir_missing" not in events
        assert sup.status()["supervisor"]["directory_missing"] is False
        tg.cancel_scope.cancel()
