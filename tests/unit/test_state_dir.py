"""State directory locks: one supervisor per (overlapping) shard, one process per profile."""

from __future__ import annotations

import os
import re
import stat
import string
from itertools import product
from pathlib import Path

import pytest

from kasmm.commands.run import run_command
from kasmm.errors import KasmmError
from kasmm.shard import Shard, shard_of
from kasmm.store.state_dir import (
    EXIT_IN_USE,
    Holder,
    LockBusy,
    LockFile,
    ProfileLocks,
    hold_profile,
    ledger_path,
    lock_supervisor,
    locks_dir,
    prepare_state_dir,
    read_holder,
    resolve_state_dir,
    shards_overlap,
)

ME = os.getpid()


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return prepare_state_dir(tmp_path / "state")


# --- paths -----------------------------------------------------------------------------------


def test_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    assert resolve_state_dir(None) == Path("state")
    assert resolve_state_dir(tmp_path) == tmp_path
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/kasmm:/var/lib/other")
    assert resolve_state_dir(None) == Path("/var/lib/kasmm")
    assert ledger_path(tmp_path) == tmp_path / "kasmm.sqlite"


def test_state_and_locks_dirs_are_private(tmp_path: Path) -> None:
    state = prepare_state_dir(tmp_path / "a" / "state")
    for directory in (state, locks_dir(state)):
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert prepare_state_dir(state) == state  # idempotent


# --- one lock file ---------------------------------------------------------------------------


def test_lock_file_names_its_holder_and_refuses_a_second_holder(state: Path) -> None:
    path = locks_dir(state) / "x.lock"
    with LockFile(path, "kasmm run") as lock:
        held = lock.held  # a local: mypy would keep lock.held narrowed to True past the block
        assert held
        assert path.read_text() == f"{ME} kasmm run\n"
        assert stat.S_IMODE(path.stat().st_mode) == 0o600
        assert read_holder(path) == Holder(ME, "kasmm run")
        # flock conflicts between open files, so a second holder in this process is refused too.
        with pytest.raises(LockBusy) as refused:
            LockFile(path, "kasmm supervise").acquire()
        assert refused.value.holder == Holder(ME, "kasmm run")
        assert str(refused.value) == f"{path} is held by PID {ME} (kasmm run)"
    assert not lock.held
    assert path.read_text() == ""  # no stale PID left behind
    with LockFile(path, "again"):
        assert read_holder(path) == Holder(ME, "again")


@pytest.mark.parametrize(
    ("content", "holder", "shown"),
    [
        ("", Holder(None, ""), "another process (PID unknown)"),
        ("12 kasmm run\n", Holder(12, "kasmm run"), "PID 12 (kasmm run)"),
        ("12\n", Holder(12, ""), "PID 12"),
        ("x12 y\n", Holder(None, ""), "another process (PID unknown)"),
        ("١٢ y\n", Holder(None, ""), "another process (PID unknown)"),
    ],
)
def test_holder_is_read_best_effort(
    tmp_path: Path, content: str, holder: Holder, shown: str
) -> None:
    path = tmp_path / "h.lock"
    path.write_text(content)
    assert read_holder(path) == holder
    assert str(holder) == shown
    assert read_holder(tmp_path / "missing.lock") == Holder(None, "")


def test_a_symlink_in_place_of_a_lock_file_is_not_followed(state: Path, tmp_path: Path) -> None:
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    (locks_dir(state) / "profile-a.lock").symlink_to(target)
    with pytest.raises(OSError):
        ProfileLocks(state, "kasmm run").hold("a")
    assert target.read_text() == "keep"


# --- shards ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("a", "b", "overlap"),
    [
        ((0, 1), (0, 1), True),  # two unsharded supervisors
        ((0, 1), (3, 4), True),  # the unsharded one runs every shard's profiles
        ((0, 2), (0, 2), True),
        ((0, 2), (1, 2), False),  # shards of one N partition the profiles
        ((0, 2), (1, 4), False),  # h = 0 mod 2 and h = 1 mod 4 have no solution
        ((0, 2), (2, 4), True),
        ((1, 2), (3, 4), True),
        ((0, 2), (1, 3), True),  # coprime counts always overlap
        ((2, 6), (1, 4), False),  # gcd 2: 2 and 1 differ mod 2
        ((2, 6), (0, 4), True),
    ],
)
def test_shards_overlap_table(a: tuple[int, int], b: tuple[int, int], overlap: bool) -> None:
    assert shards_overlap(a, b) is overlap
    assert shards_overlap(b, a) is overlap


def test_shards_overlap_exactly_when_some_profile_name_lands_in_both() -> None:
    """The rule against the real hash: over many names, two shards share one iff it says so."""
    names = ["".join(p) for p in product(string.ascii_lowercase, repeat=3)]  # 17,576 names
    counts = (1, 2, 3, 4, 6)  # all divide 12, so a name's residue mod 12 gives its shard in each
    residues = {shard_of(name, 12) for name in names}
    assert residues == set(range(12))
    for n, m in product(counts, counts):
        both = {(r % n, r % m) for r in residues}
        for i, j in product(range(n), range(m)):
            assert shards_overlap((i, n), (j, m)) is ((i, j) in both), (i, n, j, m)


def test_second_supervisor_of_a_shard_is_refused_naming_the_holder(
    state: Path, tmp_path: Path
) -> None:
    profiles = tmp_path / "profiles"
    with lock_supervisor(state, profiles, Shard(0, 2)):
        with pytest.raises(LockBusy) as refused:
            lock_supervisor(state, profiles, Shard(0, 2))
        assert str(refused.value) == (
            f"state dir {state}/ is in use by PID {ME} (kasmm supervise {profiles} --shard 0/2)"
        )
        # Disjoint shards run side by side, overlapping ones (any N) are refused.
        with (
            lock_supervisor(state, profiles, Shard(1, 4)),
            lock_supervisor(state, profiles, Shard(3, 4)),
        ):
            for overlapping in (Shard(2, 4), Shard(1, 2), Shard(0, 3), None):
                with pytest.raises(LockBusy, match=f"in use by PID {ME} "):
                    lock_supervisor(state, profiles, overlapping)
    with lock_supervisor(state, profiles, None) as unsharded:
        assert unsharded.held
        with pytest.raises(LockBusy, match=re.escape(f"(kasmm supervise {profiles})") + "$"):
            lock_supervisor(state, profiles, Shard(1, 3))


def test_supervisors_of_other_directories_share_a_state_dir(
    state: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One supervisor per profile directory, one ledger (README, systemd drop-ins): allowed.
    The same directory named another way (relative, absolute) is the same directory."""
    monkeypatch.chdir(tmp_path)
    with (
        lock_supervisor(state, tmp_path / "eu", None),
        lock_supervisor(state, Path("us"), None),
        pytest.raises(LockBusy, match=re.escape(f"kasmm supervise {tmp_path / 'us'}")),
    ):
        lock_supervisor(state, tmp_path / "us", Shard(0, 2))


def test_refused_supervisor_releases_its_own_lock(state: Path, tmp_path: Path) -> None:
    profiles = tmp_path / "profiles"
    with lock_supervisor(state, profiles, Shard(0, 2)):
        with pytest.raises(LockBusy):
            lock_supervisor(state, profiles, Shard(2, 4))  # took 2/4, then saw 0/2
        mine = [p for p in locks_dir(state).iterdir() if p.name.endswith("-2-4.lock")]
        assert len(mine) == 1 and read_holder(mine[0]) == Holder(None, "")
    with lock_supervisor(state, profiles, Shard(2, 4)):
        pass


# --- profiles --------------------------------------------------------------------------------


def test_profile_lock_refuses_a_second_runner(state: Path) -> None:
    supervisor = ProfileLocks(state, "kasmm supervise --shard 1/2")
    with supervisor.hold("mm"):
        assert supervisor.path("mm").name == "profile-mm.lock"
        with pytest.raises(LockBusy) as refused:
            ProfileLocks(state, "kasmm run").hold("mm")
        assert isinstance(refused.value, KasmmError)
        assert str(refused.value) == (
            f"profile mm is already running in PID {ME} (kasmm supervise --shard 1/2)"
        )
        with ProfileLocks(state, "kasmm run").hold("mm1"):  # another profile: its own lock
            pass
    with hold_profile(None, "mm"), hold_profile(supervisor, "mm"):
        pass


def test_kasmm_run_refuses_a_profile_running_elsewhere(
    state: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Regression (issue 13.2): `kasmm run` started a profile a supervisor was running."""
    profile = Path(__file__).resolve().parents[2] / "profiles" / "kas-usdt-sim.yaml"
    with ProfileLocks(state, "kasmm supervise").hold("kas-usdt-sim"):
        status = run_command(profile, duration=0.0, summary_json=None, state_dir=state)
    assert status == EXIT_IN_USE == 75
    assert capsys.readouterr().err.splitlines() == [
        f"kasmm run: profile kas-usdt-sim is already running in PID {ME} (kasmm supervise); "
        f"state dir {state}/"
    ]
