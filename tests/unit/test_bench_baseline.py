"""The benches' baseline column reports the code its kasmm really runs (bench/_baseline.py)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
PROBE = (
    "import sys; sys.path.insert(0, sys.argv[1]); import kasmm; from _baseline import hot_path; "
    "print(kasmm.__file__); print(hot_path())"
)


def test_a_baseline_older_than_make_native_reports_its_python_source(tmp_path: Path) -> None:
    """The editable install's finder serves ``kasmm.native`` from this tree to a worktree that
    has none; the baseline must not report this tree's build as its own."""
    old = tmp_path / "old" / "kasmm"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text('"""A kasmm from before make native."""\n')
    env = {**os.environ, "PYTHONPATH": str(tmp_path / "old")}
    run = subprocess.run(
        [sys.executable, "-c", PROBE, str(REPO / "bench")],
        env=env,
        cwd=tmp_path,  # not the repository, whose kasmm `python -c` would import first
        capture_output=True,
        text=True,
        check=True,
    )
    imported, said = run.stdout.splitlines()
    assert imported == str(old / "__init__.py")
    assert said == "pure Python: this version has no compiled hot path"


def test_a_baseline_reads_its_own_example_profiles(tmp_path: Path) -> None:
    """A bench's demo profile comes from the measured kasmm's tree: this tree's profile may
    carry settings a baseline's loader refuses (issue 19's ``pricing:`` once failed every
    ``--baseline-ref`` run)."""
    old = tmp_path / "old" / "kasmm"
    old.mkdir(parents=True)
    (old / "__init__.py").write_text('"""A kasmm of another tree."""\n')
    probe = "import sys; sys.path.insert(0, sys.argv[1]); from _baseline import kasmm_tree; "
    probe += "print(kasmm_tree())"
    run = subprocess.run(
        [sys.executable, "-c", probe, str(REPO / "bench")],
        env={**os.environ, "PYTHONPATH": str(tmp_path / "old")},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert run.stdout.strip() == str(tmp_path / "old")
    speed = (REPO / "bench" / "backtest_speed.py").read_text()
    assert 'kasmm_tree() / "profiles" / "kas-usdt-sim.yaml"' in speed
