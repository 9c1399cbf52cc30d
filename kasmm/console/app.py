"""The full-screen console (Textual): a table of profiles, the selected profile's details and
the supervisor's, refreshed every second, with operator actions behind a confirmation.

Keys: arrows select a profile; ``r`` resets its halt, ``p`` pauses or resumes it, ``m``
switches its mode (aggressive <-> passive), ``R`` reloads the supervisor, ``q`` quits. Every
action asks first (``y`` confirms, ``n``/Escape cancels), goes through the control socket
(:class:`~kasmm.console.source.ConsoleSource`) and shows the supervisor's answer.

Reads and actions block (HTTP, a Unix socket): they run in threads, so a slow supervisor never
freezes the screen; a failed read keeps the last table and says why in the title line.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, DataTable, Footer, Label, Static

from kasmm.commands.status import StatusFetchError
from kasmm.console import rows
from kasmm.console.details import group_detail, profile_detail, supervisor_detail
from kasmm.obs.money import NumberFormat

__all__ = ["COLUMNS", "Confirm", "Source", "TopApp", "group_row", "table_row"]

#: The profile table's columns.
COLUMNS = (
    "PROFILE",
    "STATE",
    "MODE",
    "MID",
    "BID",
    "ASK",
    "SPREAD",
    "UPTIME",
    "INVENTORY",
    "SHARE/TARGET",
    "NET",
    "SPREAD CAP",
    "VS HOLD",
    "FILLS",
    "ORDERS",
    "LAST ERROR",
)


class Source(Protocol):
    """What the console reads and acts through (blocking calls)."""

    def fetch(self) -> dict[str, Any]: ...

    def act(self, action: str, profile: str | None = None, mode: str | None = None) -> str: ...


def table_row(row: Mapping[str, Any]) -> tuple[str, ...]:
    """One profile's cells in the console table."""
    fmt = rows.number_format(row)
    pnl = rows.pnl_parts(row, fmt)
    state = rows.cell(row.get("state"))
    reason = rows.why(row)
    if reason:
        reason = rows.cell(reason, 40)
        state = reason if reason.startswith(state) else f"{state}: {reason}"
    spread = row.get("own_spread_bps")
    return (
        rows.cell(row.get("name")),
        state,
        rows.cell(row.get("mode")),
        fmt.price(rows.decimal(row.get("mid"))),
        fmt.price(rows.decimal(row.get("own_bid"))),
        fmt.price(rows.decimal(row.get("own_ask"))),
        "-" if not isinstance(spread, int | float) else f"{spread:.1f} bps",
        rows.uptime(row),
        fmt.size(rows.decimal(row.get("inventory_base"))),
        rows.cell(rows.inventory_share(row)),
        pnl.get("net", "-"),
        pnl.get("spread_capture", "-"),
        pnl.get("vs_hold", "-"),
        rows.cell(rows.fills(row)),
        rows.cell(row.get("open_orders")),
        rows.cell(row.get("last_error"), 60),
    )


def group_row(row: Mapping[str, Any]) -> tuple[str, ...]:
    """One portfolio's cells in the console table, under the profiles: its state, mark,
    aggregate base and share, summed PnL, member count, deviation and drawdown."""
    fmt = NumberFormat.for_market(None, None, rows.decimal(row.get("mark")))
    members = row.get("members")
    count = len(members) if isinstance(members, Mapping) else None
    deviation = row.get("deviation")
    notes = []
    if isinstance(deviation, int | float) and not isinstance(deviation, bool):
        notes.append(f"deviation {deviation:+.2f}")
    drawdown = rows.decimal(row.get("drawdown"))
    if drawdown is not None:
        notes.append(f"drawdown {fmt.money(drawdown)}")
    return (
        f"[{rows.cell(row.get('name'))}]",
        rows.group_state(row),
        "group",
        fmt.price(rows.decimal(row.get("mark"))),
        "-",
        "-",
        "-",
        "-",
        fmt.size(rows.decimal(row.get("base"))),
        rows.cell(rows.group_share(row)),
        fmt.money(rows.decimal(row.get("pnl")), sign=True),
        "-",
        "-",
        "-",
        "-" if count is None else f"{count} members",
        rows.cell(", ".join(notes)),
    )


class Confirm(ModalScreen[bool]):
    """Ask before an action: ``y`` or Yes confirms, ``n``, Escape or No cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("y", "answer(True)", "yes"),
        Binding("n,escape", "answer(False)", "no"),
    ]
    DEFAULT_CSS = """
    Confirm { align: center middle; }
    Confirm > Vertical { width: 72; height: auto; border: thick $warning; padding: 1 2;
                         background: $surface; }
    Confirm Horizontal { height: auto; margin-top: 1; }
    Confirm Button { margin-right: 2; }
    """

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        with Vertical():
            yield Label(Text(self.question), id="question")
            with Horizontal():
                yield Button("Yes (y)", variant="warning", id="yes")
                yield Button("No (n)", id="no")

    def action_answer(self, answer: bool) -> None:
        self.dismiss(answer)

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss(event.button.id == "yes")


class TopApp(App[None]):
    """``kasmm top``."""

    TITLE = "kasmm top"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("r", "reset", "reset halt"),
        Binding("p", "pause", "pause/resume"),
        Binding("m", "mode", "switch mode"),
        Binding("R", "reload", "reload"),
        Binding("q", "quit", "quit"),
    ]
    DEFAULT_CSS = """
    #summary { height: 1; background: $primary-background; padding: 0 1; }
    #profiles { height: 1fr; min-height: 5; }
    #panes { height: 1fr; }
    #detail, #supervisor { width: 1fr; height: 100%; border: round $primary; padding: 0 1;
                           overflow-y: auto; }
    """

    def __init__(self, source: Source, *, interval: float = 1.0) -> None:
        super().__init__()
        self.source = source
        self.interval = interval
        self.doc: dict[str, Any] = {}
        #: The supervisor's answer to the last action (also shown as a notification).
        self.last_answer: str | None = None
        self._selected: str | None = None

    def compose(self) -> ComposeResult:
        yield Static(Text("connecting..."), id="summary")
        table: DataTable[str] = DataTable(id="profiles", cursor_type="row", zebra_stripes=True)
        table.add_columns(*COLUMNS)
        yield table
        with Horizontal(id="panes"):
            yield Static(Text(""), id="detail")
            yield Static(Text(""), id="supervisor")
        yield Footer()

    async def on_mount(self) -> None:
        self.query_one(DataTable).focus()
        await self.refresh_status()
        self.set_interval(self.interval, self.refresh_status)

    # --- reading -------------------------------------------------------------------------

    async def refresh_status(self) -> None:
        """Read ``/status`` (in a thread) and redraw; a failure keeps the last table."""
        try:
            doc = await asyncio.to_thread(self.source.fetch)
        except StatusFetchError as exc:
            if self._widgets_gone():
                return
            self.query_one("#summary", Static).update(Text(f"kasmm top: {exc}", style="bold red"))
            return
        self.doc = doc
        if not self._widgets_gone():
            self._redraw()

    def _widgets_gone(self) -> bool:
        """The app began closing while a fetch was in its thread: nothing left to draw on."""
        return not self.query("#summary") or not self.query(DataTable)

    def _redraw(self) -> None:
        doc = self.doc
        sup = rows.supervisor(doc)
        summary = (
            f"supervisor pid {rows.cell(sup.get('pid'))}  up {rows.duration(sup.get('uptime_s'))}"
            f"  profiles {rows.cell(sup.get('profiles_total'))}  {rows.cell(sup.get('health'))}"
        )
        style = "bold red" if sup.get("healthy") is False else ""
        self.query_one("#summary", Static).update(Text(summary, style=style))
        table = self.query_one(DataTable)
        selected = self._selected
        table.clear()
        names: list[str] = []
        for row in rows.profiles(doc):
            name = str(row.get("name"))
            if name in names:
                continue  # a key is unique in a DataTable
            names.append(name)
            cells = table_row(row)
            style = _row_style(row)
            table.add_row(*(Text(c, style=style) for c in cells), key=name)
        for group in rows.portfolios(doc):
            # Keys of their own ("portfolio:<name>": no profile name holds a colon), so an
            # action on a selected group row finds no profile and does nothing.
            key = f"portfolio:{group.get('name')}"
            if key not in names:
                names.append(key)
                style = _row_style(group)
                table.add_row(*(Text(c, style=style) for c in group_row(group)), key=key)
        if selected is None:  # start on the first profile that runs
            selected = next(
                (str(r.get("name")) for r in rows.profiles(doc) if r.get("state") != "disabled"),
                None,
            )
        if selected in names:
            table.move_cursor(row=names.index(selected), animate=False)
        self._selected = names[table.cursor_row] if names else None
        self._show_details()

    def _show_details(self) -> None:
        row = self.selected_row()
        detail = "" if row is None else "\n".join(profile_detail(self.doc, row))
        group = self.selected_group()
        if group is not None:
            detail = "\n".join(group_detail(group))
        self.query_one("#detail", Static).update(Text(detail))
        self.query_one("#supervisor", Static).update(Text("\n".join(supervisor_detail(self.doc))))

    def selected_row(self) -> Mapping[str, Any] | None:
        """The status row of the selected profile."""
        return next((r for r in rows.profiles(self.doc) if r.get("name") == self._selected), None)

    def selected_group(self) -> Mapping[str, Any] | None:
        """The status row of the selected portfolio (``None``: a profile is selected)."""
        key = self._selected or ""
        if not key.startswith("portfolio:"):
            return None
        name = key.removeprefix("portfolio:")
        return next((g for g in rows.portfolios(self.doc) if g.get("name") == name), None)

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        if event.row_key.value is not None:
            self._selected = str(event.row_key.value)
            self._show_details()

    # --- actions -------------------------------------------------------------------------

    def action_reset(self) -> None:
        row = self.selected_row()
        if row is not None:
            self._confirm(f"Reset the halt of {row.get('name')}?", "reset", row)

    def action_pause(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        if row.get("paused_by"):
            self._confirm(f"Resume {row.get('name')}?", "resume", row)
        else:
            self._confirm(
                f"Pause {row.get('name')}? Its orders are cancelled until resumed.", "pause", row
            )

    def action_mode(self) -> None:
        row = self.selected_row()
        if row is None:
            return
        mode = "passive" if row.get("mode") == "aggressive" else "aggressive"
        question = f"Switch {row.get('name')} to {mode} (until its next scheduled switch)?"
        self._confirm(question, "mode", row, mode)

    def action_reload(self) -> None:
        self._confirm("Reload the profile directory (as SIGHUP does)?", "reload", None)

    def _confirm(
        self, question: str, action: str, row: Mapping[str, Any] | None, mode: str | None = None
    ) -> None:
        profile = None if row is None else str(row.get("name"))

        def answered(yes: bool | None) -> None:
            if yes:
                self.run_worker(self._act(action, profile, mode), group="actions")

        self.push_screen(Confirm(question), answered)

    async def _act(self, action: str, profile: str | None, mode: str | None) -> None:
        answer = await asyncio.to_thread(self.source.act, action, profile, mode)
        self.last_answer = answer
        refused = answer.startswith(("refused", "failed"))
        self.notify(answer, severity="error" if refused else "information", timeout=6)
        await self.refresh_status()


def _row_style(row: Mapping[str, Any]) -> str:
    state = row.get("state")
    if state in ("halted", "failed"):
        return "bold red"
    if state in ("paused", "reduce_only", "restarting", "starting") or row.get("stale"):
        return "yellow"
    if state in ("disabled", "stopped"):
        return "dim"
    return ""
