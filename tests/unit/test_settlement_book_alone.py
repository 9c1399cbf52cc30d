"""``SettlementBook.record_requested_alone``: one open sweep per account and asset, one use of
each receive index, decided inside the write transaction that records the sweep."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal
from pathlib import Path

import pytest

from kasmm.store import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlements import SettlementStateError, SweepRecord

BASE = SweepRecord(
    key="k1",
    account="acct",
    exchange="mexc",
    asset="KAS",
    amount=Decimal(100),
    fee=Decimal(1),
    address="kaspa:q",
    network="mainnet",
    client_id="km1",
    state="requested",
    derivation=0,
    requested_ts=1.0,
)


@pytest.fixture
def book(tmp_path: Path) -> SettlementBook:
    return SettlementBook(Ledger(tmp_path / "kasmm.sqlite"))


def test_an_open_sweep_of_the_asset_stops_the_next_one(book: SettlementBook) -> None:
    assert book.record_requested_alone(BASE) is None
    blocking = book.record_requested_alone(replace(BASE, key="k2", derivation=1))
    assert blocking is not None and blocking.key == "k1"
    assert [r.key for r in book.sweeps()] == ["k1"]
    # another account, or another asset, is not stopped
    assert book.record_requested_alone(replace(BASE, key="k3", account="other")) is None
    assert (
        book.record_requested_alone(replace(BASE, key="k4", asset="USDT", derivation=None)) is None
    )


@pytest.mark.parametrize("end", ["confirmed", "failed"])
def test_a_closed_sweep_stops_nothing_but_its_index_stays_used(
    book: SettlementBook, end: str
) -> None:
    assert book.record_requested_alone(BASE) is None
    if end == "confirmed":
        book.advance("k1", "sent", 2.0, withdrawal_id="w1", txid="t")
    book.advance("k1", end, 3.0)  # type: ignore[arg-type]
    with pytest.raises(SettlementStateError, match="receive index 0"):
        book.record_requested_alone(replace(BASE, key="k2"))
    assert book.record_requested_alone(replace(BASE, key="k2", derivation=1)) is None


def test_a_key_is_recorded_once(book: SettlementBook) -> None:
    assert book.record_requested_alone(replace(BASE, derivation=None)) is None
    book.advance("k1", "failed", 2.0, reason="x")
    with pytest.raises(SettlementStateError, match="already"):
        book.record_requested_alone(replace(BASE, derivation=None))
