"""Where a sweep goes: the operator's fixed Kaspa address, or a fresh receive address per sweep.

A fixed ``address`` receives every sweep. An ``xpub`` (a watch-only account key) gives each
sweep the next receive address of the account, ``<account>/0/<index>``: the index is ``1 +``
the highest index any sweep of the exchange account ever used (0 for the first), read from the
ledger, so an index is never reused, not even one of a failed sweep (its address may have been
shown to someone, or the withdrawal may yet arrive). The index is stored with the sweep
(:attr:`~kasmm.store.settlements.SweepRecord.derivation`) in the same transaction that records
it, so two processes cannot hand out one index twice.

Both kinds are validated with the SDK when built (:func:`destination_from`): a wrong-network
address or a private key never becomes a destination.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

from kasmm.settle.address import (
    AccountKey,
    KaspaAddress,
    Network,
    parse_account_key,
    receive_address,
    validate_address,
)
from kasmm.store.settlements import SweepRecord

__all__ = [
    "FixedAddress",
    "SweepDestination",
    "Target",
    "XpubReceive",
    "destination_from",
    "next_index",
]


@dataclass(frozen=True, slots=True)
class Target:
    """The address of one sweep, and its receive index when derived from an xpub."""

    address: str
    derivation: int | None = None


class SweepDestination(Protocol):
    """Gives the address of the next sweep of an account, from the account's earlier sweeps."""

    @property
    def network(self) -> Network:
        """The Kaspa network of every address it gives."""
        ...

    def target(self, earlier: Iterable[SweepRecord]) -> Target:
        """The next sweep's address, given every earlier sweep of the account (any state)."""
        ...


def next_index(earlier: Iterable[SweepRecord]) -> int:
    """``1 + max(derivation)`` over ``earlier`` (0 when none was derived)."""
    used = [r.derivation for r in earlier if r.derivation is not None]
    return max(used) + 1 if used else 0


@dataclass(frozen=True, slots=True)
class FixedAddress:
    """Every sweep goes to one validated address."""

    address: KaspaAddress

    @property
    def network(self) -> Network:
        return self.address.network

    def target(self, earlier: Iterable[SweepRecord]) -> Target:
        return Target(self.address.text, None)


@dataclass(frozen=True, slots=True)
class XpubReceive:
    """Each sweep goes to the next unused receive address of a watch-only account key."""

    key: AccountKey

    @property
    def network(self) -> Network:
        return self.key.network

    def target(self, earlier: Iterable[SweepRecord]) -> Target:
        index = next_index(earlier)
        return Target(receive_address(self.key, index).text, index)


def destination_from(
    network: Network, *, address: str | None = None, xpub: str | None = None
) -> SweepDestination:
    """The destination of a settlement config (exactly one of ``address`` and ``xpub``).

    :raises kasmm.settle.address.AddressRejected: the address or key is not usable on
        ``network`` (wrong network, bad checksum, a private key, ...).
    :raises ValueError: neither or both given.
    """
    if (address is None) == (xpub is None):
        raise ValueError("a destination is an address or an xpub, exactly one")
    if address is not None:
        return FixedAddress(validate_address(address, network))
    assert xpub is not None
    return XpubReceive(parse_account_key(xpub, network))
