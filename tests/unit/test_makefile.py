"""``make run`` installs only what running needs; ``make test`` adds the dev tools (issue 16,
point 9). Read from ``make -n`` (what make would do) on a copy with no venv yet."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def _plan(tmp_path: Path, target: str) -> list[str]:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", target],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout.splitlines()


def test_make_run_installs_the_package_without_the_dev_tools(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "run")
    installs = [line for line in plan if " pip install " in line and "--upgrade pip" not in line]
    assert installs == [".venv/bin/python -m pip install --quiet -e ."]
    assert plan[0] == "python3 -m venv .venv"
    assert plan[-1] == ".venv/bin/kasmm supervise profiles/"


def test_make_test_installs_the_dev_tools(tmp_path: Path) -> None:
    plan = _plan(tmp_path, "test")
    installs = [line for line in plan if " pip install " in line and "--upgrade pip" not in line]
    assert installs == [".venv/bin/python -m pip install --quiet -e '.[dev]'"]
    # The whole suite on the Python source (the reference), then the unit tests on the compiled
    # hot path, required to be compiled so that a failed build cannot pass for a tested one.
    pure = plan.index("KASMM_PURE=1 .venv/bin/python -m pytest -m realtime tests")
    native = next(i for i, line in enumerate(plan) if "scripts/build_native.py" in line)
    assert pure < native
    assert (
        "KASMM_PURE=1 .venv/bin/python -m pytest -q -m 'not realtime' tests &" in plan[native - 1]
    )
    compiled_run = "\n".join(plan[native:])
    # Only the exchange emulators' own tests (test equipment, nothing compiled) and
    # settlement's (source only) run just once.
    skip = (
        "--ignore-glob='tests/unit/test_emulator_*' --ignore-glob='tests/unit/test_settle_*' "
        "--ignore-glob='tests/unit/test_settlement_*' -k 'not ccxt'"
    )
    for part in ("-n logical -m 'not realtime'", "-m realtime"):
        assert (
            f"KASMM_REQUIRE_NATIVE=1 .venv/bin/python -m pytest -q {part} {skip} "
            "tests/unit tests/contract"
        ) in compiled_run
    for kept in ("test_bot_safety.py", "test_soak_short.py", "test_crash_restart_short.py"):
        assert f"tests/integration/{kept}" in compiled_run


# --- make test itself, on a venv of stand-ins that log their calls ------------------------------

#: A stand-in for .venv/bin/python (and ruff, mypy): logs how it was called, in which pass and
#: part, and exits as the test says. The source's compute-only part logs its start and its end;
#: the build ends only once that part has started: run one after the other, the build would
#: end first (after 5 s).
FAKE = """#!/bin/sh
pass=; [ -n "$KASMM_PURE" ] && pass=source; [ -n "$KASMM_REQUIRE_NATIVE" ] && pass=compiled
case "$*" in
  *build_native.py*) echo build >> "$LOG"  # waits (5 s at most) for the tests to start
    i=0; until grep -q "source compute" "$LOG" || [ $i -ge 100 ]; do sleep 0.05; i=$((i+1)); done
    echo built >> "$LOG"; exit "$FAKE_BUILD";;
  *"-n logical -m not realtime"*) echo "$pass parallel" >> "$LOG";;
  *"-m not realtime"*) echo "$pass compute" >> "$LOG"; sleep 0.1; echo "$pass computed" >> "$LOG"
    exit "$FAKE_COMPUTE";;
  *"-m realtime"*) echo "$pass serial" >> "$LOG";;
  *) echo "$(basename "$0") $*" >> "$LOG";;
esac
"""


def _make_test(tmp_path: Path, build: int, compute: int) -> tuple[int, list[str]]:
    for name in ("Makefile", "pyproject.toml"):
        shutil.copy(REPO / name, tmp_path / name)
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    for tool in ("python", "ruff", "mypy"):
        (bin_dir / tool).write_text(FAKE)
        (bin_dir / tool).chmod(0o755)
    for stamp in (".installed-dev", ".installed-run"):  # installed: newer than pyproject.toml
        (tmp_path / ".venv" / stamp).touch()
    log = tmp_path / "calls.log"
    env = {
        "PATH": "/usr/bin:/bin",
        "LOG": str(log),
        "FAKE_BUILD": str(build),
        "FAKE_COMPUTE": str(compute),
    }
    done = subprocess.run(
        ["make", "--no-print-directory", "test"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return done.returncode, log.read_text().splitlines()


@pytest.mark.parametrize(
    ("build", "compute", "fails", "compiled"),
    [
        (0, 0, False, True),  # built: the compiled pass runs, parallel part first
        (3, 0, False, False),  # no C compiler: nothing compiled to test, the source passed
        (1, 0, True, False),  # a failed build fails make test
        (0, 1, True, False),  # a failed compute-only test, though run beside the build
        (3, 1, True, False),
    ],
)
def test_make_test_runs_the_source_compute_only_tests_beside_the_build(
    tmp_path: Path, build: int, compute: int, fails: bool, compiled: bool
) -> None:
    status, calls = _make_test(tmp_path, build, compute)
    assert (status != 0) is fails, calls
    assert calls[:3] == ["ruff check .", "mypy ", "source serial"]
    # The compute-only tests start before the build ends and end before anything else starts.
    beside = calls[3:7]
    assert sorted(beside) == ["build", "built", "source compute", "source computed"]
    assert beside.index("source compute") < beside.index("built")
    assert calls[7:] == (["compiled parallel", "compiled serial"] if compiled else [])


def test_each_pass_is_split_in_two_parts_that_cover_it_and_only_one_is_parallel(
    tmp_path: Path,
) -> None:
    """Each pass runs the same paths twice, with complementary markers: every test runs once,
    and only the tests that do not wait on or measure real time share the cores."""
    runs = [
        line[line.index("KASMM_") :]
        for line in _plan(tmp_path, "test")
        if " -m pytest " in line and not line.startswith("echo")
    ]
    assert len(runs) == 4
    for realtime, compute in ((runs[0], runs[1]), (runs[3], runs[2])):
        assert " -m realtime " in realtime and " -n " not in realtime
        assert " -m 'not realtime' " in compute
        paths = compute.split(" -m 'not realtime' ")[1]
        paths = re.sub(r" (&.*|\\)$", "", paths)
        assert paths == realtime.split(" -m realtime ")[1].removesuffix("; fi")
        env = [re.match(r"(KASMM_\w+=1) \.venv/bin/python -m pytest ", r) for r in runs]
        assert all(env)
    assert {runs[0].split()[0], runs[1].split()[0]} == {"KASMM_PURE=1"}
    assert {runs[2].split()[0], runs[3].split()[0]} == {"KASMM_REQUIRE_NATIVE=1"}
