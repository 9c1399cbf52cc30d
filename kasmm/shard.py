"""Sharding one profile directory over several supervisors: ``kasmm supervise DIR --shard I/N``.

A profile belongs to shard ``sha256(name) mod N`` (the first 8 bytes of the digest, big-endian):
stable across processes, hosts and Python versions (unlike ``hash()``, which is salted per
process), so N supervisors, on one host or several sharing the profile repository, partition
the profiles exactly: each profile runs in exactly one shard. Profiles of other shards are not
started and not reported.

Invalid files are reported by **every** shard: a file that fails to load may hold profiles of
any shard (a syntax error hides even their names), and each shard must keep the last good
version of its own profiles from that file running, which the supervisor decides from the
issues it sees.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import os
import re
from typing import TYPE_CHECKING, NamedTuple

if TYPE_CHECKING:
    from kasmm.config.loader import DirectoryLoad

__all__ = [
    "MAX_SHARDS",
    "Shard",
    "ShardError",
    "default_metrics_addr",
    "parse_processes",
    "parse_shard",
    "processes_argument",
    "select_shard",
    "shard_argument",
    "shard_of",
]

#: At most this many shards (so that 9301 + I stays a valid, unprivileged port).
MAX_SHARDS = 1000
#: Port of the status/metrics endpoint of the unsharded supervisor and of shard 0.
BASE_PORT = 9301

_SHARD_RE = re.compile(r"([0-9]+)/([0-9]+)")


class ShardError(ValueError):
    """A shard specification that is not ``I/N`` with ``0 <= I < N``."""


class Shard(NamedTuple):
    """Shard ``i`` of ``n`` (``0 <= i < n``); ``str()`` is ``I/N``."""

    i: int
    n: int

    def __str__(self) -> str:
        return f"{self.i}/{self.n}"

    def owns(self, name: str) -> bool:
        """Whether profile ``name`` runs in this shard."""
        return shard_of(name, self.n) == self.i


def shard_of(name: str, n: int) -> int:
    """The shard (``0 <= shard < n``) of profile ``name`` among ``n``; stable everywhere."""
    if n < 1:
        raise ShardError(f"the number of shards must be at least 1, not {n}")
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).digest()
    return int.from_bytes(digest[:8], "big") % n


def parse_shard(text: str) -> Shard:
    """``"I/N"`` -> ``Shard(I, N)``; :class:`ShardError` unless ``0 <= I < N <= MAX_SHARDS``."""
    match = _SHARD_RE.fullmatch(text.strip())
    if match is None:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ShardError(f"a shard is I/N, e.g. 0/4 (shard 0 of 4), not {shown!r}")
    index, count = int(match.group(1)), int(match.group(2))
    if not 1 <= count <= MAX_SHARDS:
        raise ShardError(f"the number of shards N must be 1..{MAX_SHARDS}, not {count}")
    if index >= count:
        raise ShardError(f"the shard index I must be 0..N-1 (0..{count - 1}), not {index}")
    return Shard(index, count)


def shard_argument(text: str) -> Shard:
    """:func:`parse_shard` as an ``argparse`` ``type=`` (its message becomes the usage error)."""
    try:
        return parse_shard(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity mask where the OS has one (``taskset``,
    a container's cpuset), else ``os.cpu_count()``; at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # pragma: no cover - not on Linux
        return max(1, os.cpu_count() or 1)


def parse_processes(text: str, cpus: int | None = None) -> int:
    """``--processes``: ``N`` (1..MAX_SHARDS) or ``auto`` (one per available CPU, at most
    MAX_SHARDS); :class:`ShardError` otherwise."""
    value = text.strip()
    if value == "auto":
        return min(MAX_SHARDS, available_cpus() if cpus is None else max(1, cpus))
    if not (value.isascii() and value.isdigit()) or not 1 <= int(value) <= MAX_SHARDS:
        shown = text if len(text) <= 40 else text[:37] + "..."
        raise ShardError(f"--processes is 1..{MAX_SHARDS} or auto, not {shown!r}")
    return int(value)


def processes_argument(text: str) -> int:
    """:func:`parse_processes` as an ``argparse`` ``type=``."""
    try:
        return parse_processes(text)
    except ShardError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def default_metrics_addr(shard: Shard | None) -> str:
    """``127.0.0.1:9301``; shard I listens on ``9301 + I`` so shards can share a host."""
    port = BASE_PORT + (shard.i if shard is not None else 0)
    return f"127.0.0.1:{port}"


def select_shard(load: DirectoryLoad, shard: Shard | None) -> DirectoryLoad:
    """``load`` with only the profiles of ``shard`` (all of them when ``shard`` is ``None``).

    Issues, accounts and the file index are kept whole (see the module docstring).
    """
    if shard is None or shard.n == 1:
        return load
    profiles = {name: lp for name, lp in load.profiles.items() if shard.owns(name)}
    return dataclasses.replace(load, profiles=profiles)
