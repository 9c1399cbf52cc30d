"""``kasmm validate PATH...``: every problem of the profiles as ``path:line:col: ...``.

A directory's ``_settlement.yaml`` is validated too: its structure, the destination with the
Kaspa SDK (checksum, network, never a private key) and the membership pass against the
directory's profiles, without requiring the withdrawal credentials (the host that validates
need not hold them; ``kasmm settle --execute`` checks them).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from kasmm.config.loader import ConfigIssue, DirectoryLoad, load_paths
from kasmm.config.settlement import SETTLEMENT_FILES
from kasmm.config.settlement_load import load_settlement
from kasmm.settle.check import find_settlement_file, sdk_destination_check

__all__ = ["validate_command"]


def validate_command(paths: Sequence[Path]) -> int:
    """Validate profile files/directories; print each issue (sorted) to stdout.

    Warnings are printed too (``...: field: warning: message``) but do not fail the run.
    A summary ``N profiles valid, M issues[, W warnings]`` goes to stderr. Returns 0 when
    everything is valid, 1 when there is any issue and 2 when a path does not exist (usage
    error).
    """
    missing = [p for p in paths if not Path(p).exists() and not Path(p).is_symlink()]
    if missing:
        for path in missing:
            print(f"kasmm validate: no such file or directory: {path}", file=sys.stderr)
        return 2
    result = load_paths([Path(p) for p in paths])
    settlement_issues = _settlement_issues(paths, result)
    result.issues.extend(settlement_issues)
    # Warnings (valid profiles, probably not meant) in the same format, marked "warning:".
    for issue in sorted([*result.issues, *result.warnings], key=lambda i: i.sort_key()):
        print(issue)
    sys.stdout.flush()
    n, m, w = len(result.profiles), len(result.issues), len(result.warnings)
    warned = f", {w} warning{'' if w == 1 else 's'}" if w else ""
    print(
        f"{n} profile{'' if n == 1 else 's'} valid, {m} issue{'' if m == 1 else 's'}{warned}",
        file=sys.stderr,
    )
    return 1 if result.issues else 0


def _settlement_issues(paths: Sequence[Path], result: DirectoryLoad) -> list[ConfigIssue]:
    """The issues of each given directory's ``_settlement.yaml``, and of a settlement file
    named directly (its membership checked against the profiles of its own directory)."""
    out: list[ConfigIssue] = []
    given = {name: lp.profile for name, lp in result.profiles.items()}
    seen: set[Path] = set()
    for raw in paths:
        path = Path(raw)
        profiles = given
        if path.is_dir():
            found = find_settlement_file(path)
        elif path.name in SETTLEMENT_FILES:
            found = path
            siblings = load_paths([path.parent]).profiles
            profiles = {name: lp.profile for name, lp in siblings.items()}
        else:
            found = None
        if found is None or found.resolve() in seen:
            continue
        seen.add(found.resolve())
        loaded = load_settlement(found, profiles=profiles, check_destination=sdk_destination_check)
        out.extend(loaded.issues)
    return out
