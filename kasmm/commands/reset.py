"""``kasmm reset PROFILE``: clear a profile's halt (an operator's decision, recorded)."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

from kasmm.errors import LedgerLost
from kasmm.store import Ledger, LedgerError, SchemaError
from kasmm.store.state_dir import ledger_path, resolve_state_dir


def reset_command(profile: str, state_dir: Path | None, operator: str | None) -> int:
    """Record a reset in the ledger; a running supervisor resumes the profile within seconds.

    Exit 0 when a halt was cleared, 1 when the profile was not halted, 2 on usage errors and
    when the ledger cannot be opened (damaged, say: one line naming the file).
    """
    state = resolve_state_dir(state_dir)
    path = ledger_path(state)
    if not path.exists():
        print(f"kasmm reset: no ledger at {path}", file=sys.stderr)
        return 2
    who = operator or getpass.getuser()
    try:
        opened = Ledger(path)
    except (LedgerLost, LedgerError, SchemaError) as exc:
        print(f"kasmm reset: {exc}", file=sys.stderr)
        return 2
    with opened as ledger:
        halt = ledger.active_halt(profile)
        if not ledger.reset(profile, time.time(), who):
            print(f"kasmm reset: {profile}: not halted", file=sys.stderr)
            return 1
    rule = halt.rule if halt is not None else "?"
    print(f"{profile}: halt by {rule} cleared by {who}; the running supervisor resumes it")
    return 0
