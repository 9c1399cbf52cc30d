"""Sharding: a stable hash that partitions profile names exactly; I/N parsing."""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kasmm.config.loader import load_paths
from kasmm.shard import (
    MAX_SHARDS,
    Shard,
    ShardError,
    default_metrics_addr,
    parse_shard,
    select_shard,
    shard_argument,
    shard_of,
)
from tests.integration.test_supervisor import profile_yaml, write

NAMES = [f"kas-usdt-{i:03d}" for i in range(480)] + [
    "kas-usdt-sim",
    "kas-usdt-sim-as",
    "mexc-kas-usdt",
    "gate-kas-usdt",
    "kucoin-kas-usdt",
    "bingx-kas-usdt",
    "paper-mexc-kas-usdt",
    "ü-naïve",
    "KAS_USDT",
    "a",
    "b",
    "c",
    "x" * 64,
    "mexc:main:kas",
    "with space",
    "tab\tname",
    "Ω",
    "kas-usdt-000 ",
    "0",
    "-",
]


def test_the_names_are_500_distinct() -> None:
    assert len(set(NAMES)) == 500


@pytest.mark.parametrize("n", range(1, 8))
def test_shards_partition_the_names_exactly(n: int) -> None:
    shards = [Shard(i, n) for i in range(n)]
    members: list[set[str]] = [{name for name in NAMES if s.owns(name)} for s in shards]
    for name in NAMES:
        assert sum(name in m for m in members) == 1, name  # in exactly one shard
        assert 0 <= shard_of(name, n) < n
    assert set().union(*members) == set(NAMES)
    assert sum(len(m) for m in members) == len(NAMES)  # disjoint
    # sha256 spreads them: no shard is starved (expected 500/n each).
    assert min(len(m) for m in members) >= 0.6 * len(NAMES) / n


# Computed once (sha256 of the UTF-8 name, first 8 bytes big-endian, mod N); they must never
# change, or a deployment's profiles would move between shards on upgrade.
EXPECTED = {
    #                     N = 2  3  4  5  7  16
    "kas-usdt-sim": (1, 2, 3, 2, 6, 7),
    "kas-usdt-sim-as": (0, 1, 2, 3, 1, 6),
    "mexc-kas-usdt": (0, 2, 2, 4, 3, 14),
    "gate-kas-usdt": (0, 2, 0, 1, 3, 4),
    "kucoin-kas-usdt": (1, 0, 3, 0, 3, 11),
    "bingx-kas-usdt": (1, 1, 3, 4, 6, 15),
    "ü-naïve": (0, 0, 0, 3, 3, 8),
}
COUNTS = (2, 3, 4, 5, 7, 16)


def test_shard_numbers_are_the_ones_computed_once() -> None:
    for name, expected in EXPECTED.items():
        assert tuple(shard_of(name, n) for n in COUNTS) == expected, name
        assert shard_of(name, 1) == 0


def test_shard_numbers_are_the_same_in_another_process() -> None:
    """Unlike hash(), salted per process: a different PYTHONHASHSEED changes nothing."""
    code = (
        "from kasmm.shard import shard_of\n"
        f"for name in {list(EXPECTED)!r}:\n"
        f"    print(*[shard_of(name, n) for n in {COUNTS!r}])\n"
    )
    for seed in ("1", "2"):
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        got = [tuple(int(x) for x in line.split()) for line in out.splitlines()]
        assert got == list(EXPECTED.values())


def test_shard_of_refuses_no_shards() -> None:
    with pytest.raises(ShardError):
        shard_of("a", 0)


# --- parsing --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0/1", (0, 1)), ("0/4", (0, 4)), ("3/4", (3, 4)), (" 2/7 ", (2, 7)), ("007/010", (7, 10))],
)
def test_parse_shard(text: str, expected: tuple[int, int]) -> None:
    shard = parse_shard(text)
    assert shard == expected
    assert (shard.i, shard.n) == expected
    assert str(shard) == f"{expected[0]}/{expected[1]}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "a shard is I/N, e.g. 0/4"),
        ("4", "a shard is I/N"),
        ("0-4", "a shard is I/N"),  # the systemd instance name; %I unescapes it to 0/4
        ("a/b", "a shard is I/N"),
        ("-1/4", "a shard is I/N"),
        ("1/4/8", "a shard is I/N"),
        ("1.0/4", "a shard is I/N"),
        ("١/٤", "a shard is I/N"),  # non-ASCII digits
        ("4/4", "the shard index I must be 0..N-1 (0..3), not 4"),
        ("9/4", "the shard index I must be 0..N-1 (0..3), not 9"),
        ("0/0", "the number of shards N must be 1..1000, not 0"),
        (f"0/{MAX_SHARDS + 1}", "the number of shards N must be 1..1000"),
    ],
)
def test_parse_shard_errors(text: str, message: str) -> None:
    with pytest.raises(ShardError) as info:
        parse_shard(text)
    assert message in str(info.value)
    assert isinstance(info.value, ValueError)


def test_a_bad_shard_is_an_argparse_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser(prog="kasmm supervise")
    parser.add_argument("--shard", type=shard_argument)
    assert parser.parse_args(["--shard", "1/3"]).shard == (1, 3)
    with pytest.raises(SystemExit) as info:
        parser.parse_args(["--shard", "3/3"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --shard: the shard index I must be 0..N-1 (0..2), not 3" in err


def test_each_shard_has_its_own_default_metrics_port() -> None:
    assert default_metrics_addr(None) == "127.0.0.1:9301"
    assert default_metrics_addr(Shard(0, 4)) == "127.0.0.1:9301"
    assert default_metrics_addr(Shard(3, 4)) == "127.0.0.1:9304"


# --- selecting a shard's profiles -------------------------------------------------------------


def test_select_shard_keeps_only_the_shards_profiles_and_every_issue(tmp_path: Path) -> None:
    names = [f"p{i}" for i in range(12)]
    for name in names:
        write(tmp_path, name, profile_yaml(name))
    (tmp_path / "broken.yaml").write_text("name: [unclosed\n")
    write(
        tmp_path, "invalid", profile_yaml("invalid").replace("spread_bps: 20.0", "spread_bps: -1")
    )
    load = load_paths([tmp_path], env={})
    assert set(load.profiles) == set(names)
    assert len({issue.path.name for issue in load.issues}) == 2

    assert select_shard(load, None) is load
    assert select_shard(load, Shard(0, 1)) is load
    seen: set[str] = set()
    for i in range(3):
        part = select_shard(load, Shard(i, 3))
        assert set(part.profiles) == {n for n in names if shard_of(n, 3) == i}
        assert not seen & set(part.profiles)
        seen |= set(part.profiles)
        # Every shard reports every invalid file (it may hold any shard's profiles, and each
        # shard keeps the last good version of its own ones running).
        assert part.issues == load.issues
        assert part.accounts == load.accounts
        assert part.files == load.files
    assert seen == set(names)
