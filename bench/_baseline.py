"""Measure a baseline build in the same run: the same bench script on a ``git worktree`` of a ref.

The machine is shared and noisy, so a figure means little next to one measured another day;
benches that take ``--baseline-ref REF`` run themselves a second time, in a subprocess whose
``PYTHONPATH`` is a worktree of ``REF`` (under ``/tmp``, removed afterwards), and print both
columns side by side. The script is this tree's (so both sides measure the same way); only the
``kasmm`` package it imports differs, which the child reports and :func:`run_on_ref` checks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def resolve(ref: str) -> str:
    """The short commit id ``ref`` names."""
    return subprocess.run(
        ["git", "-C", str(REPO), "rev-parse", "--short", f"{ref}^{{commit}}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


def run_on_ref(
    ref: str, script: Path, args: Sequence[str], *, keep: bool = False
) -> dict[str, Any]:
    """Run ``script args`` with ``kasmm`` imported from a worktree of ``ref``; return the last
    line of its output parsed as JSON (with ``"ref"`` added). The script must print a JSON
    object with ``"kasmm"`` (the imported package's file) as its last line."""
    sha = resolve(ref)
    tree = Path(f"/tmp/kasmm-baseline-{sha}")
    made = False
    if not tree.exists():
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha],
            check=True,
            capture_output=True,
        )
        made = True
    try:
        env = {**os.environ, "PYTHONPATH": str(tree)}
        proc = subprocess.run(
            [sys.executable, str(script), *args],
            env=env,
            check=True,
            capture_output=True,
            text=True,
        )
        result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    finally:
        if made and not keep:
            subprocess.run(
                ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                check=False,
                capture_output=True,
            )
    if not str(result.get("kasmm", "")).startswith(str(tree)):
        raise SystemExit(f"the baseline imported kasmm from {result.get('kasmm')}, not {tree}")
    result["ref"] = sha
    return result


def ratio(new: float, old: float) -> str:
    """``new / old`` as ``1.23x`` (``-`` when undefined)."""
    return f"{new / old:.2f}x" if old else "-"


@contextmanager
def checked_out(ref: str) -> Iterator[tuple[Path, str]]:
    """A worktree of ``ref`` for several runs (a bench that runs one child per size): its path
    and short commit id. It is made in a fresh directory under /tmp, so a concurrent bench's
    worktree of the same ref is never reused or removed, and removed on exit."""
    sha = resolve(ref)
    tree = Path(tempfile.mkdtemp(prefix=f"kasmm-baseline-{sha}-"))
    subprocess.run(
        ["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), sha],
        check=True,
        capture_output=True,
    )
    try:
        yield tree, sha
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
            check=False,
            capture_output=True,
        )


def env_for(tree: Path) -> dict[str, str]:
    """The environment of a child that imports ``kasmm`` from ``tree``."""
    return {**os.environ, "PYTHONPATH": str(tree)}


def imported_from(result: dict[str, Any], tree: Path) -> bool:
    """Whether a child's result says it imported ``kasmm`` from ``tree`` (its ``"kasmm"``)."""
    return str(result.get("kasmm", "")).startswith(f"{tree}/")


def run_source(script: Path, args: Sequence[str]) -> dict[str, Any] | None:
    """This tree's figures from its Python source (``KASMM_PURE=1``), when this process runs the
    compiled hot path (``make native``); ``None`` when it runs the source already. The child runs
    ``script args`` and prints its JSON figures as the last line, like :func:`run_on_ref`."""
    from kasmm import native

    if not native.status().compiled:
        return None
    proc = subprocess.run(
        [sys.executable, str(script), *args],
        env={**os.environ, "KASMM_PURE": "1"},
        check=True,
        capture_output=True,
        text=True,
    )
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    return result


def kasmm_tree() -> Path:
    """The repository of the ``kasmm`` this process imports: a baseline's worktree for the
    baseline column, whose own example profiles its loader knows (this tree's may carry
    settings an older kasmm refuses)."""
    import kasmm

    return Path(kasmm.__file__).resolve().parents[1]


def hot_path() -> str:
    """Which code this process runs: compiled or the Python source, and why."""
    import kasmm

    package = Path(kasmm.__file__).parent
    # A baseline from before `make native` has no kasmm/native.py (and the editable install's
    # finder would import this tree's instead).
    if not (package / "native.py").exists():
        return "pure Python: this version has no compiled hot path"
    from kasmm import native

    return native.status().describe()
