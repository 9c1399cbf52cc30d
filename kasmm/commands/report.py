"""``kasmm report``: write a self-contained HTML report of the ledger."""

from __future__ import annotations

import importlib
import importlib.util
import os
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

from kasmm.errors import LedgerLost
from kasmm.report.gather import gather, load_profile_configs, select_profiles
from kasmm.report.page import PageInput, ProfileSection, render_page
from kasmm.report.period import PeriodError, fmt_utc, parse_since
from kasmm.report.portfolio import gather_portfolios, portfolio_members, portfolio_sections
from kasmm.store import Ledger, LedgerError, SchemaError
from kasmm.store.state_dir import ledger_path, resolve_state_dir

MISSING_MATPLOTLIB = (
    "kasmm report: the charts need matplotlib, which is not installed.\n"
    "Install the report extra:  pip install 'kasmm[report]'   (or: pip install 'matplotlib>=3.8')"
)


def _fail(message: str) -> int:
    print(f"kasmm report: {message}", file=sys.stderr)
    return 2


def report_command(
    state_dir: Path | None,
    out: Path,
    *,
    profiles: Sequence[str] | None = None,
    since: str | None = None,
    profiles_dir: Path | None = None,
    now: float | None = None,
) -> int:
    """Write the report of ``profiles`` (default: every profile in the ledger) to ``out``.

    :param since: start of the period (see :func:`kasmm.report.period.parse_since`); the period
        ends now.
    :param profiles_dir: profile files, for asset names and the inventory target.
    :return: 0 when written (an empty ledger gives a report that says so), 2 on usage errors:
        matplotlib missing, no ledger, a bad ``since``, a profile not in the ledger.
    """
    if importlib.util.find_spec("matplotlib") is None:
        print(MISSING_MATPLOTLIB, file=sys.stderr)
        return 2
    generated = time.time() if now is None else now
    try:
        start = parse_since(since, generated) if since is not None else None
    except PeriodError as exc:
        return _fail(str(exc))
    path = ledger_path(resolve_state_dir(state_dir))
    if not path.is_file():
        return _fail(f"no ledger at {path} (pass the supervisor's --state-dir)")
    if profiles_dir is not None and not profiles_dir.is_dir():
        return _fail(f"--profiles {profiles_dir}: not a directory")
    if out.is_dir():
        return _fail(f"--out {out}: is a directory; name the HTML file")
    if not out.parent.is_dir():
        return _fail(f"--out {out}: directory {out.parent} does not exist")
    configs, issues = load_profile_configs(profiles_dir) if profiles_dir is not None else ({}, [])
    try:
        with Ledger(path) as ledger:
            known = ledger.profiles()
            chosen, unknown = select_profiles(known, profiles)
            if unknown:
                held = ", ".join(known) if known else "no profiles at all"
                return _fail(
                    f"no profile {', '.join(unknown)} in the ledger at {path} (it holds {held})"
                )
            datas = [gather(ledger, name, start, generated, configs.get(name)) for name in chosen]
            # Every portfolio unless the report is narrowed to some profiles.
            groups = (
                gather_portfolios(
                    ledger,
                    start,
                    portfolio_members(profiles_dir) if profiles_dir is not None else None,
                )
                if not profiles
                else []
            )
    except (SchemaError, LedgerError, LedgerLost, sqlite3.Error) as exc:
        return _fail(f"cannot read the ledger at {path}: {exc}")

    charts = importlib.import_module("kasmm.report.charts")
    sections = [
        ProfileSection(d, [(c.title, c.svg) for c in charts.profile_charts(d, f"p{i}")])
        for i, d in enumerate(datas, 1)
    ]
    notes: list[str] = []
    if not known:
        notes.append(f"The ledger at {path} holds no records yet: nothing to report.")
    elif not any(d.has_data for d in datas):
        notes.append("No profile has records in this period.")
    page = PageInput(
        ledger=path,
        generated=generated,
        since=start,
        until=generated,
        profiles_dir=profiles_dir,
        config_issues=issues,
        notes=notes,
        portfolios=portfolio_sections(groups),
    )
    _write(out, render_page(page, sections))
    period = f"since {fmt_utc(start)}" if start is not None else "all records"
    print(f"kasmm report: wrote {out} ({len(sections)} profile(s), {period})")
    for note in notes:
        print(f"kasmm report: {note}", file=sys.stderr)
    return 0


def _write(out: Path, text: str) -> None:
    """Replace ``out`` atomically (a reader never sees half a report)."""
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(tmp, 0o644)
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
