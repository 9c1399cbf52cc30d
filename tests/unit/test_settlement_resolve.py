"""An operator's resolution of a stuck sweep: the rules (a table), the write (one transaction:
the step with who and why, the operator action; nothing on a refusal), what it frees (the
asset's next sweep, the day's limit), and the command (the account's lock, exit statuses)."""

from __future__ import annotations

import json
from dataclasses import replace
from decimal import Decimal as D
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from structlog.testing import capture_logs

from kasmm.commands.settle_resolve import settle_resolve_command
from kasmm.daemon import exit_codes
from kasmm.settle.run import settle_lock_path
from kasmm.store.ledger import Ledger
from kasmm.store.settlement_book import SettlementBook
from kasmm.store.settlement_resolve import (
    OPERATOR_ACTION,
    Resolution,
    ResolveRefused,
    check_resolution,
)
from kasmm.store.settlements import SweepRecord, SweepState
from kasmm.store.state_dir import EXIT_IN_USE, LockFile, locks_dir, prepare_state_dir

ADDRESS = "kaspa:qqkqkzjvr7zwxxmjxjkmxxdwju9kjs6e9u82uh59z07vgaks6gg62v8707g73"
TXID = "ab" * 32
OTHER_TXID = "cd" * 32
KEY = "mexc-main:KAS:20261206T100000Z:0011223344556677"


def _sweep(state: str = "requested", key: str = KEY, **fields: object) -> SweepRecord:
    base = SweepRecord(
        key=key,
        account="mexc-main",
        exchange="mexc",
        asset="KAS",
        amount=D("1500.5"),
        fee=D("1"),
        address=ADDRESS,
        network="mainnet",
        client_id=None,
        state="requested",
        requested_ts=1000.0,
        updated_ts=1000.0,
    )
    return replace(base, state=state, **fields)  # type: ignore[arg-type]


def _res(to: str, **fields: object) -> Resolution:
    base = Resolution(key=KEY, to="failed", reason="cancelled in the exchange's UI", by="alice")
    return replace(base, to=to, **fields)  # type: ignore[arg-type]


# --- the rules ------------------------------------------------------------------------------

_REFUSED: list[tuple[str, SweepRecord | None, Resolution, dict[str, str], str]] = [
    ("unknown key", None, _res("failed"), {}, "no sweep"),
    ("confirmed already", _sweep("confirmed", txid=TXID), _res("failed"), {}, "confirmed already"),
    ("failed already", _sweep("failed"), _res("confirmed", txid=TXID), {}, "failed already"),
    ("no reason", _sweep(), _res("failed", reason="  "), {}, "needs a reason"),
    ("no operator", _sweep(), _res("failed", by=""), {}, "operator"),
    ("confirmed without a txid", _sweep("accepted"), _res("confirmed"), {}, "--txid"),
    ("not a txid", _sweep(), _res("confirmed", txid="0xfeed"), {}, "64 hexadecimal"),
    (
        "a txid other than the sweep's",
        _sweep("sent", txid=TXID),
        _res("confirmed", txid=OTHER_TXID),
        {},
        "was sent in transaction",
    ),
    ("a txid with failed", _sweep("sent", txid=TXID), _res("failed", txid=TXID), {}, "--txid"),
    ("a txid with accepted", _sweep(), _res("accepted", txid=TXID, withdrawal_id="w1"), {}, "txid"),
    ("accepted without an id", _sweep(), _res("accepted"), {}, "--withdrawal-id"),
    (
        "accepted from accepted",
        _sweep("accepted", withdrawal_id="w1"),
        _res("accepted", withdrawal_id="w1"),
        {},
        "only a requested sweep",
    ),
    (
        "accepted from sent",
        _sweep("sent", withdrawal_id="w1", txid=TXID),
        _res("accepted", withdrawal_id="w1"),
        {},
        "only a requested sweep",
    ),
    (
        "a withdrawal id another sweep claims",
        _sweep(),
        _res("accepted", withdrawal_id="w2"),
        {"w2": "mexc-main:KAS:other"},
        "belongs to sweep",
    ),
    (
        "a withdrawal id other than the sweep's",
        _sweep("accepted", withdrawal_id="w1"),
        _res("failed", withdrawal_id="w9"),
        {},
        "has withdrawal id",
    ),
]


@pytest.mark.parametrize(
    ("record", "resolution", "claimed", "message"),
    [case[1:] for case in _REFUSED],
    ids=[case[0] for case in _REFUSED],
)
def test_refused(
    record: SweepRecord | None, resolution: Resolution, claimed: dict[str, str], message: str
) -> None:
    with pytest.raises(ResolveRefused, match=message):
        check_resolution(record, resolution, claimed)


_ALLOWED: list[tuple[str, SweepRecord, Resolution, str | None, str | None]] = [
    # (case, record, resolution, txid written, withdrawal id written)
    ("requested failed", _sweep(), _res("failed"), None, None),
    ("accepted failed", _sweep("accepted", withdrawal_id="w1"), _res("failed"), None, "w1"),
    ("sent failed (it came back)", _sweep("sent", txid=TXID), _res("failed"), None, None),
    ("sent confirmed with its own txid", _sweep("sent", txid=TXID), _res("confirmed"), TXID, None),
    (
        "sent confirmed, the same txid given in capitals",
        _sweep("sent", txid=TXID),
        _res("confirmed", txid=TXID.upper()),
        TXID,
        None,
    ),
    ("requested confirmed with a txid", _sweep(), _res("confirmed", txid=TXID), TXID, None),
    (
        "requested accepted",
        _sweep(),
        _res("accepted", withdrawal_id=" w1 "),
        None,
        "w1",
    ),
    (
        "failed, naming its own withdrawal",
        _sweep("accepted", withdrawal_id="w1"),
        _res("failed", withdrawal_id="w1"),
        None,
        "w1",
    ),
]


@pytest.mark.parametrize(
    ("record", "resolution", "txid", "withdrawal_id"),
    [case[1:] for case in _ALLOWED],
    ids=[case[0] for case in _ALLOWED],
)
def test_allowed(
    record: SweepRecord, resolution: Resolution, txid: str | None, withdrawal_id: str | None
) -> None:
    final = check_resolution(record, resolution, {"w1": KEY})  # its own id is no conflict
    assert (final.to, final.txid) == (resolution.to, txid)
    assert (final.withdrawal_id or record.withdrawal_id) == withdrawal_id


_STATES: list[SweepState] = ["requested", "accepted", "sent", "confirmed", "failed"]


@given(
    state=st.sampled_from(_STATES),
    to=st.sampled_from(["accepted", "confirmed", "failed"]),
    txid=st.sampled_from([None, TXID, OTHER_TXID, "zz"]),
    withdrawal_id=st.sampled_from([None, "w1", "w2"]),
    has_txid=st.booleans(),
)
def test_a_closed_sweep_is_never_resolved_and_a_confirmation_always_has_its_txid(
    state: SweepState, to: str, txid: str | None, withdrawal_id: str | None, has_txid: bool
) -> None:
    record = _sweep(state, txid=TXID if has_txid else None)
    try:
        final = check_resolution(record, _res(to, txid=txid, withdrawal_id=withdrawal_id), {})
    except ResolveRefused:
        return
    assert record.is_open
    if final.to == "confirmed":
        assert final.txid is not None and len(final.txid) == 64
        assert record.txid is None or final.txid == record.txid
    if final.to == "accepted":
        assert record.state == "requested" and final.withdrawal_id is not None


# --- the write ------------------------------------------------------------------------------


@pytest.fixture
def ledger(tmp_path: Path) -> Ledger:
    state = prepare_state_dir(tmp_path / "state")
    return Ledger(state / "kasmm.sqlite")


def test_a_resolution_writes_its_step_and_operator_action_together(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    assert book.record_requested(_sweep())
    done = book.resolve(_res("failed"), 2000.0)
    assert (done.before.state, done.after.state) == ("requested", "failed")
    assert done.after.reason == "resolved by alice: cancelled in the exchange's UI"
    last = book.steps(KEY)[-1]
    assert (last.state, last.ts) == ("failed", 2000.0)
    assert last.detail == {
        "by": "alice",
        "reason": "cancelled in the exchange's UI",
        "resolved": True,
        "from": "requested",
    }
    (action,) = ledger.operator_actions()
    assert (action.operator, action.action, action.profile) == ("alice", OPERATOR_ACTION, None)
    assert action.details["sweep_key"] == KEY and action.details["to"] == "failed"
    assert action.details["amount"] == "1500.5"


def test_a_refused_resolution_writes_nothing(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    assert book.record_requested(_sweep())
    with pytest.raises(ResolveRefused, match="--txid"):
        book.resolve(_res("confirmed"), 2000.0)
    assert book.sweep(KEY) == _sweep()
    assert len(book.steps(KEY)) == 1 and ledger.operator_actions() == []


def test_a_withdrawal_id_another_sweep_holds_is_refused_from_the_ledger(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    other = _sweep(key="mexc-main:KAS:20261205T100000Z:aa", requested_ts=900.0)
    assert book.record_requested(other)
    book.advance(other.key, "accepted", 901.0, withdrawal_id="w-5")
    book.advance(other.key, "failed", 902.0, reason="failed_at_exchange")
    assert book.record_requested(_sweep())
    with pytest.raises(ResolveRefused, match="belongs to sweep"):
        book.resolve(_res("accepted", withdrawal_id="w-5"), 2000.0)
    after = book.resolve(_res("accepted", withdrawal_id="w-6"), 2000.0).after
    assert (after.state, after.withdrawal_id) == ("accepted", "w-6")


def test_a_failed_resolution_frees_the_asset_and_the_days_limit(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    assert book.record_requested(_sweep())
    nxt = _sweep(key="mexc-main:KAS:20261206T110000Z:88", requested_ts=1100.0)
    assert book.record_requested_alone(nxt) == _sweep()  # held by the stuck one
    assert book.swept_since("mexc-main", "KAS", 0.0) == D("1500.5")
    book.resolve(_res("failed"), 2000.0)
    assert book.swept_since("mexc-main", "KAS", 0.0) == 0
    assert book.record_requested_alone(nxt) is None


def test_a_confirmed_resolution_still_counts_against_the_day(ledger: Ledger) -> None:
    book = SettlementBook(ledger)
    assert book.record_requested(_sweep())
    book.advance(KEY, "sent", 1500.0, txid=TXID)
    done = book.resolve(_res("confirmed", reason="spent from the wallet at 12 confirmations"), 2e3)
    assert (done.after.state, done.after.txid, done.after.reason) == ("confirmed", TXID, None)
    assert book.swept_since("mexc-main", "KAS", 0.0) == D("1500.5")
    assert [s.state for s in book.steps(KEY)] == ["requested", "sent", "confirmed"]


# --- the command (in process: the rules need no exchange) ----------------------------------


def _command(tmp_path: Path, *args: str, **kwargs: object) -> int:
    return settle_resolve_command(
        tmp_path,
        KEY,
        *args,  # type: ignore[arg-type]
        state_dir=tmp_path / "state",
        operator="alice",
        wall=lambda: 2000.0,
        **kwargs,  # type: ignore[arg-type]
    )


def test_the_command_resolves_logs_and_prints(
    tmp_path: Path, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    SettlementBook(ledger).record_requested(_sweep())
    with capture_logs() as logs:
        code = _command(tmp_path, "failed", "cancelled at the exchange", as_json=True)
    assert code == exit_codes.OK
    doc = json.loads(capsys.readouterr().out)["resolved"]
    assert (doc["previous"], doc["by"], doc["sweep"]["state"]) == ("requested", "alice", "failed")
    assert doc["sweep"]["trail"][-1]["detail"]["resolved"] is True
    (event,) = [e for e in logs if e["event"] == "settlement_resolved"]
    assert (event["sweep_key"], event["previous"], event["state"]) == (KEY, "requested", "failed")
    assert event["operator"] == "alice" and event["log_level"] == "info"
    # a second time: closed, refused, nothing more written
    assert _command(tmp_path, "failed", "again") == exit_codes.USAGE
    assert "failed already" in capsys.readouterr().err
    assert len(ledger.operator_actions()) == 1


def test_the_command_refuses_an_unknown_key_and_a_missing_ledger(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _command(tmp_path, "failed", "why") == exit_codes.USAGE
    assert "no ledger" in capsys.readouterr().err
    assert not (tmp_path / "state" / "kasmm.sqlite").exists()  # not created by a refusal
    Ledger(prepare_state_dir(tmp_path / "state") / "kasmm.sqlite").close()
    assert _command(tmp_path, "failed", "why") == exit_codes.USAGE
    assert "no sweep" in capsys.readouterr().err


def test_the_command_waits_for_no_running_settlement_of_the_account(
    tmp_path: Path, ledger: Ledger, capsys: pytest.CaptureFixture[str]
) -> None:
    SettlementBook(ledger).record_requested(_sweep())
    lock = LockFile(
        settle_lock_path(locks_dir(tmp_path / "state"), "mexc-main"), "kasmm settle mexc-main"
    )
    with lock.acquire():
        assert _command(tmp_path, "failed", "why") == EXIT_IN_USE
        assert "being settled now" in capsys.readouterr().err
    assert SettlementBook(ledger).sweep(KEY) == _sweep()
    assert _command(tmp_path, "failed", "why") == exit_codes.OK


def test_the_cli_offers_every_resolution_and_nothing_else() -> None:
    from kasmm.cli import _build_parser
    from kasmm.store.settlement_resolve import RESOLVE_AS

    args = _build_parser().parse_args(
        ["settle", ".", "--resolve", KEY, "--as", "accepted", "--reason", "x"]
    )
    assert (args.resolve, args.resolve_as) == (KEY, "accepted")
    (action,) = [
        a
        for sub in _build_parser()._subparsers._group_actions  # type: ignore[union-attr]
        for name, p in sub.choices.items()  # type: ignore[union-attr]
        if name == "settle"
        for a in p._actions
        if a.dest == "resolve_as"
    ]
    assert set(action.choices or ()) == set(RESOLVE_AS)
