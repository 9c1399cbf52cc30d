"""``kasmm hedges PROFILE``: each fill of a hedged profile with the hedge orders linked to it.

Reads the ledger read-only (also while the supervisor runs): for every fill taken in for
hedging, its residual (the base of it not offset yet) and each hedge order linked to it (the
hedge profile's order, its status, the part of the fill it was sent to offset and the part it
did offset, its fills). A fill netted into another one, or netted to nothing with another, is
linked to the order that offset the net, with nothing of its own planned. With ``--check`` the
exit status says whether every fill is offset (no residual left).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any, TextIO

from kasmm.core.types import ZERO
from kasmm.store import LedgerError
from kasmm.store.hedges import HedgedFill
from kasmm.store.reader import LedgerReader
from kasmm.store.state_dir import ledger_path, resolve_state_dir

__all__ = ["hedges_command", "unhedged"]


def _fail(message: str) -> int:
    print(f"kasmm hedges: {message}", file=sys.stderr)
    return 2


def unhedged(rows: list[HedgedFill]) -> list[HedgedFill]:
    """The fills with base not offset yet (a residual): waiting for their window, a retry, or
    a hedge venue that is down."""
    return [row for row in rows if row.residual > ZERO]


def _json(row: HedgedFill) -> dict[str, Any]:
    f = row.fill
    return {
        "trade_id": f.trade_id,
        "client_id": f.client_id,
        "side": f.side.value,
        "price": str(f.price),
        "size": str(f.size),
        "ts": f.ts,
        "residual": str(row.residual),
        "hedges": [
            {
                "profile": h.profile,
                "client_id": h.client_id,
                "side": h.side.value,
                "price": str(h.price),
                "size": str(h.size),
                "status": h.status,
                "planned": str(h.planned),
                "hedged": None if h.hedged is None else str(h.hedged),
                "mid": None if h.mid is None else str(h.mid),
                "fills": [
                    {"trade_id": x.trade_id, "price": str(x.price), "size": str(x.size)}
                    for x in h.fills
                ],
            }
            for h in row.hedges
        ],
    }


def hedges_command(
    profile: str,
    state_dir: Path | None,
    *,
    as_json: bool = False,
    check: bool = False,
    out: TextIO | None = None,
) -> int:
    """Print ``profile``'s hedged fills (or JSON).

    :return: 0; with ``check`` 1 when a fill is not fully offset (see :func:`unhedged`);
        2 on usage errors (no ledger, an unreadable one, a profile never hedged).
    """
    stream = out or sys.stdout
    path = ledger_path(resolve_state_dir(state_dir))
    if not path.is_file():
        return _fail(f"no ledger at {path} (pass the supervisor's --state-dir)")
    try:
        with LedgerReader(path) as reader:
            rows = reader.hedged_fills(profile)
    except LedgerError as exc:
        return _fail(str(exc))
    if not rows:
        return _fail(f"no hedged fill of {profile!r} in the ledger at {path}")
    missing = unhedged(rows)
    if as_json:
        doc = {
            "profile": profile,
            "fills": [_json(r) for r in rows],
            "unhedged": [r.fill.trade_id for r in missing],
        }
        json.dump(doc, stream, indent=2)
        stream.write("\n")
    else:
        for row in rows:
            f = row.fill
            stream.write(
                f"{f.trade_id}  {f.side.value:4}  {f.size} @ {f.price}  residual {row.residual}\n"
            )
            for h in row.hedges:
                filled = sum((x.size for x in h.fills), ZERO)
                stream.write(
                    f"    -> {h.profile} {h.client_id} {h.side.value} {h.size} @ {h.price}"
                    f" {h.status}: planned {h.planned}, offset {h.hedged}, filled {filled}"
                    f" in {len(h.fills)} fills\n"
                )
        linked = sum(1 for r in rows if r.hedges)
        stream.write(
            f"{len(rows)} fills taken in for hedging, {linked} linked to a hedge order,"
            f" {len(missing)} with a residual\n"
        )
    return 1 if check and missing else 0
