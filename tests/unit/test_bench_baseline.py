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
