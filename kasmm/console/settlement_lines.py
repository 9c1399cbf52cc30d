"""The settlement lines of ``kasmm status`` and ``kasmm top``: per account its schedule, its open
sweeps (key, asset, amount, state, age, txid, confirmations) and its last finished ones.

Read from the ``settlements`` part of a status document (:mod:`kasmm.supervisor.settle_status`),
which a supervisor serves and ``kasmm status`` also builds from the ledger when none runs.
Every value is formatted defensively (``-`` for what is missing), as the other rows are.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from typing import Any

from kasmm.console import rows

__all__ = ["settlement_lines"]

#: A transaction id is 64 hex digits: its head and tail identify it on a terminal.
_TXID_HEAD = 10


def _txid(value: Any) -> str:
    text = rows.cell(value)
    if len(text) <= 2 * _TXID_HEAD + 3:
        return text
    return f"{text[:_TXID_HEAD]}...{text[-4:]}"


def _when(ts: Any) -> str:
    if not isinstance(ts, int | float) or isinstance(ts, bool) or not math.isfinite(ts):
        return "-"
    return time.strftime("%Y-%m-%d %H:%M %Z", time.localtime(ts))


def _sweep(prefix: str, s: Mapping[str, Any]) -> str:
    line = (
        f"    {prefix} {rows.cell(s.get('key'))}  {rows.cell(s.get('amount'))} "
        f"{rows.cell(s.get('asset'))}  {rows.cell(s.get('state'))}  "
        f"age {rows.duration(s.get('age_s'))}  txid {_txid(s.get('txid'))}  "
        f"confirmations {rows.cell(s.get('confirmations'))}"
    )
    if s.get("state") == "failed":
        line += f"  reason: {rows.cell(s.get('reason'), 60)}"
    return line


def settlement_lines(doc: Mapping[str, Any]) -> list[str]:
    """The lines of the document's settlements (none when it has none)."""
    accounts = doc.get("settlements")
    if not isinstance(accounts, Mapping) or not accounts:
        return []
    lines = ["settlements:"]
    for name in sorted(accounts):
        acct = accounts[name] if isinstance(accounts[name], Mapping) else {}
        head = f"  account {rows.cell(name)}:"
        sched = acct.get("schedule")
        if isinstance(sched, Mapping):
            head += (
                f" scheduled '{rows.cell(sched.get('cron'))}' {rows.cell(sched.get('timezone'))},"
                f" next run {_when(sched.get('next_run'))}"
            )
            if sched.get("running"):
                head += " (running now)"
        else:
            head += " not scheduled (kasmm settle only)"
        lines.append(head)
        open_ = acct.get("open")
        recent = acct.get("recent")
        open_list = [s for s in open_ if isinstance(s, Mapping)] if isinstance(open_, list) else []
        done = [s for s in recent if isinstance(s, Mapping)] if isinstance(recent, list) else []
        if not open_list:
            lines.append("    no sweep pending")
        lines.extend(_sweep("pending", s) for s in open_list)
        lines.extend(_sweep("last   ", s) for s in done)
    return lines
