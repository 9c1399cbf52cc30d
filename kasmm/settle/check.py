"""The SDK's destination check for ``_settlement.yaml``, and where that file is.

:func:`kasmm.config.settlement.settlement_checks` takes the destination validator as an
argument so that configuration code does not import the native SDK; ``kasmm validate`` and
``kasmm settle`` pass :func:`sdk_destination_check`, which parses the address (bech32 checksum,
characters, network prefix) or the watch-only account key (public, depth 3, network) with the
``kaspa`` SDK through :mod:`kasmm.settle.address`. Its messages never repeat a refused text
that could be a secret.
"""

from __future__ import annotations

from pathlib import Path

from kasmm.config.settlement import SETTLEMENT_FILES, DestinationKind, Network
from kasmm.settle.address import AddressRejected, parse_account_key, validate_address

__all__ = ["find_settlement_file", "sdk_destination_check"]


def sdk_destination_check(kind: DestinationKind, value: str, network: Network) -> str | None:
    """Why the destination ``value`` cannot be used on ``network`` (``None``: it can)."""
    try:
        if kind == "address":
            validate_address(value, network)
        else:
            parse_account_key(value, network)
    except AddressRejected as exc:
        return str(exc)
    return None


def find_settlement_file(directory: Path) -> Path | None:
    """The settlement file of a profile directory (the first of
    :data:`~kasmm.config.settlement.SETTLEMENT_FILES` present), or ``None``."""
    for name in SETTLEMENT_FILES:
        path = directory / name
        if path.exists() or path.is_symlink():
            return path
    return None
