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
    pure = plan.index("KASMM_PURE=1 .venv/bin/python -m pytest -n auto -m 'not realtime' tests")
    assert plan[pure + 1] == "KASMM_PURE=1 .venv/bin/python -m pytest -m realtime tests"
    native = next(i for i, line in enumerate(plan) if "scripts/build_native.py" in line)
    assert pure < native
    compiled_run = "\n".join(plan[native:])
    # Only the exchange emulators' own tests (test equipment, nothing compiled) run just once.
    skip = "--ignore-glob='tests/unit/test_emulator_*' -k 'not ccxt'"
    for part in ("-n auto -m 'not realtime'", "-m realtime"):
        assert (
            f"KASMM_REQUIRE_NATIVE=1 .venv/bin/python -m pytest -q {part} {skip} "
            "tests/unit tests/contract"
        ) in compiled_run
    for kept in ("test_bot_safety.py", "test_soak_short.py", "test_crash_restart_short.py"):
        assert f"tests/integration/{kept}" in compiled_run


def test_each_pass_is_split_in_two_parts_that_cover_it_and_only_one_is_parallel(
    tmp_path: Path,
) -> None:
    """Each pass runs the same paths twice, with complementary markers: every test runs once,
    and only the tests that do not wait on or measure real time share the cores."""
    runs = [line for line in _plan(tmp_path, "test") if " -m pytest " in line]
    assert len(runs) == 4
    for parallel, serial in ((runs[0], runs[1]), (runs[2], runs[3])):
        assert " -n auto -m 'not realtime' " in parallel and " -n " not in serial
        paths = parallel.split(" -m 'not realtime' ")[1].removesuffix(" \\")
        assert paths == serial.split(" -m realtime ")[1].removesuffix("; fi")
        env = [
            re.search(r"(KASMM_\w+=1) \.venv/bin/python -m pytest ", r) for r in (parallel, serial)
        ]
        assert env[0] and env[1] and env[0][1] == env[1][1]
