"""``kasmm top``: the live console of a running supervisor (:mod:`kasmm.console`)."""

from __future__ import annotations

import getpass
import os
import sys
from pathlib import Path

from kasmm.control import parse_addr
from kasmm.store.state_dir import resolve_state_dir

__all__ = ["full_screen_possible", "top_command"]


def full_screen_possible() -> bool:
    """Whether stdout is a terminal that can take a full-screen application."""
    term = os.environ.get("TERM", "")
    return sys.stdout.isatty() and sys.stdin.isatty() and term not in ("", "dumb")


def top_command(
    addr: str,
    *,
    state_dir: Path | None,
    operator: str | None,
    plain: bool,
    interval: float,
) -> int:
    """Run the console; the plain reprint with ``plain`` or without a capable terminal.

    :return: 0 when quit, 2 on a bad address or interval.
    """
    try:
        parse_addr(addr)
    except ValueError as exc:
        print(f"kasmm top: {exc}", file=sys.stderr)
        return 2
    if not interval > 0:
        print("kasmm top: --interval must be above 0", file=sys.stderr)
        return 2
    from kasmm.console.source import ConsoleSource

    source = ConsoleSource(addr, resolve_state_dir(state_dir), operator or getpass.getuser())
    if plain or not full_screen_possible():
        from kasmm.console.plain import run_plain

        return run_plain(source.fetch, interval)
    from kasmm.console.app import TopApp

    TopApp(source, interval=interval).run()
    return 0
