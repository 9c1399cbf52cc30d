"""Sequence checks on websocket book updates where ccxt.pro does not make them.

An incremental book feed numbers its updates; an update lost on the way (a dropped frame, a
stalled then resumed connection, two frames swapped) must throw the local book away, because
every later update is applied to a book that is missing a change. ccxt 4.5.90 checks this for
some channels and not for others, verified against the loopback emulators
(``tests/emulators/*_ws.py``):

=================================  ==========================================================
Gate ``spot.order_book_update``    checked by ccxt (``ChecksumError``): nothing to add
Gate ``spot.obu`` (what ccxt uses  **not checked**: ccxt applies any update newer than its
on gate.io)                        book; each update carries ``U`` (first id) and ``u``
                                   (last id), and a ``full`` snapshot restarts the count
MEXC ``public.aggre.depth``        **not checked**: each push carries ``fromVersion`` and
(protobuf)                         ``toVersion``; ccxt only skips pushes older than its book
KuCoin ``/market/level2``          **not checked**: each ``trade.l2update`` carries
                                   ``sequenceStart`` and ``sequenceEnd``; ccxt drops what is
                                   older than its book and applies the rest
BingX ``depth<N>``                 full snapshots: nothing to check
=================================  ==========================================================

:func:`guard_book_sequence` wraps the instance's ``handle_order_book`` (the one entry every
book message of these exchanges goes through; ccxt looks it up on the instance, as kasmm's
throttle replacement relies on too). An update that continues the sequence is passed on; a
duplicate or older one is dropped (ccxt would skip it too); one that skips ahead is *not* given
to ccxt, and ``on_gap`` is called: the stream then ends the websocket session, REST serves, and
the next session subscribes afresh from a new snapshot.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

#: ``(first, last)`` update ids of a book message, ``(None, last)`` for a snapshot that restarts
#: the count, or ``None`` for a message without ids (not checked).
UpdateIds = tuple[int | None, int] | None


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def gate_update_ids(message: Mapping[str, Any]) -> UpdateIds:
    """Gate ``spot.obu``: ``U``..``u``, or a snapshot at ``u`` (``full: true``). Other Gate book
    channels are left to ccxt."""
    if message.get("channel") != "spot.obu":
        return None
    result = message.get("result")
    if not isinstance(result, Mapping):
        return None
    last = _int(result.get("u"))
    if last is None:
        return None
    if result.get("full"):
        return None, last
    first = _int(result.get("U"))
    return None if first is None else (first, last)


def mexc_update_ids(message: Mapping[str, Any]) -> UpdateIds:
    """MEXC aggregated depth (decoded protobuf): ``fromVersion``..``toVersion``."""
    depths = message.get("publicAggreDepths")
    if not isinstance(depths, Mapping):
        return None
    first, last = _int(depths.get("fromVersion")), _int(depths.get("toVersion"))
    if first is None or last is None:
        return None
    return first, last


def kucoin_update_ids(message: Mapping[str, Any]) -> UpdateIds:
    """KuCoin ``trade.l2update``: ``sequenceStart``..``sequenceEnd``."""
    if message.get("subject") != "trade.l2update":
        return None
    data = message.get("data")
    if not isinstance(data, Mapping):
        return None
    first, last = _int(data.get("sequenceStart")), _int(data.get("sequenceEnd"))
    if first is None or last is None:
        return None
    return first, last


#: Exchanges whose book channel ccxt does not sequence-check, with how to read the ids.
UPDATE_IDS: Mapping[str, Callable[[Mapping[str, Any]], UpdateIds]] = {
    "gate": gate_update_ids,
    "mexc": mexc_update_ids,
    "kucoin": kucoin_update_ids,
}


@dataclass
class BookSequence:
    """The last update id applied per book (``s``/``symbol`` of the message)."""

    read_ids: Callable[[Mapping[str, Any]], UpdateIds]
    on_gap: Callable[[str], None]
    last: int | None = None
    gaps: int = 0

    def admit(self, message: Any) -> bool:
        """Whether ``message`` may go to ccxt (see the module docstring)."""
        if not isinstance(message, Mapping):
            return True
        ids = self.read_ids(message)
        if ids is None:
            return True
        first, last = ids
        if first is None:  # a snapshot: the count restarts here
            self.last = last
            return True
        if self.last is None:  # the first update of the session: nothing to compare with
            self.last = last
            return True
        if last <= self.last:  # a duplicate or an older update: already in the book
            return False
        if first != self.last + 1:
            self.gaps += 1
            self.on_gap(f"update {first}..{last} after {self.last}")
            return False
        self.last = last
        return True


def guard_book_sequence(
    exchange: Any, exchange_id: str, on_gap: Callable[[str], None]
) -> BookSequence | None:
    """Check the sequence of ``exchange``'s book updates from now on (``None``: ccxt checks
    it itself, or the exchange's channel carries no ids). Calling it again starts afresh."""
    read_ids = UPDATE_IDS.get(exchange_id)
    original = getattr(type(exchange), "handle_order_book", None)
    if read_ids is None or original is None:
        return None
    sequence = BookSequence(read_ids, on_gap)

    def handle_order_book(client: Any, message: Any) -> Any:
        if sequence.admit(message):
            return original(exchange, client, message)
        return None

    exchange.handle_order_book = handle_order_book
    return sequence
