"""Client order ids: unique, alphanumeric, prefixed, short enough for every exchange."""

from __future__ import annotations

import re

import pytest

from kasmm.core.ids import MAX_CLIENT_ID_LEN, ClientIdFactory, base36

ALNUM_LOWER = re.compile(r"[a-z0-9]+")
GATE_MAX_TEXT_LEN = 28  # Gate prepends "t-" to the client id and allows 28 chars in total


# --- base36 ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "expected"),
    [
        (0, "0"),
        (1, "1"),
        (9, "9"),
        (10, "a"),
        (35, "z"),
        (36, "10"),
        (37, "11"),
        (71, "1z"),
        (1295, "zz"),
        (1296, "100"),
        (36**5 - 1, "zzzzz"),
        (36**5, "100000"),
        (123456789, "21i3v9"),
    ],
)
def test_base36_table(n: int, expected: str) -> None:
    assert base36(n) == expected
    assert int(expected, 36) == n


def test_base36_round_trips() -> None:
    for n in [*range(0, 5000), *range(36**4 - 50, 36**4 + 50), 2**63, 10**30]:
        s = base36(n)
        assert ALNUM_LOWER.fullmatch(s)
        assert int(s, 36) == n
        assert s == "0" or not s.startswith("0")


@pytest.mark.parametrize("n", [-1, -36, -(10**12)])
def test_base36_rejects_negative(n: int) -> None:
    with pytest.raises(ValueError, match="negative"):
        base36(n)


# --- run tags --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("epoch_s", "expected"),
    [
        (0.0, "00000"),
        (0.05, "00000"),  # same 0.1 s slot
        (0.1, "00001"),
        (0.35, "00003"),
        (3.6, "00010"),
        (36**5, "00000"),  # wraps every 36**5 tenths of a second (~70 days)
        ((36**5 - 1) / 10, "zzzzz"),  # the last slot before the wrap
    ],
)
def test_run_tag_table(epoch_s: float, expected: str) -> None:
    assert ClientIdFactory.run_tag_for(epoch_s) == expected


@pytest.mark.parametrize(
    "epoch_s",
    [0.0, 1.0, 59.9, 1_700_000_000.0, 1_732_525_123.4, 4_102_444_800.0, 1e12, 123456.789],
)
def test_run_tag_is_stable_alphanumeric_length_5(epoch_s: float) -> None:
    tag = ClientIdFactory.run_tag_for(epoch_s)
    assert len(tag) == 5
    assert ALNUM_LOWER.fullmatch(tag)
    assert ClientIdFactory.run_tag_for(epoch_s) == tag  # deterministic


def test_run_tag_changes_every_tenth_of_a_second() -> None:
    base = 1_700_000_000
    tags = [ClientIdFactory.run_tag_for(base + i / 10 + 0.05) for i in range(200)]
    assert len(set(tags)) == len(tags)


# --- factory ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("prefix", "run_tag", "expected"),
    [
        ("ab", "00000", ["ab000001", "ab000002", "ab000003"]),
        ("k1f2e3", "zz9aa", ["k1f2e3zz9aa1", "k1f2e3zz9aa2", "k1f2e3zz9aa3"]),
    ],
)
def test_ids_are_prefix_run_tag_sequence(prefix: str, run_tag: str, expected: list[str]) -> None:
    factory = ClientIdFactory(prefix, run_tag)
    assert [factory.next() for _ in expected] == expected
    assert factory.prefix == prefix


def test_sequence_counts_in_base36() -> None:
    factory = ClientIdFactory("ab", "00000")
    ids = [factory.next() for _ in range(37)]
    assert ids[8] == "ab000009"
    assert ids[9] == "ab00000a"
    assert ids[34] == "ab00000z"
    assert ids[35] == "ab0000010"
    assert ids[36] == "ab0000011"


@pytest.mark.parametrize("prefix", ["ab", "k3f9a1", "abcdefgh", "00", "zz99zz99"])
def test_ids_unique_alphanumeric_prefixed_and_short(prefix: str) -> None:
    factory = ClientIdFactory(prefix, ClientIdFactory.run_tag_for(1_732_525_123.4))
    ids = [factory.next() for _ in range(5000)]
    assert len(set(ids)) == len(ids)
    for cid in ids:
        assert ALNUM_LOWER.fullmatch(cid)
        assert cid.startswith(prefix)
        assert len(cid) <= MAX_CLIENT_ID_LEN
        assert factory.is_own(cid)


def test_ids_unique_across_restarts() -> None:
    ids: set[str] = set()
    for restart in range(20):  # restarts 0.1 s apart, each making a few hundred ids
        factory = ClientIdFactory(
            "kab12", ClientIdFactory.run_tag_for(1_700_000_000 + restart / 10)
        )
        ids.update(factory.next() for _ in range(300))
    assert len(ids) == 20 * 300


@pytest.mark.parametrize("prefix", ["ab", "abcd", "abcdefgh"])  # config allows 2-8 chars
def test_longest_ids_fit_max_len_and_gate(prefix: str) -> None:
    factory = ClientIdFactory(prefix, "zzzzz")
    room = MAX_CLIENT_ID_LEN - len(prefix) - 5
    factory._seq = 36**room - 3  # the next two are the last two sequence numbers that still fit
    longest = [factory.next(), factory.next()]
    assert longest[-1] == prefix + "zzzzz" + "z" * room
    for cid in longest:
        assert len(cid) == MAX_CLIENT_ID_LEN
        assert len("t-" + cid) <= GATE_MAX_TEXT_LEN
    with pytest.raises(OverflowError, match="exhausted"):
        factory.next()


def test_max_len_is_gate_compatible() -> None:
    assert len("t-") + MAX_CLIENT_ID_LEN <= GATE_MAX_TEXT_LEN


@pytest.mark.parametrize(
    ("prefix", "run_tag"),
    [
        ("", "00000"),
        ("ab-", "00000"),
        ("a b", "00000"),
        ("ab_", "00000"),
        ("a.b", "00000"),
        ("t-ab", "00000"),
        ("ké", "00000"),  # non-ASCII letter: str.isalnum() alone accepts it
        ("ab٣", "00000"),  # Arabic-Indic digit
        ("ab²", "00000"),  # superscript two
        ("ab", ""),
        ("ab", "00-00"),
        ("ab", "0000é"),
    ],
)
def test_invalid_prefix_or_run_tag_rejected(prefix: str, run_tag: str) -> None:
    with pytest.raises(ValueError, match="alphanumeric"):
        ClientIdFactory(prefix, run_tag)


@pytest.mark.parametrize(
    ("client_id", "own"),
    [
        ("kab12000001", True),  # this run
        ("kab12zzzzz1", True),  # another run of the same profile (after a restart)
        ("kab12", True),
        ("kab1", False),  # shorter than the prefix
        ("kcd34000001", False),  # another profile
        ("web_order_1", False),  # placed by hand on the exchange UI
        ("", False),
        ("KAB12000001", False),  # case matters
        ("xkab12000001", False),  # prefix must be at the start
    ],
)
def test_is_own(client_id: str, own: bool) -> None:
    factory = ClientIdFactory("kab12", "00000")
    assert factory.is_own(client_id) is own
