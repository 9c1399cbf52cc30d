"""The ``kasmm-replay`` file: recorded books and trades, read and written.

The ``replay`` market: recorded books and trades, replayed against the bot's resting orders.

File format (``kasmm-replay`` version 1)
========================================

A UTF-8 CSV file. Lines starting with ``#`` before the header are comments; the first one may
carry metadata as ``key=value`` words after the magic ``kasmm-replay 1``::

    # kasmm-replay 1 symbol=KAS/USDT tick=0.000001 lot=0.01 min_notional=1 source=mexc
    ts,kind,side,price,size,level
    1700000000.000,book,bid,0.080000,500,0
    1700000000.000,book,bid,0.079990,800,1
    1700000000.000,book,ask,0.080100,400,0
    1700000000.250,trade,sell,0.080000,120.5,

Columns (all required, in any order; further columns are ignored):

``ts``
    Seconds (epoch or any origin), a decimal number. Rows are replayed in file order; the
    virtual clock advances to each row's ``ts`` (a row earlier than the previous one is
    replayed at the previous row's time: time never runs backwards).
``kind``
    ``book`` (one level of an order book snapshot) or ``trade`` (one public trade).
``side``
    For ``book``: ``bid`` or ``ask``. For ``trade``: the **taker** side, ``buy`` (an ask was
    lifted) or ``sell`` (a bid was hit).
``price``, ``size``
    Positive decimals, read exactly (``Decimal``).
``level``
    For ``book``: the 0-based level index from the best price; empty for ``trade``.

**Snapshots.** Consecutive ``book`` rows with the same ``ts`` form one snapshot of both sides,
which replaces the previous book entirely (a side with no rows is empty). Within a snapshot each
side lists its levels in order ``0, 1, 2, ...`` with strictly worse prices (bids descending,
asks ascending); a row at level 0 for a side the snapshot already has starts a new snapshot at
the same ``ts``. Top-of-book data is simply level 0 only.

Metadata ``symbol``, ``tick``, ``lot`` and ``min_notional`` describe the recorded market: when
present they are the replay venue's rules (orders must sit on the recorded market's grid) and
``symbol`` must be the profile's. Fees and starting balances come from the profile's venue.

:mod:`kasmm.venues.sim.replay` replays such a file against the bot's orders (the ``replay``
market of the sim venue); ``kasmm record`` (:mod:`kasmm.backtest.record`) writes one.
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TextIO

from kasmm.core.types import Book, BookLevel, MarketRules, Side
from kasmm.venues.public_data import FeedItem, PublicTrade

#: Magic word of the metadata comment.
REPLAY_MAGIC = "kasmm-replay"
#: Version of the file format this module reads and writes.
REPLAY_VERSION = 1
#: The required columns, in the order the writer uses.
COLUMNS: tuple[str, ...] = ("ts", "kind", "side", "price", "size", "level")


class ReplayFormatError(ValueError):
    """The file does not follow the format; the message names the line."""


@dataclass(frozen=True)
class ReplayHeader:
    """Metadata of a replay file (every field optional)."""

    version: int | None = None
    symbol: str | None = None
    tick: Decimal | None = None
    lot: Decimal | None = None
    min_notional: Decimal | None = None
    extra: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ReplayInfo:
    """What :func:`scan` found in a file."""

    header: ReplayHeader
    first_ts: float
    last_ts: float
    books: int
    trades: int
    rows: int

    @property
    def span_s(self) -> float:
        """Seconds from the first to the last row."""
        return self.last_ts - self.first_ts


# --- reading ---------------------------------------------------------------------------------


def _parse_header(comment: str) -> ReplayHeader:
    words = comment.lstrip("#").split()
    if len(words) < 2 or words[0] != REPLAY_MAGIC:
        return ReplayHeader()
    try:
        version = int(words[1])
    except ValueError:
        raise ReplayFormatError(f"line 1: bad {REPLAY_MAGIC} version {words[1]!r}") from None
    if version != REPLAY_VERSION:
        raise ReplayFormatError(
            f"line 1: {REPLAY_MAGIC} version {version} is not supported (only {REPLAY_VERSION})"
        )
    pairs = dict(w.split("=", 1) for w in words[2:] if "=" in w)

    def dec(key: str) -> Decimal | None:
        raw = pairs.pop(key, None)
        if raw is None:
            return None
        try:
            value = Decimal(raw)
        except InvalidOperation:
            raise ReplayFormatError(f"line 1: {key}={raw!r} is not a number") from None
        if not value.is_finite() or value < 0:
            raise ReplayFormatError(f"line 1: {key}={raw!r} must be a non-negative number")
        return value

    return ReplayHeader(
        version=version,
        symbol=pairs.pop("symbol", None),
        tick=dec("tick"),
        lot=dec("lot"),
        min_notional=dec("min_notional"),
        extra=pairs,
    )


def _open_rows(handle: TextIO) -> tuple[ReplayHeader, Iterator[tuple[int, dict[str, str]]]]:
    """The header and an iterator of ``(line number, row)`` of an open file."""
    header = ReplayHeader()
    line_no = 0
    first = True
    while True:
        pos_line = handle.readline()
        line_no += 1
        if not pos_line:
            raise ReplayFormatError("the file is empty (no header line)")
        if pos_line.startswith("#"):
            if first:
                header = _parse_header(pos_line.strip())
            first = False
            continue
        break
    columns = next(csv.reader([pos_line]))
    columns = [c.strip() for c in columns]
    missing = [c for c in COLUMNS if c not in columns]
    if missing:
        raise ReplayFormatError(f"line {line_no}: missing column(s) {', '.join(missing)}")
    index = {name: columns.index(name) for name in COLUMNS}
    header_line = line_no

    def rows() -> Iterator[tuple[int, dict[str, str]]]:
        for n, raw in enumerate(csv.reader(handle), start=header_line + 1):
            if not raw or (len(raw) == 1 and not raw[0].strip()):
                continue
            if raw[0].startswith("#"):
                continue
            if len(raw) < len(columns):
                raw = raw + [""] * (len(columns) - len(raw))
            yield n, {name: raw[i].strip() for name, i in index.items()}

    return header, rows()


def _number(line: int, name: str, raw: str) -> Decimal:
    try:
        value = Decimal(raw)
    except InvalidOperation:
        raise ReplayFormatError(f"line {line}: {name} {raw!r} is not a number") from None
    if not value.is_finite() or value <= 0:
        raise ReplayFormatError(f"line {line}: {name} must be positive, got {raw!r}")
    return value


def _ts(line: int, raw: str) -> float:
    try:
        value = float(raw)
    except ValueError:
        raise ReplayFormatError(f"line {line}: ts {raw!r} is not a number") from None
    if not math.isfinite(value):
        raise ReplayFormatError(f"line {line}: ts must be finite, got {raw!r}")
    return value


class _Snapshot:
    """A book snapshot being assembled from rows."""

    __slots__ = ("asks", "bids", "line", "ts")

    def __init__(self, ts: float, line: int) -> None:
        self.ts = ts
        self.line = line
        self.bids: list[BookLevel] = []
        self.asks: list[BookLevel] = []

    def book(self) -> Book:
        return Book(bids=tuple(self.bids), asks=tuple(self.asks), ts=self.ts)


def iter_items(handle: TextIO) -> tuple[ReplayHeader, Iterator[tuple[int, FeedItem]]]:
    """Parse an open replay file: its header, and ``(line, Book | PublicTrade)`` in file order.

    :raises ReplayFormatError: (lazily, while iterating) a row breaks the format.
    """
    header, rows = _open_rows(handle)

    def items() -> Iterator[tuple[int, FeedItem]]:
        snap: _Snapshot | None = None
        for line, row in rows:
            kind = row["kind"].lower()
            ts = _ts(line, row["ts"])
            price = _number(line, "price", row["price"])
            size = _number(line, "size", row["size"])
            side = row["side"].lower()
            if kind == "trade":
                if snap is not None:
                    yield snap.line, snap.book()
                    snap = None
                if side not in ("buy", "sell"):
                    raise ReplayFormatError(
                        f"line {line}: a trade's side is the taker side, buy or sell (got "
                        f"{row['side']!r})"
                    )
                yield line, PublicTrade(price, size, Side(side), ts, f"r{line}")
                continue
            if kind != "book":
                raise ReplayFormatError(f"line {line}: kind must be book or trade, got {kind!r}")
            if side not in ("bid", "ask"):
                raise ReplayFormatError(f"line {line}: a book row's side is bid or ask")
            try:
                level = int(row["level"])
            except ValueError:
                raise ReplayFormatError(
                    f"line {line}: a book row needs an integer level, got {row['level']!r}"
                ) from None
            if snap is not None and (ts != snap.ts or (level == 0 and bool(_side(snap, side)))):
                yield snap.line, snap.book()
                snap = None
            if snap is None:
                snap = _Snapshot(ts, line)
            levels = _side(snap, side)
            if level != len(levels):
                raise ReplayFormatError(
                    f"line {line}: {side} level {level} out of order (expected {len(levels)})"
                )
            if levels and (
                (side == "bid" and price >= levels[-1].price)
                or (side == "ask" and price <= levels[-1].price)
            ):
                raise ReplayFormatError(
                    f"line {line}: {side} level {level} at {price} is not worse than level "
                    f"{level - 1} at {levels[-1].price}"
                )
            levels.append(BookLevel(price, size))
        if snap is not None:
            yield snap.line, snap.book()

    return header, items()


def _side(snap: _Snapshot, side: str) -> list[BookLevel]:
    return snap.bids if side == "bid" else snap.asks


def read_header(path: Path) -> ReplayHeader:
    """The metadata of a replay file."""
    with open(path, encoding="utf-8", newline="") as handle:
        header, _ = _open_rows(handle)
    return header


def scan(path: Path) -> ReplayInfo:
    """Read a whole replay file once: validate every row and return its span and counts.

    :raises ReplayFormatError: the file breaks the format (the message names the line).
    """
    books = trades = 0
    first = last = math.nan
    with open(path, encoding="utf-8", newline="") as handle:
        header, items = iter_items(handle)
        rows = 0
        for _, item in items:
            if isinstance(item, PublicTrade):
                trades += 1
                rows += 1
            else:
                books += 1
                rows += len(item.bids) + len(item.asks)
            if math.isnan(first):
                first = item.ts
            last = max(item.ts, last) if not math.isnan(last) else item.ts
    if books == 0:
        raise ReplayFormatError(f"{path}: no book rows (a replay needs at least one snapshot)")
    return ReplayInfo(header, first, last, books, trades, rows)


# --- writing ---------------------------------------------------------------------------------


def _fmt_ts(ts: float) -> str:
    return f"{ts:.6f}"


class ReplayWriter:
    """Writes the replay format to an open text file (``newline=""``)."""

    def __init__(self, handle: TextIO, *, depth: int | None = None) -> None:
        self._handle = handle
        self._csv = csv.writer(handle, lineterminator="\n")
        self._depth = depth
        self.rows = 0
        self.books = 0
        self.trades = 0

    def header(self, rules: MarketRules | None = None, **extra: str) -> None:
        """The metadata comment (from ``rules`` plus ``extra``) and the column header."""
        words = [REPLAY_MAGIC, str(REPLAY_VERSION)]
        if rules is not None:
            words += [
                f"symbol={rules.symbol}",
                f"tick={rules.tick}",
                f"lot={rules.lot}",
                f"min_notional={rules.min_notional}",
            ]
        words += [f"{k}={v}" for k, v in extra.items() if v and " " not in v and "=" not in k]
        self._handle.write("# " + " ".join(words) + "\n")
        self._csv.writerow(COLUMNS)

    def book(self, book: Book) -> None:
        """One snapshot (at most ``depth`` levels a side)."""
        depth = self._depth
        bids = book.bids if depth is None else book.bids[:depth]
        asks = book.asks if depth is None else book.asks[:depth]
        ts = _fmt_ts(book.ts)
        for side, levels in (("bid", bids), ("ask", asks)):
            for i, level in enumerate(levels):
                self._csv.writerow((ts, "book", side, level.price, level.size, i))
        self.rows += len(bids) + len(asks)
        self.books += 1

    def trade(self, trade: PublicTrade) -> None:
        """One public trade."""
        self._csv.writerow(
            (_fmt_ts(trade.ts), "trade", trade.taker_side.value, trade.price, trade.size, "")
        )
        self.rows += 1
        self.trades += 1

    def item(self, item: FeedItem) -> None:
        """A book or a trade."""
        if isinstance(item, PublicTrade):
            self.trade(item)
        else:
            self.book(item)

    def flush(self) -> None:
        """Flush the underlying file."""
        self._handle.flush()


def write_rows(rows: list[tuple[object, ...]], header: str | None = None) -> str:
    """Format rows as replay CSV text (tests and tools): ``header`` is the metadata comment."""
    out = io.StringIO()
    if header is not None:
        out.write(header.rstrip("\n") + "\n")
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(COLUMNS)
    writer.writerows(rows)
    return out.getvalue()
