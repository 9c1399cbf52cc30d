"""``kasmm reset PROFILE``: clear a profile's halt (an operator's decision, recorded)."""

from __future__ import annotations

import getpass
import sys
import time
from pathlib import Path

from kasmm.store import Ledger
from kasmm.supervise_cmd import ledger_path, resolve_state_dir


def reset_command(profile: str, state_dir: Path | None, operator: str | None) -> int:
    """Record a reset in the ledger; a running supervisor resumes the profile within seconds.

    Exit 0 when a halt was cleared, 1 when the profile was not halted, 2 on usage errors.
    """
    state = resolve_state_dir(state_dir)
    path = ledger_path(state)
    if not path.exists():
        print(f"kasmm reset: no ledger at {path}", file=sys.stderr)
        return 2
    who = operator or getpass.getuser()
    with Ledger(path) as ledger:
        halt = ledger.active_halt(profile)
        if not ledger.reset(profile, time.time(), who):
            print(f"kasmm reset: {profile}: not halted", file=sys.stderr)
            return 1
    rule = halt.rule if halt is not None else "?"
    print(f"{profile}: halt by {rule} cleared by {who}; the running supervisor resumes it")
    return 0
